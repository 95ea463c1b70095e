"""The ERP sandbox's HTTP surface: NetSuite's SuiteQL collections and record endpoints, over
a ``Ledger``, behind a Bearer token."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from connectors.models import Record
from connectors.sandbox import jsonio
from connectors.sandbox.auth import Guard, bearer
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.erp import errors
from connectors.sandbox.erp.documents import TRANSACTIONS, Ledger, at_places
from connectors.sandbox.erp.errors import LOGIN_FAILED, MEDIA, QUERY_FAILED, NetSuiteError
from connectors.sandbox.erp.query import QueryError, execute, parse
from connectors.sandbox.idempotency import Replays
from connectors.sandbox.store import Store

__all__ = ["LOGIN_FAILED", "RECORD", "SUITEQL", "NetSuiteApi"]

RECORD = "/services/rest/record/v1"
SUITEQL = "/services/rest/query/v1/suiteql"
WRITABLE = ("invoice", "creditMemo")
_REF_TARGETS = {"entity": "customer", "subsidiary": "subsidiary", "currency": "currency"}
_AMOUNTS = ("subtotal", "taxTotal", "total")


def _reply(doc: Any, kind: str = "singular") -> Response:
    return Response(jsonio.dumps(doc), media_type=MEDIA + kind)


class NetSuiteApi:
    def __init__(self, config: SandboxConfig) -> None:
        # No webhooks: NetSuite has none to sign (see the package), so ``webhook_url`` is
        # not read.
        self.store = Store(config.db_path)
        self.ledger = Ledger(self.store)
        self.guard = Guard(config.secret, bearer, errors.unauthorized)
        # A synchronous create replays its first answer, whatever the body (no conflict).
        self.replays = Replays(self.store)

    def routes(self) -> list[BaseRoute]:
        protect = self.guard.protect
        return [
            Route(SUITEQL, protect(self.suiteql), methods=["POST"]),
            Route(RECORD + "/{kind}/{id}", protect(self.get_record), methods=["GET"]),
            Route(RECORD + "/{kind}", protect(self.create_record), methods=["POST"]),
        ]

    async def unrouted(self, request: Request, status: int) -> Response:
        return errors.unrouted(request.method, request.url.path, status).response()

    def seed(self, records: list[Record]) -> None:
        self.ledger.seed(records)

    async def suiteql(self, request: Request) -> Response:
        if "transient" not in request.headers.get("prefer", "").lower():
            detail = "SuiteQL requests need the header 'Prefer: transient'."
            raise NetSuiteError(400, detail, "INVALID_HEADER")
        try:
            limit = int(request.query_params.get("limit", "1000"))
            offset = int(request.query_params.get("offset", "0"))
        except ValueError:
            limit = offset = -1
        if not 1 <= limit <= 1000 or offset < 0:
            detail = "limit must be between 1 and 1000 and offset must not be negative."
            raise NetSuiteError(400, detail, "INVALID_PARAMETER")
        try:
            text = json.loads(await request.body())["q"]
            if not isinstance(text, str):
                raise TypeError(text)
        except (ValueError, KeyError, TypeError):
            detail = "The request body must be a JSON object with a 'q' query."
            raise NetSuiteError(400, detail) from None
        try:
            query = parse(text)
            rows = execute(query, self.ledger.table(query.table))
        except QueryError as exc:
            raise NetSuiteError(400, QUERY_FAILED + str(exc), "INVALID_PARAMETER") from None
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
            raise NetSuiteError(404, detail, "NONEXISTENT_ID")
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
            raise NetSuiteError(405, f"The sandbox cannot create {kind} records.",
                                "INVALID_PARAMETER")  # fmt: skip
        raw = await request.body()
        key = request.headers.get("x-netsuite-idempotency-key")
        outcome = self.replays.once(key, "", lambda: (204, self._create(kind, raw)))
        base = str(request.base_url).rstrip("/")
        return Response(status_code=204, headers={"Location": base + outcome.answer})

    def _create(self, kind: str, raw: bytes) -> str:
        """Write a new transaction; its path under the base URL."""
        try:
            body = jsonio.loads(raw)
        except ValueError:
            raise NetSuiteError(400, "The request body is not valid JSON.",
                                "INVALID_CONTENT") from None  # fmt: skip
        doc = self.ledger.new_transaction(kind, body)
        self.store.put(kind, doc["id"], doc)
        return f"{RECORD}/{kind}/{doc['id']}"


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
