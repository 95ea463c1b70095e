"""The Zendesk Support connector: organizations, tickets and SLA breaches over the Support
API (``/api/v2``), authenticated with an API token (``{email}/token:{token}``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from connectors import paging
from connectors.base import Connector, Writer
from connectors.commands import (
    CommentOnCase,
    CreateCase,
    EscalateCase,
    WriteCommand,
    WriteResult,
)
from connectors.errors import UpstreamNotFound
from connectors.http import HttpClient
from connectors.models import ChangeBatch, ConnectorConfig, ObjectKind, Page, Record, SystemName
from connectors.support import errors, wire

_COLLECTIONS = {ObjectKind.CUSTOMER: "organizations", ObjectKind.CASE: "tickets"}
_PAGE_MAX = 100  # Zendesk's cursor pagination caps page[size] at 100
_SEARCH_CAP = 1000  # the Search API returns at most 1,000 results per query
_IDEMPOTENCY_FIELD = "opsgraph_idempotency_key"
Doc = Mapping[str, Any]


class _SearchCapped(Exception):
    """The search finds more than Zendesk will serve."""


def _relative(url: str) -> str:
    """A next-page link as a path on our own base URL, so credentials never follow a link
    to another host."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


class SupportConnector(Connector):
    system = SystemName.SUPPORT
    reads = frozenset({ObjectKind.CUSTOMER, ObjectKind.CASE, ObjectKind.SLA_BREACH})
    batch_limit = 100  # show_many takes at most 100 ids

    def __init__(
        self, config: ConnectorConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__()
        email = config.options.get("email", "opsgraph@example.com")
        self._breach_tag = config.options.get("breach_tag", wire.DEFAULT_BREACH_TAG)
        token = httpx.BasicAuth(f"{email}/token", config.secret)
        self._http = HttpClient(self.system, config, errors, self.requests, transport, auth=token)

    def _record(self, kind: ObjectKind, doc: Doc) -> Record:
        if kind is ObjectKind.CUSTOMER:
            return wire.to_customer(doc)
        return wire.to_case(doc, self._breach_tag)

    # reads

    def _may_exist(self, kind: ObjectKind, id_: str) -> bool:
        # Organizations and tickets have integer ids; a breach id is the export's own.
        return kind is ObjectKind.SLA_BREACH or wire.is_zendesk_id(id_)

    async def _fetch_batch(self, kind: ObjectKind, ids: Sequence[str]) -> Mapping[str, Record]:
        if kind is ObjectKind.SLA_BREACH:
            return await self._breaches_by_id(ids)
        collection = _COLLECTIONS[kind]
        body = await self._http.json(
            "GET", f"/api/v2/{collection}/show_many.json", params={"ids": ",".join(ids)}
        )
        return {str(doc["id"]): self._record(kind, doc) for doc in body[collection]}

    async def _breaches_by_id(self, ids: Sequence[str]) -> Mapping[str, Record]:
        """Zendesk cannot fetch metric events by id: this pages the incremental export
        until every id is found, so it is not a batched read (one request per page)."""
        wanted = set(ids)
        found: dict[str, Record] = {}
        async for page in paging.Pages(self._breach_page):
            found.update((r.id, r) for r in page.items if r.id in wanted)
            if wanted <= found.keys():
                break
        return found

    async def _list_page(
        self, kind: ObjectKind, cursor: str | None, limit: int, filters: Mapping[str, str]
    ) -> Page[Record]:
        if set(filters) - {"customer"}:
            raise self._rejected(f"{self.system} cannot filter by {', '.join(sorted(filters))}")
        customer = filters.get("customer")
        if customer is not None and kind is not ObjectKind.CASE:
            raise self._rejected(f"{self.system} cannot filter {kind} by customer")
        if kind is ObjectKind.SLA_BREACH:
            return await self._breach_page(cursor)
        collection = _COLLECTIONS[kind]
        if customer is None:
            path = f"/api/v2/{collection}.json"
        elif wire.is_zendesk_id(customer):
            path = f"/api/v2/organizations/{customer}/tickets.json"
        else:
            return Page(items=[], cursor=None)
        try:
            docs = await self._cursor_page(path, collection, cursor, limit)
        except UpstreamNotFound:
            if customer is None:
                raise
            return Page(items=[], cursor=None)  # no such organization: it has no tickets
        return Page(items=[self._record(kind, doc) for doc in docs.items], cursor=docs.cursor)

    async def _cursor_page(
        self, path: str, collection: str, cursor: str | None, size: int = _PAGE_MAX
    ) -> Page[Doc]:
        """One page of a collection under Zendesk's cursor pagination: ``page[after]`` is
        the ``after_cursor`` of the page before, while it ``has_more``."""
        params: dict[str, Any] = {"page[size]": max(1, min(size, _PAGE_MAX))}
        if cursor:
            params["page[after]"] = cursor
        body = await self._http.json("GET", path, params=params)
        meta = body.get("meta") or {}
        after = meta.get("after_cursor") if meta.get("has_more") else None
        return Page(items=body[collection], cursor=after)

    async def _breach_page(self, cursor: str | None) -> Page[Record]:
        """One page of the incremental ticket metric event export, breaches only. The
        export's page size is Zendesk's (1,000), so ``limit`` does not apply; the cursor is
        the export's ``start_time``, read from its ``next_page``."""
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
    ) -> list[list[Record]]:
        """Tickets of many organizations through one search: ``type:ticket organization:A
        organization:B``, relying on repeated terms of one field matching any of them (the
        sandbox does; not yet checked against a live Zendesk account). Search caps a query
        at 1,000 results; past that this falls back to listing per organization. Zendesk
        indexes new tickets for search within minutes, so a ticket created seconds ago may
        be missing here while ``list_page`` already shows it."""
        if kind is not ObjectKind.CASE:
            return await super().fetch_related(kind, parent_ids)
        groups: dict[str, list[Record]] = {p: [] for p in parent_ids}
        orgs = [p for p in groups if wire.is_zendesk_id(p)]
        if not orgs:
            return [[] for _ in parent_ids]
        query = " ".join(["type:ticket", *(f"organization:{o}" for o in orgs)])
        try:
            found = await paging.collect(lambda cursor: self._search_page(query, cursor))
        except _SearchCapped:
            return await super().fetch_related(kind, parent_ids)
        for doc in found:
            if doc.get("result_type", "ticket") == "ticket":
                case = wire.to_case(doc, self._breach_tag)
                groups.get(case.organization_id, []).append(case)
        return [list(groups[p]) for p in parent_ids]

    async def _search_page(self, query: str, cursor: str | None) -> Page[Doc]:
        """One page of search results; the cursor is the ``next_page`` link."""
        if cursor is None:
            params = {"query": query, "per_page": _PAGE_MAX}
            body = await self._http.json("GET", "/api/v2/search.json", params=params)
        else:
            body = await self._http.json("GET", _relative(cursor))
        if body.get("count", 0) > _SEARCH_CAP:
            raise _SearchCapped
        return Page(items=body["results"], cursor=body.get("next_page") or None)

    # writes

    def _writers(self) -> Mapping[type[WriteCommand], Writer]:
        return {
            CreateCase: self._create,
            CommentOnCase: self._comment,
            EscalateCase: self._escalate,
        }

    def _result(self, doc: Doc, created: bool) -> WriteResult:
        case = wire.to_case(doc, self._breach_tag)
        return WriteResult(
            system=self.system, kind=ObjectKind.CASE, id=case.id, created=created, record=case
        )

    async def _create(self, command: CreateCase, key: str) -> WriteResult:
        """Opens a ticket; Zendesk honours ``Idempotency-Key`` here, and ``created`` is
        False when the call replayed an earlier write with the same key."""
        if not wire.is_zendesk_id(command.organization_id):
            raise self._rejected(
                f"{self.system} rejected the case: organization_id "
                f"{command.organization_id!r} is not a Zendesk id"
            )
        response = await self._http.request(
            "POST",
            "/api/v2/tickets.json",
            json={"ticket": wire.ticket_body(command)},
            headers={"Idempotency-Key": key},
        )
        if response.status_code == 404:
            raise self._http.error_for(response)
        hit = response.headers.get("x-idempotency-lookup") == "hit"
        return self._result(response.json()["ticket"], created=not hit)

    async def _comment(self, command: CommentOnCase, key: str) -> WriteResult:
        comment = {"body": command.body, "public": command.public}
        return await self._update(command.case_id, {"comment": comment}, key)

    async def _escalate(self, command: EscalateCase, key: str) -> WriteResult:
        """A closed ticket takes no update: Zendesk's 422 is ``UpstreamRejected``."""
        return await self._update(command.case_id, wire.escalation(command), key)

    async def _update(self, case_id: str, update: Doc, key: str) -> WriteResult:
        """Zendesk honours ``Idempotency-Key`` only when creating tickets, so a retried
        update would apply twice (a second comment). The key rides in the audit's custom
        metadata instead, and a write first looks for an audit that carries it; an unknown
        ticket is ``UpstreamNotFound`` there, before anything is written."""
        if not wire.is_zendesk_id(case_id):
            raise self._rejected(f"{self.system}: {case_id!r} is not a ticket id")
        if await self._audited(case_id, key):
            ticket = await self._http.json("GET", f"/api/v2/tickets/{case_id}.json")
            return self._result(ticket["ticket"], created=False)
        sent = {**update, "metadata": {_IDEMPOTENCY_FIELD: key}}
        body = await self._http.json(
            "PUT", f"/api/v2/tickets/{case_id}.json", json={"ticket": sent}
        )
        return self._result(body["ticket"], created=True)

    async def _audited(self, case_id: str, key: str) -> bool:
        path = f"/api/v2/tickets/{case_id}/audits.json"
        async for page in paging.Pages(lambda cursor: self._cursor_page(path, "audits", cursor)):
            for audit in page.items:
                custom = (audit.get("metadata") or {}).get("custom") or {}
                if custom.get(_IDEMPOTENCY_FIELD) == key:
                    return True
        return False

    # change feed, health, SLA policies

    async def changes(self, since: str | None) -> ChangeBatch:
        """The cursor-based incremental ticket export."""
        params = {"cursor": since} if since else {"start_time": 0}
        body = await self._http.json(
            "GET", "/api/v2/incremental/tickets/cursor.json", params=params
        )
        events = [wire.ticket_change(ticket) for ticket in body["tickets"]]
        return ChangeBatch(
            events=events,
            cursor=body.get("after_cursor") or since or "",
            has_more=not body.get("end_of_stream", True),
        )

    async def _probe(self) -> str | None:
        # The ticket count is cheap and, unlike /users/me (which answers an anonymous user
        # when no credentials are sent), needs an authenticated agent.
        await self._http.json("GET", "/api/v2/tickets/count.json")
        return None

    async def sla_policies(self) -> list[wire.SlaPolicy]:
        """The account's SLA policies, in the order Zendesk matches them."""
        body = await self._http.json("GET", "/api/v2/slas/policies.json")
        policies = [wire.to_policy(p) for p in body["sla_policies"]]
        return sorted(policies, key=lambda p: p.position)

    async def aclose(self) -> None:
        await self._http.aclose()
