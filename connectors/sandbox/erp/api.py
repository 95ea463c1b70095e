"""The ERP sandbox's HTTP surface: NetSuite's SuiteQL collection and record endpoints, and the
RESTlet opsgraph deploys to void transactions, over a ``Ledger``, behind an OAuth 2.0 bearer
token or a token-based authentication signature.

Each endpoint names what it applies: a query parameter (``_query``), a ``Prefer``
preference or another of NetSuite's headers (``_headers``) it does not apply is refused with
NetSuite's 400 naming it, never ignored."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from decimal import Decimal
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from connectors.models import Record
from connectors.sandbox import jsonio
from connectors.sandbox.auth import Guard, OAuth1, OAuth1Credentials, bearer, is_oauth1
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.erp import errors
from connectors.sandbox.erp.documents import (
    FIELDS,
    PATCHABLE,
    TRANSACTIONS,
    Ledger,
    at_places,
    patched,
)
from connectors.sandbox.erp.errors import LOGIN_FAILED, MEDIA, QUERY_FAILED, NetSuiteError
from connectors.sandbox.erp.query import QueryError, execute, parse
from connectors.sandbox.idempotency import Outcome, Replays
from connectors.sandbox.store import Store
from connectors.sandbox.types import Endpoint

__all__ = ["LOGIN_FAILED", "RECORD", "RESTLET", "SUITEQL", "NetSuiteApi"]

RECORD = "/services/rest/record/v1"
SUITEQL = "/services/rest/query/v1/suiteql"
RESTLET = "/app/site/hosting/restlet.nl"
VOID_SCRIPT = {"script": "customscript_opsgraph_void", "deploy": "1"}  # the one RESTlet here
VOID_FIELDS = ("type", "id", "reason")
# The void RESTlet's ``type`` (SuiteScript's record.Type, as SuiteQL's recordtype spells it)
# -> the record type; another transaction type cannot be voided here.
VOIDABLE = {kind.lower(): kind for kind in TRANSACTIONS}
WRITABLE = ("invoice", "creditMemo")
IDEMPOTENCY_KEY = "X-NetSuite-Idempotency-Key"
NAME_VALIDATION = "X-NetSuite-PropertyNameValidation"
_REF_TARGETS = {"entity": "customer", "subsidiary": "subsidiary", "currency": "currency"}
_AMOUNTS = ("subtotal", "taxTotal", "total", "amount", "tax1Amt")
_NOT_FOUND = "The record instance does not exist. Provide a valid record instance ID."


def _reply(doc: Any) -> Response:
    return Response(jsonio.dumps(doc), media_type=MEDIA + "singular")


class NetSuiteApi:
    def __init__(self, config: SandboxConfig) -> None:
        # No webhooks: NetSuite has none to sign (see the package), so ``webhook_url`` is
        # not read.
        self.store = Store(config.db_path)
        self.ledger = Ledger(self.store)
        self.guard = Guard(config.secret, bearer, errors.unauthorized)
        token = OAuth1Credentials(
            config.tba_consumer_key,
            config.tba_consumer_secret,
            config.tba_token_id,
            config.tba_token_secret,
        )
        self.tba = OAuth1(realm=config.tba_account, credentials=[token], refuse=errors.unauthorized)
        # A synchronous write replays its first answer, whatever the body (no conflict).
        self.replays = Replays(self.store)

    def protect(self, endpoint: Endpoint) -> Endpoint:
        """The endpoint behind whichever NetSuite accepts: the bearer token, or a TBA
        signature when the request is signed."""

        async def guarded(request: Request) -> Response:
            if is_oauth1(request):
                await self.tba.check(request)
            else:
                self.guard.check(request)
            return await endpoint(request)

        return guarded

    def routes(self) -> list[BaseRoute]:
        protect = self.protect
        one = RECORD + "/{kind}/{id}"
        return [
            Route(SUITEQL, protect(self.suiteql), methods=["POST"]),
            Route(one, protect(self.get_record), methods=["GET"]),
            Route(one, protect(self.update_record), methods=["PATCH"]),
            Route(one, protect(self.delete_record), methods=["DELETE"]),
            Route(RECORD + "/{kind}", protect(self.create_record), methods=["POST"]),
            Route(RESTLET, protect(self.void_restlet), methods=["POST"]),
        ]

    async def unrouted(self, request: Request, status: int) -> Response:
        return errors.unrouted(request.method, request.url.path, status).response()

    def seed(self, records: list[Record]) -> None:
        self.ledger.seed(records)

    def bulk(self, invoices: int, seed: int) -> dict[str, int]:
        return self.ledger.bulk(invoices, seed)

    # -- SuiteQL ----------------------------------------------------------------------------

    async def suiteql(self, request: Request) -> Response:
        limit, offset = _paging(_query(request, ("limit", "offset")))
        _headers(request, prefer=("transient",))
        if "transient" not in _preferences(request):
            detail = "SuiteQL requests need the header 'Prefer: transient'."
            raise errors.bad_header("Prefer", detail)
        try:
            body = json.loads(await _json_body(request))
            text = body["q"]
            if not isinstance(text, str):
                raise TypeError(text)
        except (ValueError, KeyError, TypeError):
            detail = "The request body must be a JSON object with a 'q' query."
            raise NetSuiteError(400, detail) from None
        extra = sorted(body.keys() - {"q"})
        if extra:
            raise errors.bad_field(extra[0], f"A SuiteQL request body has no field {extra[0]}.")
        try:
            query = parse(text)
            rows, total = execute(query, self.ledger.table(query.table), offset, limit)
        except QueryError as exc:
            raise NetSuiteError(400, QUERY_FAILED + str(exc), "INVALID_PARAMETER") from None
        items = [{"links": [], **row} for row in rows]
        has_more = offset + len(items) < total
        url = str(request.url.remove_query_params(["limit", "offset"]))
        page = {
            "links": _page_links(url, limit, offset, total, has_more),
            "count": len(items),
            "hasMore": has_more,
            "items": items,
            "offset": offset,
            "totalResults": total,
        }
        # Rows hold text alone, no Decimal (``jsonio``'s reason to be): orjson, compact,
        # writes a page of 1000 in a tenth of the time ``json`` takes.
        return Response(orjson.dumps(page), media_type=MEDIA + "collection")

    # -- records ----------------------------------------------------------------------------

    async def get_record(self, request: Request) -> Response:
        kind, id_ = _record_type(request), _record_id(request)
        params = _query(request, ("fields", "expandSubResources"))
        _headers(request)
        expand = _flag(params, "expandSubResources")
        out = self._render(request, kind, self._found(kind, id_), expand)
        if "fields" in params:
            out = _only(out, kind, params["fields"])
        return _reply(out)

    async def create_record(self, request: Request) -> Response:
        kind = _written(request, "create", WRITABLE)
        raw = await _json_body(request)

        def create() -> tuple[int, Any]:
            doc = self.ledger.new_transaction(kind, _parsed(raw))
            self.store.put(kind, doc["id"], doc)
            return 204, f"{RECORD}/{kind}/{doc['id']}"

        return self._located(request, self._once(request, create))

    async def update_record(self, request: Request) -> Response:
        kind, id_ = _written(request, "update", PATCHABLE), _record_id(request)
        raw = await _json_body(request)

        def update() -> tuple[int, Any]:
            self.store.put(kind, id_, patched(kind, self._found(kind, id_), _parsed(raw)))
            return 204, f"{RECORD}/{kind}/{id_}"

        return self._located(request, self._once(request, update))

    async def delete_record(self, request: Request) -> Response:
        kind, id_ = _written(request, "delete", TRANSACTIONS), _record_id(request)

        def delete() -> tuple[int, Any]:
            if not self.ledger.delete(kind, id_):
                raise NetSuiteError(404, _NOT_FOUND, "NONEXISTENT_ID")
            return 204, None

        self._once(request, delete)
        return Response(status_code=204)

    # -- RESTlets ---------------------------------------------------------------------------

    async def void_restlet(self, request: Request) -> Response:
        """``customscript_opsgraph_void``: ``{"type", "id", "reason"}`` in, the SuiteScript
        ``transaction.void`` of it done (``Ledger.void``), ``{"id", "voided": true}`` out."""
        params = _query(request, VOID_SCRIPT)
        for name, deployed in VOID_SCRIPT.items():
            if params.get(name) != deployed:
                detail = f"No RESTlet is deployed with {name}={params.get(name, '')}."
                raise errors.bad_parameter(name, detail)
        _headers(request, idempotent=True)
        kind, id_, reason = _void_order(_parsed(await _json_body(request)))

        def void() -> tuple[int, Any]:
            if not self.ledger.void(kind, id_, reason):
                raise NetSuiteError(404, _NOT_FOUND, "NONEXISTENT_ID")
            return 200, {"id": id_, "voided": True}

        outcome = self._once(request, void)
        answer = jsonio.dumps(outcome.answer)
        return Response(answer, status_code=outcome.status, media_type="application/json")

    def _found(self, kind: str, id_: str) -> dict[str, Any]:
        doc = self.ledger.record(kind, id_)
        if doc is None:
            raise NetSuiteError(404, _NOT_FOUND, "NONEXISTENT_ID")
        return doc

    def _once(self, request: Request, write: Callable[[], tuple[int, Any]]) -> Outcome:
        """``write()`` once per idempotency key, for this method and path: a retry with the
        key gets the first answer and writes nothing."""
        key = request.headers.get(IDEMPOTENCY_KEY)
        scoped = f"{request.method} {request.url.path} {key}" if key else None
        return self.replays.once(scoped, "", write)

    def _located(self, request: Request, outcome: Outcome) -> Response:
        base = str(request.base_url).rstrip("/")
        return Response(status_code=204, headers={"Location": base + outcome.answer})

    def _render(
        self, request: Request, kind: str, doc: dict[str, Any], expand: bool
    ) -> dict[str, Any]:
        """A document as the record API answers it: references with their links, amounts
        as numbers, a customer's balance; sublists only when ``expand``."""
        base = str(request.base_url).rstrip("/") + RECORD
        out: dict[str, Any] = {"links": [{"rel": "self", "href": f"{base}/{kind}/{doc['id']}"}]}
        for key, value in doc.items():
            if key == "item":
                if not expand:
                    continue
                value = _sublist(value["items"])
            elif key in _REF_TARGETS:
                href = f"{base}/{_REF_TARGETS[key]}/{value['id']}"
                value = {"links": [{"rel": "self", "href": href}], **value}
            elif key in _AMOUNTS:
                value = Decimal(value)
            out[key] = value
        if kind == "customer" and "currency" in doc:
            balance = self.ledger.balances().get(doc["id"], Decimal(0))
            out["balance"] = Decimal(at_places(balance, doc["currency"]["refName"]))
        return out


# -- what a request carries -------------------------------------------------------------------


def _record_type(request: Request) -> str:
    kind: str = request.path_params["kind"]
    if kind not in FIELDS:
        raise errors.no_such_type(kind)
    return kind


def _record_id(request: Request) -> str:
    id_: str = request.path_params["id"]
    if id_.startswith("eid:"):
        detail = "The sandbox does not find records by external ID (eid:); use the internal ID."
        raise NetSuiteError(400, detail, "INVALID_PARAMETER")
    return id_


def _written(request: Request, action: str, kinds: Collection[str]) -> str:
    """The record type a write names, when the sandbox can ``action`` that type and the
    request carries nothing a write does not apply (no query parameter takes part)."""
    kind = _record_type(request)
    if kind not in kinds:
        raise errors.not_allowed(action, kind)
    _query(request, ())
    _headers(request, idempotent=True)
    return kind


def _query(request: Request, applied: Collection[str]) -> dict[str, str]:
    """The query parameters, when each is one the endpoint applies and is given once."""
    found: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in applied:
            raise errors.bad_parameter(name, f"The query parameter {name} is not supported here.")
        if name in found:
            raise errors.bad_parameter(name, f"The query parameter {name} is given twice.")
        found[name] = value
    return found


def _preferences(request: Request) -> set[str]:
    given = ",".join(request.headers.getlist("prefer")).split(",")
    return {preference.strip().lower() for preference in given if preference.strip()}


def _headers(request: Request, *, prefer: Collection[str] = (), idempotent: bool = False) -> None:
    """Refuse what the sandbox would not apply of NetSuite's own headers: a preference the
    endpoint does not honour (``respond-async`` above all: every answer here is synchronous),
    an idempotency key on a read, a property-name validation other than ``Error`` (the
    sandbox refuses every body field it does not keep; it cannot warn or ignore)."""
    for preference in sorted(_preferences(request) - set(prefer)):
        detail = f"The sandbox does not honour 'Prefer: {preference}' here."
        raise errors.bad_header("Prefer", detail)
    validation = request.headers.get(NAME_VALIDATION)
    if validation is not None and validation.lower() != "error":
        detail = f"The sandbox validates property names as with 'Error', not {validation!r}."
        raise errors.bad_header(NAME_VALIDATION, detail)
    if not idempotent and IDEMPOTENCY_KEY in request.headers:
        raise errors.bad_header(IDEMPOTENCY_KEY, "An idempotency key applies to writes only.")


async def _json_body(request: Request) -> bytes:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        detail = "The request body must be sent as application/json."
        raise errors.bad_header("Content-Type", detail)
    return await request.body()


def _parsed(raw: bytes) -> Any:
    try:
        return jsonio.loads(raw)
    except ValueError:
        raise NetSuiteError(400, "The request body is not valid JSON.",
                            "INVALID_CONTENT") from None  # fmt: skip


def _void_order(body: Any) -> tuple[str, str, str]:
    """The record type, id and reason of a void RESTlet's body: those three strings, no
    other field."""
    if not isinstance(body, dict):
        raise NetSuiteError(400, "The request body must be a JSON object.")
    extra = sorted(body.keys() - set(VOID_FIELDS))
    if extra:
        raise errors.bad_field(extra[0], f"The void RESTlet takes no field {extra[0]}.")
    for name in VOID_FIELDS:
        if not isinstance(body.get(name), str) or not body[name]:
            detail = f"Please enter a text value for: {name}."
            raise errors.bad_field(name, detail, "INVALID_FLD_VALUE")
    if body["type"] not in VOIDABLE:
        raise NetSuiteError(400, f"A transaction of type {body['type']} cannot be voided.")
    return VOIDABLE[body["type"]], body["id"], body["reason"]


def _flag(params: dict[str, str], name: str) -> bool:
    value = params.get(name, "false").lower()
    if value not in ("true", "false"):
        raise errors.bad_parameter(name, f"{name} must be true or false.")
    return value == "true"


def _paging(params: dict[str, str]) -> tuple[int, int]:
    """SuiteQL's ``limit`` (1 to 1000, by default 1000) and ``offset`` (a multiple of the
    limit, so that pages never overlap)."""
    try:
        limit = int(params.get("limit", "1000"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        raise errors.bad_parameter("limit", "limit must be between 1 and 1000.")
    try:
        offset = int(params.get("offset", "0"))
    except ValueError:
        offset = -1
    if offset < 0 or offset % limit:
        detail = "offset must be zero or a positive multiple of limit."
        raise errors.bad_parameter("offset", detail)
    return limit, offset


def _only(out: dict[str, Any], kind: str, fields: str) -> dict[str, Any]:
    """``fields=``: the links and the named fields (those the record has) alone."""
    names = [name.strip() for name in fields.split(",") if name.strip()]
    if not names:
        raise errors.bad_parameter("fields", "fields must name at least one field.")
    for name in names:
        if name not in FIELDS[kind]:
            raise errors.bad_parameter("fields", f"Record type '{kind}' has no field {name}.")
    return {"links": out["links"], **{name: out[name] for name in names if name in out}}


def _sublist(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """An expanded sublist. Its links are empty: the sandbox serves no sublist routes."""
    items: list[dict[str, Any]] = [
        {"links": [], **{k: Decimal(v) if k in _AMOUNTS else v for k, v in line.items()}}
        for line in lines
    ]
    return {"links": [], "count": len(items), "hasMore": False, "items": items, "offset": 0,
            "totalResults": len(items)}  # fmt: skip


def _page_links(
    url: str, limit: int, offset: int, total: int, has_more: bool
) -> list[dict[str, str]]:
    def at(rel: str, start: int) -> dict[str, str]:
        return {"rel": rel, "href": f"{url}?limit={limit}&offset={start}"}

    links = [at("previous", max(0, offset - limit))] if offset > 0 else []
    links.append(at("first", 0))
    if has_more:
        links.append(at("next", offset + limit))
    links += [at("last", max(0, (total - 1) // limit * limit)), at("self", offset)]
    return links
