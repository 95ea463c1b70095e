"""The Zendesk Support connector: organizations, tickets and SLA breaches over the Support
API (``/api/v2``), authenticated with an API token (``{email}/token:{token}``)."""

from __future__ import annotations

import builtins
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from connectors.base import Connector
from connectors.errors import UpstreamConflict, UpstreamError, UpstreamRejected
from connectors.http import HttpClient
from connectors.models import (
    ChangeBatch,
    ChangeEvent,
    ChangeType,
    ConnectorConfig,
    Health,
    ObjectKind,
    Page,
    Record,
    SystemName,
    WriteCommand,
    WriteResult,
)
from connectors.support import wire

_COLLECTIONS = {ObjectKind.CUSTOMER: "organizations", ObjectKind.CASE: "tickets"}
_PAGE_MAX = 100  # Zendesk's cursor pagination caps page[size] at 100
_SEARCH_CAP = 1000  # the Search API returns at most 1,000 results per query
_IDEMPOTENCY_FIELD = "opsgraph_idempotency_key"


def _relative(url: str) -> str:
    """A next-page link as a path on our own base URL, so credentials never follow a link
    to another host."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


class SupportConnector(Connector):
    system = SystemName.SUPPORT
    reads = frozenset({ObjectKind.CUSTOMER, ObjectKind.CASE, ObjectKind.SLA_BREACH})
    writes = frozenset({ObjectKind.CASE})
    batch_limit = 100  # show_many takes at most 100 ids

    def __init__(
        self, config: ConnectorConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        email = config.options.get("email", "opsgraph@example.com")
        self._breach_tag = config.options.get("breach_tag", wire.DEFAULT_BREACH_TAG)
        self._http = HttpClient(
            self.system.value,
            config.base_url,
            auth=httpx.BasicAuth(f"{email}/token", config.secret),
            headers={"Accept": "application/json"},
            timeout=config.timeout,
            describe=wire.describe,
            transport=transport,
            max_connections=config.max_connections,
        )

    @property
    def calls(self) -> int:
        return self._http.calls

    def _record(self, kind: ObjectKind, doc: Mapping[str, Any]) -> Record:
        if kind is ObjectKind.CUSTOMER:
            return wire.to_customer(doc)
        return wire.to_case(doc, self._breach_tag)

    def _rejected(self, message: str) -> UpstreamRejected:
        return UpstreamRejected(message, system=self.system.value)

    # reads

    async def fetch_many(
        self, kind: ObjectKind, ids: Sequence[str]
    ) -> builtins.list[Record | None]:
        if kind not in self.reads:
            raise self._refuse(kind)
        if kind is ObjectKind.SLA_BREACH:
            return await self._breaches_by_id(ids)
        collection = _COLLECTIONS[kind]
        # An id that is not a Zendesk integer cannot exist there: answer None without asking.
        wanted = [i for i in dict.fromkeys(ids) if wire.is_zendesk_id(i)]
        found: dict[str, Record] = {}
        if wanted:
            body = await self._http.json(
                "GET", f"/api/v2/{collection}/show_many.json", params={"ids": ",".join(wanted)}
            )
            found = {str(doc["id"]): self._record(kind, doc) for doc in body[collection]}
        return [found.get(i) for i in ids]

    async def _breaches_by_id(self, ids: Sequence[str]) -> builtins.list[Record | None]:
        """Zendesk cannot fetch metric events by id: this pages the incremental export
        and picks the ids, so it is not a batched read (one request per export page)."""
        wanted = set(ids)
        found: dict[str, Record] = {}
        cursor: str | None = None
        while True:
            page = await self._breach_page(cursor)
            found.update((r.id, r) for r in page.items if r.id in wanted)
            if page.cursor is None or wanted <= found.keys():
                return [found.get(i) for i in ids]
            cursor = page.cursor

    async def list(
        self,
        kind: ObjectKind,
        *,
        cursor: str | None = None,
        limit: int = 100,
        filters: Mapping[str, str] | None = None,
    ) -> Page:
        if kind not in self.reads:
            raise self._refuse(kind)
        filters = filters or {}
        if set(filters) - {"customer"}:
            raise self._rejected(f"support cannot filter by {', '.join(sorted(filters))}")
        customer = filters.get("customer")
        if customer is not None and kind is not ObjectKind.CASE:
            raise self._rejected(f"support cannot filter {kind} by customer")
        if kind is ObjectKind.SLA_BREACH:
            return await self._breach_page(cursor)
        collection = _COLLECTIONS[kind]
        if customer is None:
            path = f"/api/v2/{collection}.json"
        elif wire.is_zendesk_id(customer):
            path = f"/api/v2/organizations/{customer}/tickets.json"
        else:
            return Page(items=[], cursor=None)
        params: dict[str, Any] = {"page[size]": max(1, min(limit, _PAGE_MAX))}
        if cursor:
            params["page[after]"] = cursor
        response = await self._http.request("GET", path, params=params)
        if response.status_code == 404:
            if customer is not None:  # no such organization: it has no tickets
                return Page(items=[], cursor=None)
            raise self._http.error_for(response)
        body = response.json()
        meta = body.get("meta") or {}
        return Page(
            items=[self._record(kind, doc) for doc in body[collection]],
            cursor=meta.get("after_cursor") if meta.get("has_more") else None,
        )

    async def _breach_page(self, cursor: str | None) -> Page:
        """One page of the incremental ticket metric event export, breaches only. The
        export's page size is Zendesk's (1,000), so ``limit`` does not apply; the cursor is
        the export's ``start_time``."""
        body = await self._http.json(
            "GET",
            "/api/v2/incremental/ticket_metric_events.json",
            params={"start_time": cursor or "0"},
        )
        events = body["ticket_metric_events"]
        next_page = body.get("next_page")
        next_start = parse_qs(urlsplit(next_page).query).get("start_time") if next_page else None
        return Page(
            items=[wire.to_breach(e) for e in events if wire.is_breach(e)],
            cursor=next_start[0] if next_start else None,
        )

    async def fetch_related(
        self, kind: ObjectKind, parent_ids: Sequence[str]
    ) -> builtins.list[builtins.list[Record]]:
        """Tickets of many organizations through one search: ``type:ticket organization:A
        organization:B``, relying on repeated terms of one field matching any of them (the
        sandbox does; not yet checked against a live Zendesk account). Search caps a query
        at 1,000 results; past that this falls back to listing per organization. Zendesk
        indexes new tickets for search within minutes, so a ticket created seconds ago may
        be missing here while ``list`` already shows it."""
        if kind is not ObjectKind.CASE:
            return await super().fetch_related(kind, parent_ids)
        groups: dict[str, builtins.list[Record]] = {p: [] for p in parent_ids}
        orgs = [p for p in groups if wire.is_zendesk_id(p)]
        if not orgs:
            return [[] for _ in parent_ids]
        query = " ".join(["type:ticket", *(f"organization:{o}" for o in orgs)])
        path = "/api/v2/search.json"
        params: dict[str, Any] | None = {"query": query, "per_page": _PAGE_MAX}
        while True:
            body = await self._http.json("GET", path, params=params)
            if body.get("count", 0) > _SEARCH_CAP:
                return await super().fetch_related(kind, parent_ids)
            for doc in body["results"]:
                if doc.get("result_type", "ticket") == "ticket":
                    case = wire.to_case(doc, self._breach_tag)
                    groups.get(case.organization_id, []).append(case)
            if not body.get("next_page"):
                return [builtins.list(groups[p]) for p in parent_ids]
            path, params = _relative(body["next_page"]), None

    # writes

    async def write(self, command: WriteCommand, idempotency_key: str) -> WriteResult:
        """``create`` opens a ticket (Zendesk honours ``Idempotency-Key`` there); ``comment``
        adds a comment ({case_id, body, public}) to one. ``created`` is False when the call
        replayed an earlier write with the same key."""
        if command.kind not in self.writes:
            raise self._refuse(command.kind, "write")
        if command.action == "create":
            return await self._create(command.payload, idempotency_key)
        if command.action == "comment":
            return await self._comment(command.payload, idempotency_key)
        raise self._rejected(f"support cannot {command.action} a {command.kind}")

    def _result(self, doc: Mapping[str, Any], created: bool) -> WriteResult:
        case = wire.to_case(doc, self._breach_tag)
        return WriteResult(
            system=self.system, kind=ObjectKind.CASE, id=case.id, created=created, record=case
        )

    async def _create(self, payload: Mapping[str, Any], key: str) -> WriteResult:
        try:
            ticket = wire.ticket_create_body(payload)
        except ValueError as exc:
            raise self._rejected(f"support rejected the case: {exc}") from None
        try:
            response = await self._http.request(
                "POST",
                "/api/v2/tickets.json",
                json={"ticket": ticket},
                headers={"Idempotency-Key": key},
            )
        except UpstreamRejected as exc:
            if "IdempotentRequestError" in (exc.internal or ""):
                raise UpstreamConflict(
                    "support: this idempotency key was used for a different case",
                    system=self.system.value,
                    internal=exc.internal,
                ) from exc
            raise
        if response.status_code == 404:
            raise self._http.error_for(response)
        hit = response.headers.get("x-idempotency-lookup") == "hit"
        return self._result(response.json()["ticket"], created=not hit)

    async def _comment(self, payload: Mapping[str, Any], key: str) -> WriteResult:
        """Zendesk honours ``Idempotency-Key`` only when creating tickets, so a retried
        update would add the comment twice. The key rides in the audit's custom metadata
        instead, and a write first looks for an audit that carries it."""
        case_id = str(payload.get("case_id", ""))
        if not wire.is_zendesk_id(case_id) or not payload.get("body"):
            raise self._rejected("support: a comment needs a ticket id (case_id) and a body")
        if await self._audited(case_id, key):
            ticket = await self._http.json("GET", f"/api/v2/tickets/{case_id}.json")
            return self._result(ticket["ticket"], created=False)
        update = {
            "comment": {"body": payload["body"], "public": bool(payload.get("public", False))},
            "metadata": {_IDEMPOTENCY_FIELD: key},
        }
        body = await self._http.json(
            "PUT", f"/api/v2/tickets/{case_id}.json", json={"ticket": update}
        )
        return self._result(body["ticket"], created=True)

    async def _audited(self, case_id: str, key: str) -> bool:
        path = f"/api/v2/tickets/{case_id}/audits.json"
        params: dict[str, Any] = {"page[size]": _PAGE_MAX}
        while True:
            body = await self._http.json("GET", path, params=params)
            for audit in body["audits"]:
                custom = (audit.get("metadata") or {}).get("custom") or {}
                if custom.get(_IDEMPOTENCY_FIELD) == key:
                    return True
            meta = body.get("meta") or {}
            if not meta.get("has_more"):
                return False
            params = {"page[size]": _PAGE_MAX, "page[after]": meta["after_cursor"]}

    # change feed, health, SLA policies

    async def changes(self, since: str | None) -> ChangeBatch:
        """The cursor-based incremental ticket export. Zendesk sends each changed ticket's
        current state, not what changed: a ticket never updated since creation
        (created_at == updated_at) is reported as created."""
        params = {"cursor": since} if since else {"start_time": 0}
        body = await self._http.json(
            "GET", "/api/v2/incremental/tickets/cursor.json", params=params
        )
        events = [
            ChangeEvent(
                system=self.system,
                kind=ObjectKind.CASE,
                id=str(t["id"]),
                occurred_at=wire.parse_time(t["updated_at"]),
                type=(
                    ChangeType.DELETED
                    if t.get("status") == "deleted"
                    else ChangeType.CREATED
                    if t["created_at"] == t["updated_at"]
                    else ChangeType.UPDATED
                ),
            )
            for t in body["tickets"]
        ]
        return ChangeBatch(
            events=events,
            cursor=body.get("after_cursor") or since or "",
            has_more=not body.get("end_of_stream", True),
        )

    async def health(self) -> Health:
        # The ticket count is cheap and, unlike /users/me (which answers an anonymous user
        # when no credentials are sent), needs an authenticated agent.
        started = time.perf_counter()
        try:
            await self._http.json("GET", "/api/v2/tickets/count.json")
        except UpstreamError as exc:
            detail: str | None = exc.message
        else:
            detail = None
        return Health(
            system=self.system,
            healthy=detail is None,
            latency_ms=round((time.perf_counter() - started) * 1000),
            detail=detail,
        )

    async def sla_policies(self) -> builtins.list[wire.SlaPolicy]:
        """The account's SLA policies, in the order Zendesk matches them."""
        body = await self._http.json("GET", "/api/v2/slas/policies.json")
        policies = [wire.to_policy(p) for p in body["sla_policies"]]
        return sorted(policies, key=lambda p: p.position)

    async def aclose(self) -> None:
        await self._http.aclose()
