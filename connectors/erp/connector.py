"""The ERP connector: NetSuite REST web services, reads through SuiteQL, writes through the
record API.

Every read is one SuiteQL statement (``POST /services/rest/query/v1/suiteql`` with
``Prefer: transient``), paged with ``limit``/``offset``; a ``list`` cursor is the next offset.
Writes create ``invoice`` / ``creditMemo`` records with ``X-NetSuite-Idempotency-Key``; NetSuite
answers 204 and the new record's ``Location``. Subsidiary and currency ids are looked up by
name once per connector and remembered: they are reference data that does not move.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from connectors.base import Connector
from connectors.erp import suiteql, wire
from connectors.errors import UpstreamError, UpstreamRejected
from connectors.http import HttpClient
from connectors.models import (
    ChangeBatch,
    ChangeEvent,
    ConnectorConfig,
    Health,
    ObjectKind,
    Page,
    Posting,
    Record,
    SystemName,
    WriteCommand,
    WriteResult,
)

CHANGES_PAGE = 500


class NetSuiteConnector(Connector):
    system = SystemName.ERP
    reads = frozenset({ObjectKind.CUSTOMER, ObjectKind.POSTING, ObjectKind.BALANCE})
    writes = frozenset({ObjectKind.POSTING})
    batch_limit = 100

    def __init__(
        self, config: ConnectorConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ):
        self._http = HttpClient(
            self.system.value,
            config.base_url,
            headers={"Authorization": f"Bearer {config.secret}", "Accept": "application/json"},
            timeout=config.timeout,
            describe=wire.describe,
            transport=transport,
            max_connections=config.max_connections,
        )
        # NetSuite needs an item on every transaction line; accounts name theirs (the sandbox
        # does not insist on one).
        self._item_id = config.options.get("item_id")
        self._refs: dict[tuple[str, str], str] = {}

    @property
    def calls(self) -> int:
        return self._http.calls

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- reads ----------------------------------------------------------------------------

    async def fetch_many(
        self, kind: ObjectKind, ids: Sequence[str]
    ) -> builtins.list[Record | None]:
        self._check_read(kind)
        found: dict[str, Record] = {}
        for start in range(0, len(ids), self.batch_limit):
            batch = builtins.list(dict.fromkeys(ids[start : start + self.batch_limit]))
            for record in await self._select_all(kind, [suiteql.in_list("id", batch)]):
                found[record.id] = record
        return [found.get(i) for i in ids]

    async def list(
        self,
        kind: ObjectKind,
        *,
        cursor: str | None = None,
        limit: int = 100,
        filters: Mapping[str, str] | None = None,
    ) -> Page:
        self._check_read(kind)
        conditions = self._conditions(kind, filters)
        try:
            offset = int(cursor) if cursor else 0
        except ValueError:
            raise UpstreamRejected(
                f"not an erp cursor: {cursor!r}", system=self.system.value
            ) from None
        limit = max(1, min(limit, suiteql.PAGE_MAX))
        rows, has_more = await self._suiteql(suiteql.select(kind, conditions), limit, offset)
        items = [wire.to_record(kind, row) for row in rows]
        return Page(items=items, cursor=str(offset + len(rows)) if has_more else None)

    async def fetch_related(
        self, kind: ObjectKind, parent_ids: Sequence[str]
    ) -> builtins.list[builtins.list[Record]]:
        """One SuiteQL statement per batch of customers (``entity IN (...)``) for postings;
        a customer's own record or balance is a ``fetch_many``."""
        self._check_read(kind)
        if kind is not ObjectKind.POSTING:
            own = await self.fetch_many(kind, parent_ids)
            return [[r] if r is not None else [] for r in own]
        groups: dict[str, builtins.list[Record]] = {p: [] for p in parent_ids}
        for start in range(0, len(parent_ids), self.batch_limit):
            batch = builtins.list(dict.fromkeys(parent_ids[start : start + self.batch_limit]))
            for record in await self._select_all(kind, [suiteql.in_list("entity", batch)]):
                if isinstance(record, Posting) and record.customer_id in groups:
                    groups[record.customer_id].append(record)
        return [builtins.list(groups[p]) for p in parent_ids]

    async def _select_all(
        self, kind: ObjectKind, conditions: builtins.list[str]
    ) -> builtins.list[Record]:
        """Every record the statement finds, paging past SuiteQL's 1000-row page."""
        statement = suiteql.select(kind, conditions)
        records: builtins.list[Record] = []
        while True:
            rows, has_more = await self._suiteql(statement, suiteql.PAGE_MAX, len(records))
            records += [wire.to_record(kind, row) for row in rows]
            if not has_more or not rows:
                return records

    def _check_read(self, kind: ObjectKind) -> None:
        if kind not in self.reads:
            raise self._refuse(kind)

    def _conditions(
        self, kind: ObjectKind, filters: Mapping[str, str] | None
    ) -> builtins.list[str]:
        try:
            return suiteql.filter_conditions(kind, filters or {})
        except KeyError as exc:
            raise UpstreamRejected(
                f"erp cannot filter {kind} by {exc.args[0][1]!r}", system=self.system.value
            ) from None

    async def _suiteql(
        self, statement: str, limit: int, offset: int
    ) -> tuple[builtins.list[dict[str, Any]], bool]:
        try:
            body = await self._http.json(
                "POST",
                wire.SUITEQL_PATH,
                params={"limit": limit, "offset": offset},
                headers={"Prefer": "transient"},
                json={"q": statement},
            )
        except ValueError as exc:  # a 2xx whose body is not JSON
            raise UpstreamError(
                "erp answered SuiteQL with a body that is not JSON", system=self.system.value
            ) from exc
        return wire.page_of(body)

    # -- writes ---------------------------------------------------------------------------

    async def write(self, command: WriteCommand, idempotency_key: str) -> WriteResult:
        if command.kind not in self.writes:
            raise self._refuse(command.kind, "write")
        record_type = wire.ACTIONS.get(command.action)
        if record_type is None:
            raise UpstreamRejected(f"erp cannot {command.action}", system=self.system.value)
        draft = wire.PostingDraft.from_payload(command.payload)
        subsidiary_id = await self._ref("subsidiary", "name", draft.subsidiary)
        currency_id = await self._ref("currency", "symbol", draft.amount.currency)
        response = await self._http.request(
            "POST",
            f"{wire.RECORD_PATH}/{record_type}",
            content=wire.dumps(draft.body(subsidiary_id, currency_id, self._item_id)),
            headers={
                "Content-Type": "application/json",
                "X-NetSuite-Idempotency-Key": idempotency_key,
            },
        )
        if response.status_code == 404:
            raise self._http.error_for(response)
        # A replayed key answers exactly as the first request did, so NetSuite cannot tell us
        # whether this call created the record or an earlier one did; either way it exists.
        record_id = wire.location_id(response.headers.get("Location"), record_type)
        return WriteResult(system=self.system, kind=ObjectKind.POSTING, id=record_id, created=True)

    async def _ref(self, table: str, column: str, value: str) -> str:
        key = (table, value)
        if key not in self._refs:
            rows, _ = await self._suiteql(suiteql.lookup(table, column, value), 1, 0)
            if not rows:
                raise UpstreamRejected(f"erp has no {table} {value!r}", system=self.system.value)
            self._refs[key] = str(rows[0]["id"])
        return self._refs[key]

    # -- changes and health ---------------------------------------------------------------

    async def changes(self, since: str | None) -> ChangeBatch:
        """The sandbox's ``change`` table after sequence ``since``. Real NetSuite has no such
        table: there this would poll ``lastmodifieddate`` on each record type, or a saved
        search, and carry the newest timestamp seen as the cursor."""
        try:
            after = int(since) if since else 0
        except ValueError:
            raise UpstreamRejected(
                f"not an erp change cursor: {since!r}", system=self.system.value
            ) from None
        rows, has_more = await self._suiteql(suiteql.CHANGES.format(after=after), CHANGES_PAGE, 0)
        events: builtins.list[ChangeEvent] = []
        for row in rows:
            events += wire.change_events(row)
        cursor = str(rows[-1]["seq"]) if rows else str(after)
        return ChangeBatch(events=events, cursor=cursor, has_more=has_more)

    async def health(self) -> Health:
        started = time.monotonic()
        try:
            await self._suiteql("SELECT id FROM customer", 1, 0)
        except UpstreamError as exc:
            return Health(
                system=self.system, healthy=False, latency_ms=_ms(started), detail=exc.message
            )
        return Health(system=self.system, healthy=True, latency_ms=_ms(started))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def connect(config: ConnectorConfig) -> NetSuiteConnector:
    return NetSuiteConnector(config)
