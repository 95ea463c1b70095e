"""The ERP sandbox's HTTP surface: NetSuite's auth, error bodies, SuiteQL collections and
record endpoints, over a ``Ledger``."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from connectors.sandbox.erp.documents import TRANSACTIONS, Invalid, Ledger, at_places
from connectors.sandbox.erp.suiteql import QueryError, execute, parse

RECORD = "/services/rest/record/v1"
SUITEQL = "/services/rest/query/v1/suiteql"
MEDIA = "application/vnd.oracle.resource+json; type="
WRITABLE = ("invoice", "creditMemo")
_REF_TARGETS = {"entity": "customer", "subsidiary": "subsidiary", "currency": "currency"}
_AMOUNTS = ("subtotal", "taxTotal", "total")
_SECTIONS = {400: "15.5.1", 401: "15.5.2", 403: "15.5.4", 404: "15.5.5", 405: "15.5.6",
             409: "15.5.10", 500: "15.6.1", 502: "15.6.3", 503: "15.6.4",
             504: "15.6.5"}  # fmt: skip
LOGIN_FAILED = (
    "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at "
    "Setup > Users/Roles > User Management > View Login Audit Trail."
)
QUERY_FAILED = "Invalid search query. Detailed unprocessed description follows. "


def error_document(status: int, detail: str, code: str) -> dict[str, Any]:
    if status == 429:
        kind = "https://www.rfc-editor.org/rfc/rfc6585.html#section-4"
    else:
        section = _SECTIONS.get(status, "15.6.1" if status >= 500 else "15.5.1")
        kind = f"https://www.rfc-editor.org/rfc/rfc9110.html#section-{section}"
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    return {
        "type": kind,
        "title": title,
        "status": status,
        "o:errorDetails": [{"detail": detail, "o:errorCode": code}],
    }


def error_body(status: int, message: str) -> tuple[bytes, str]:
    """Injected faults, phrased as NetSuite phrases them."""
    if status == 429:
        code = "CONCURRENCY_LIMIT_EXCEEDED"
    else:
        code = "UNEXPECTED_ERROR" if status >= 500 else "USER_ERROR"
    return json.dumps(error_document(status, message, code)).encode(), MEDIA + "error"


def dumps(value: Any) -> str:
    """JSON with ``Decimal`` written as a number, digit for digit (``json`` cannot)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def _reply(doc: Any, status: int = 200, kind: str = "singular") -> Response:
    return Response(dumps(doc), status_code=status, media_type=MEDIA + kind)


def _error(status: int, detail: str, code: str) -> Response:
    return _reply(error_document(status, detail, code), status, "error")


Endpoint = Callable[[Request], Awaitable[Response]]


class NetSuiteApi:
    def __init__(self, ledger: Ledger, secret: str) -> None:
        self.ledger = ledger
        self.store = ledger.store
        self.secret = secret

    def guarded(self, endpoint: Endpoint) -> Endpoint:
        async def check(request: Request) -> Response:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, f"Bearer {self.secret}".encode()):
                return _error(401, LOGIN_FAILED, "INVALID_LOGIN")
            return await endpoint(request)

        return check

    async def suiteql(self, request: Request) -> Response:
        if "transient" not in request.headers.get("prefer", "").lower():
            detail = "SuiteQL requests need the header 'Prefer: transient'."
            return _error(400, detail, "INVALID_HEADER")
        try:
            limit = int(request.query_params.get("limit", "1000"))
            offset = int(request.query_params.get("offset", "0"))
        except ValueError:
            limit = offset = -1
        if not 1 <= limit <= 1000 or offset < 0:
            detail = "limit must be between 1 and 1000 and offset must not be negative."
            return _error(400, detail, "INVALID_PARAMETER")
        try:
            text = json.loads(await request.body())["q"]
            if not isinstance(text, str):
                raise TypeError(text)
        except (ValueError, KeyError, TypeError):
            detail = "The request body must be a JSON object with a 'q' query."
            return _error(400, detail, "USER_ERROR")
        try:
            query = parse(text)
            rows = execute(query, self.ledger.table(query.table))
        except QueryError as exc:
            return _error(400, QUERY_FAILED + str(exc), "INVALID_PARAMETER")
        items = [{"links": [], **row} for row in rows[offset : offset + limit]]
        has_more = offset + len(items) < len(rows)
        url = str(request.url.remove_query_params(["limit", "offset"]))
        return _reply(
            {
                "links": _page_links(url, limit, offset, len(rows), has_more),
                "count": len(items),
                "hasMore": has_more,
                "items": items,
                "offset": offset,
                "totalResults": len(rows),
            },
            kind="collection",
        )

    async def get_record(self, request: Request) -> Response:
        kind, id_ = request.path_params["kind"], request.path_params["id"]
        doc = self.store.get(kind, id_) if kind in ("customer", *TRANSACTIONS) else None
        if doc is None:
            detail = "The record instance does not exist. Provide a valid record instance ID."
            return _error(404, detail, "NONEXISTENT_ID")
        base = str(request.base_url).rstrip("/") + RECORD
        out: dict[str, Any] = {"links": [{"rel": "self", "href": f"{base}/{kind}/{id_}"}]}
        for key, value in doc.items():
            if key in _REF_TARGETS:
                href = f"{base}/{_REF_TARGETS[key]}/{value['id']}"
                value = {"links": [{"rel": "self", "href": href}], **value}
            elif key in _AMOUNTS:
                value = Decimal(value)
            out[key] = value
        if kind == "customer" and "currency" in doc:
            balance = self.ledger.balances().get(id_, Decimal(0))
            out["balance"] = Decimal(at_places(balance, doc["currency"]["refName"]))
        return _reply(out)

    async def create_record(self, request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in WRITABLE:
            return _error(405, f"The sandbox cannot create {kind} records.", "INVALID_PARAMETER")
        raw = await request.body()
        # Checked and written with no await in between, so a concurrent retry with the same
        # key cannot slip past the check.
        key = request.headers.get("x-netsuite-idempotency-key")
        seen = self.store.remembered(key) if key else None
        if seen is not None:
            return _created(request, seen[1]["location"])
        try:
            doc = self.ledger.new_transaction(kind, json.loads(raw, parse_float=Decimal))
        except ValueError:
            return _error(400, "The request body is not valid JSON.", "INVALID_CONTENT")
        except Invalid as exc:
            return _error(400, exc.detail, exc.code)
        self.store.put(kind, doc["id"], doc)
        location = f"{RECORD}/{kind}/{doc['id']}"
        if key:
            self.store.remember(key, 204, {"location": location})
        return _created(request, location)


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


def _created(request: Request, location: str) -> Response:
    base = str(request.base_url).rstrip("/")
    return Response(status_code=204, headers={"Location": base + location})


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 / 405, in NetSuite's body."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return _error(404, f"Unknown path {request.url.path}.", "NONEXISTENT_ID")
    return _error(status, f"{request.method} is not allowed here.", "INVALID_PARAMETER")
