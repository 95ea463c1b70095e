"""The ERP connector: NetSuite REST web services, reads through SuiteQL, writes through the
record API.

Every read is one SuiteQL statement (``POST /services/rest/query/v1/suiteql`` with
``Prefer: transient``), paged with ``limit``/``offset``; a page's cursor is the next offset.
``postings_after`` pages whole ledgers by id instead. Writes create ``invoice`` /
``creditMemo`` records with ``X-NetSuite-Idempotency-Key``; NetSuite answers 204 and the new
record's ``Location``. A void goes to the RESTlet opsgraph deploys for it (the record API has
no void), with the same key. Subsidiary and currency ids are looked up by name once per
connector and remembered: they are reference data that does not move. Requests are
authenticated as ``auth.py`` says (OAuth 2.0 or TBA).

Options: ``item_id`` (the item every created line names), ``restlet_url`` (where RESTlets
are served: ``https://<account>.restlets.api.netsuite.com`` on NetSuite, another host than
the REST web services; by default the base URL, as in the sandbox).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

import httpx

from connectors import paging
from connectors.base import Connector, Writer
from connectors.commands import PostingCommand, VoidPosting, WriteCommand, WriteResult
from connectors.erp import auth, errors, suiteql, wire
from connectors.errors import UpstreamError, UpstreamNotFound
from connectors.http import HttpClient
from connectors.models import (
    Booked,
    ChangeBatch,
    ChangeEvent,
    ConnectorConfig,
    ObjectKind,
    Page,
    Posting,
    Record,
    SystemName,
)

CHANGES_PAGE = 500


class ErpConnector(Connector):
    system = SystemName.ERP
    reads = frozenset({ObjectKind.CUSTOMER, ObjectKind.POSTING, ObjectKind.BALANCE})
    batch_limit = 100

    def __init__(
        self, config: ConnectorConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__()
        signer = auth.from_config(config)
        self._http = HttpClient(self.system, config, errors, self.requests, transport, auth=signer)
        # NetSuite needs an item on every transaction line; accounts name theirs (the sandbox
        # does not insist on one).
        self._item_id = config.options.get("item_id")
        self._restlet = config.options.get("restlet_url", "").rstrip("/") + wire.RESTLET_PATH
        self._refs: dict[tuple[str, str], str] = {}

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- reads ----------------------------------------------------------------------------

    async def _fetch_batch(self, kind: ObjectKind, ids: Sequence[str]) -> Mapping[str, Record]:
        return {r.id: r for r in await self._select_all(kind, [suiteql.in_list("id", ids)])}

    async def _list_page(
        self, kind: ObjectKind, cursor: str | None, limit: int, filters: Mapping[str, str]
    ) -> Page[Record]:
        rows = await self._rows_page(kind, cursor, limit, filters)
        return Page(items=[wire.to_record(kind, row) for row in rows.items], cursor=rows.cursor)

    async def _rows_page(
        self, kind: ObjectKind, cursor: str | None, limit: int, filters: Mapping[str, str]
    ) -> Page[dict[str, Any]]:
        statement = suiteql.select(kind, self._conditions(kind, filters))
        limit = max(1, min(limit, suiteql.PAGE_MAX))
        return await self._suiteql(statement, limit, wire.offset_of(cursor))

    async def postings_after(
        self, after_id: int, limit: int, filters: Mapping[str, str]
    ) -> list[Posting]:
        """Up to ``limit`` (at most 1000) postings with ids above ``after_id``, in id order,
        among those ``filters`` keep (the filters ``list_page`` takes): keyset paging, for
        reading whole ledgers. Start at 0, pass the last id of each page for the next; a page
        shorter than ``limit`` is the last.

        Every page is ``... AND id > <after_id> ORDER BY id`` from offset 0, so the last page
        costs NetSuite what the first does; an offset read makes it pass over every row before
        the page, and cannot reach past SuiteQL's 100,000th result."""
        rows = await self._rows_after(after_id, limit, filters)
        return [wire.to_posting(row) for row in rows]

    async def booked_after(
        self, after_id: int, limit: int, filters: Mapping[str, str]
    ) -> list[Booked]:
        """``postings_after`` as ``Booked`` entries, read straight from the rows
        (``wire.booked_posting``): for reading whole ledgers without the models."""
        return [
            wire.booked_posting(row) for row in await self._rows_after(after_id, limit, filters)
        ]

    async def _ledger_page(
        self, kind: ObjectKind, cursor: str | None, limit: int, filters: Mapping[str, str]
    ) -> Page[Booked]:
        """Postings read straight from the rows (``wire.booked_posting``)."""
        if kind is not ObjectKind.POSTING:
            return await super()._ledger_page(kind, cursor, limit, filters)
        rows = await self._rows_page(kind, cursor, limit, filters)
        return Page(items=[wire.booked_posting(row) for row in rows.items], cursor=rows.cursor)

    async def _rows_after(
        self, after_id: int, limit: int, filters: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        if after_id < 0:
            raise self._rejected(f"{self.system} posting ids start above 0, not {after_id}")
        conditions = self._conditions(ObjectKind.POSTING, filters)
        limit = max(1, min(limit, suiteql.PAGE_MAX))
        rows = await self._suiteql(suiteql.postings_after(after_id, conditions), limit, 0)
        return rows.items

    async def postings_for(self, external_ids: Sequence[str]) -> list[Posting]:
        """Every posting carrying one of ``external_ids`` (the billing invoices or credit
        requests they post), voided ones included: one statement per batch of ids."""
        found: list[Posting] = []
        for batch in paging.batches(sorted(set(external_ids)), self.batch_limit):
            condition = suiteql.in_list("externalid", batch)
            records = await self._select_all(ObjectKind.POSTING, [condition])
            found += [r for r in records if isinstance(r, Posting)]
        return found

    async def fetch_related(
        self, kind: ObjectKind, parent_ids: Sequence[str]
    ) -> list[list[Record]]:
        """One SuiteQL statement per batch of customers (``entity IN (...)``) for postings;
        a customer's own record or balance is a ``fetch_many``."""
        if kind is not ObjectKind.POSTING:
            own = await self.fetch_many(kind, parent_ids)
            return [[r] if r is not None else [] for r in own]
        groups: dict[str, list[Record]] = {p: [] for p in parent_ids}
        for batch in paging.batches(parent_ids, self.batch_limit):
            for record in await self._select_all(kind, [suiteql.in_list("entity", batch)]):
                if isinstance(record, Posting) and record.customer_id in groups:
                    groups[record.customer_id].append(record)
        return [list(groups[p]) for p in parent_ids]

    async def _select_all(self, kind: ObjectKind, conditions: list[str]) -> list[Record]:
        """Every record the statement finds, paging past SuiteQL's 1000-row page."""
        statement = suiteql.select(kind, conditions)

        def page(cursor: str | None) -> Awaitable[Page[Record]]:
            return self._select_page(statement, kind, suiteql.PAGE_MAX, cursor)

        return await paging.collect(page)

    async def _select_page(
        self, statement: str, kind: ObjectKind, limit: int, cursor: str | None
    ) -> Page[Record]:
        rows = await self._suiteql(statement, limit, wire.offset_of(cursor))
        return Page(items=[wire.to_record(kind, row) for row in rows.items], cursor=rows.cursor)

    def _conditions(self, kind: ObjectKind, filters: Mapping[str, str]) -> list[str]:
        try:
            return suiteql.filter_conditions(kind, filters)
        except KeyError as exc:
            raise self._rejected(
                f"{self.system} cannot filter {kind} by {exc.args[0][1]!r}"
            ) from None
        except ValueError as exc:
            raise self._rejected(f"{self.system} cannot filter {kind}: {exc}") from None

    async def _suiteql(self, statement: str, limit: int, offset: int) -> Page[dict[str, Any]]:
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
                f"{self.system} answered SuiteQL with a body that is not JSON",
                system=self.system.value,
            ) from exc
        return wire.page_of(body, offset)

    # -- writes ---------------------------------------------------------------------------

    def _writers(self) -> Mapping[type[WriteCommand], Writer]:
        return {**dict.fromkeys(wire.RECORD_TYPES, self._post), VoidPosting: self._void}

    async def _post(self, command: PostingCommand, idempotency_key: str) -> WriteResult:
        record_type = wire.RECORD_TYPES[type(command)]
        subsidiary_id = await self._ref("subsidiary", "name", command.subsidiary)
        currency_id = await self._ref("currency", "symbol", command.amount.currency)
        body = wire.posting_body(command, subsidiary_id, currency_id, self._item_id)
        response = await self._http.request(
            "POST",
            f"{wire.RECORD_PATH}/{record_type}",
            content=wire.dumps(body),
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

    async def _void(self, command: VoidPosting, idempotency_key: str) -> WriteResult:
        """The posting read first, for the record type ``transaction.void`` needs, then the
        void RESTlet called. Whether it may be voided (not voided already) is the ERP's to
        say: a retry with the same key must get the first answer again, which a check of our
        own, made later, would contradict."""
        [posting] = await self.fetch_many(ObjectKind.POSTING, [command.posting_id])
        if not isinstance(posting, Posting):
            raise UpstreamNotFound(
                f"{self.system} has no posting {command.posting_id!r}", system=self.system.value
            )
        try:
            answer = await self._http.json(
                "POST",
                self._restlet,
                params=wire.VOID_SCRIPT,
                content=wire.dumps(wire.void_body(posting, command.reason)),
                headers={
                    "Content-Type": "application/json",
                    "X-NetSuite-Idempotency-Key": idempotency_key,
                },
            )
        except ValueError as exc:  # a 2xx whose body is not JSON
            raise UpstreamError(
                f"{self.system} answered the void RESTlet with a body that is not JSON",
                system=self.system.value,
            ) from exc
        # As with a create, a replayed key answers as the first call did: voided either way.
        record_id = wire.voided_id(answer, posting.id)
        return WriteResult(system=self.system, kind=ObjectKind.POSTING, id=record_id, created=True)

    async def _ref(self, table: str, column: str, value: str) -> str:
        key = (table, value)
        if key not in self._refs:
            rows = await self._suiteql(suiteql.lookup(table, column, value), 1, 0)
            if not rows.items:
                raise self._rejected(f"{self.system} has no {table} {value!r}")
            self._refs[key] = str(rows.items[0]["id"])
        return self._refs[key]

    # -- changes and health ---------------------------------------------------------------

    async def changes(self, since: str | None) -> ChangeBatch:
        """The sandbox's ``change`` table after sequence ``since``. Real NetSuite has no such
        table: there this would poll ``lastmodifieddate`` on each record type, or a saved
        search, and carry the newest timestamp seen as the cursor."""
        try:
            after = int(since) if since else 0
        except ValueError:
            raise self._rejected(f"not an {self.system} change cursor: {since!r}") from None
        rows = await self._suiteql(suiteql.CHANGES.format(after=after), CHANGES_PAGE, 0)
        events: list[ChangeEvent] = []
        for row in rows.items:
            events += wire.change_events(row)
        cursor = str(rows.items[-1]["seq"]) if rows.items else str(after)
        return ChangeBatch(events=events, cursor=cursor, has_more=rows.cursor is not None)

    async def _probe(self) -> str | None:
        await self._suiteql("SELECT id FROM customer", 1, 0)
        return None


class ShadowErpConnector(ErpConnector):
    """The ERP being replaced during a cut-over (``SystemName.ERP_SHADOW``): a NetSuite
    account too, spoken to the same way. It is addressed with the primary's customer ids
    (a migrated copy of the account keeps them)."""

    system = SystemName.ERP_SHADOW
