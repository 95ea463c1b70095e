"""The connector contract: what every system of record must answer, and the kit around it.

The public methods are template methods: they guard what a connector reads and writes,
de-duplicate and batch ids, dispatch typed write commands and time health probes, then call
the few hooks a connector implements::

    _fetch_batch(kind, ids)      records among at most ``batch_limit`` distinct ids, by id
    _list_page(kind, ...)        one page of ``kind``: the system's "next page" hook
    _writers()                   write command type -> the method that applies it
    _probe()                     a cheap authenticated call
    changes(since)               the change feed

plus, where the system allows better, ``_may_exist`` (ids that cannot exist there are
answered None without a call) and ``fetch_related``. Paging is ``connectors.paging``;
retries, deadlines and the breaker are ``connectors.resilience``, which walks pages one
``run`` at a time; counting upstream requests is the HTTP client's event hook.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

from connectors import paging
from connectors.commands import WriteCommand, WriteResult
from connectors.errors import UpstreamError, UpstreamRejected
from connectors.http import RequestCounter
from connectors.models import (
    Booked,
    ChangeBatch,
    Health,
    Invoice,
    ObjectKind,
    Page,
    Posting,
    Record,
    SystemName,
)

# (command, idempotency key) -> what was written; each takes its own command type
Writer = Callable[[Any, str], Awaitable[WriteResult]]
_LEDGERS = frozenset({ObjectKind.INVOICE, ObjectKind.POSTING})  # what ``ledger_page`` reads


class Connector(ABC):
    system: ClassVar[SystemName]
    # What ``fetch_many`` / ``list_page`` answer for.
    reads: ClassVar[frozenset[ObjectKind]]
    # The most ids one upstream call may carry; ``fetch_many`` splits larger batches.
    batch_limit: ClassVar[int] = 100

    def __init__(self) -> None:
        # The connector's HTTP client counts every request it sends through this hook.
        self.requests = RequestCounter()

    @property
    def calls(self) -> int:
        """Upstream requests sent so far; tests and benchmarks read it."""
        return self.requests.sent

    @property
    def writes(self) -> frozenset[ObjectKind]:
        """The kinds ``write`` accepts a command for."""
        return frozenset(command.kind for command in self._writers())

    # -- reads --------------------------------------------------------------------------

    async def fetch_many(self, kind: ObjectKind, ids: Sequence[str]) -> list[Record | None]:
        """Records for ``ids``, in the same order; None where the system has no such id.
        Each batch of up to ``batch_limit`` distinct ids costs one ``_fetch_batch``."""
        self._check_read(kind)
        found: dict[str, Record] = {}
        possible = (i for i in ids if self._may_exist(kind, i))
        for batch in paging.batches(possible, self.batch_limit):
            found.update(await self._fetch_batch(kind, batch))
        return [found.get(i) for i in ids]

    async def list_page(
        self,
        kind: ObjectKind,
        *,
        cursor: str | None = None,
        limit: int = 100,
        filters: Mapping[str, str] | None = None,
    ) -> Page[Record]:
        """One page of ``kind``; pass the returned cursor back for the next page."""
        self._check_read(kind)
        return await self._list_page(kind, cursor, limit, filters or {})

    async def ledger_page(
        self,
        kind: ObjectKind,
        *,
        cursor: str | None = None,
        limit: int = 100,
        filters: Mapping[str, str] | None = None,
    ) -> Page[Booked]:
        """``list_page`` of invoices or postings as ``Booked`` entries, for reading a whole
        ledger."""
        if kind not in _LEDGERS:
            raise self._rejected(f"{self.system} keeps no ledger of {kind}")
        self._check_read(kind)
        return await self._ledger_page(kind, cursor, limit, filters or {})

    async def _ledger_page(
        self, kind: ObjectKind, cursor: str | None, limit: int, filters: Mapping[str, str]
    ) -> Page[Booked]:
        """The records of a page, booked; a connector may read the entries straight from
        its wire format instead (``BillingConnector``, ``ErpConnector``)."""
        page = await self._list_page(kind, cursor, limit, filters)
        return Page(items=[self._booked(r) for r in page.items], cursor=page.cursor)

    def _booked(self, record: Record) -> Booked:
        if isinstance(record, Invoice):
            return Booked.of_invoice(record)
        if isinstance(record, Posting):
            return Booked.of_posting(record)
        raise UpstreamError(
            f"{self.system} listed a {type(record).__name__} in a ledger",
            system=self.system.value,
        )

    async def list_all(
        self, kind: ObjectKind, *, filters: Mapping[str, str] | None = None, limit: int = 100
    ) -> list[Record]:
        """Every record of ``kind``, ``limit`` a page."""

        def page(cursor: str | None) -> Awaitable[Page[Record]]:
            return self.list_page(kind, cursor=cursor, limit=limit, filters=filters)

        return await paging.collect(page)

    async def fetch_related(
        self, kind: ObjectKind, parent_ids: Sequence[str]
    ) -> list[list[Record]]:
        """All records of ``kind`` that belong to each parent (a customer id in this
        system), in parent order. The default lists per parent concurrently; a connector
        whose API can filter on many parents in one request overrides it."""

        async def one(parent: str) -> list[Record]:
            return await self.list_all(kind, filters={"customer": parent})

        return list(await asyncio.gather(*(one(p) for p in parent_ids)))

    def _may_exist(self, kind: ObjectKind, id_: str) -> bool:
        """Whether ``id_`` could name a ``kind`` in this system at all; ids that cannot are
        answered None without asking."""
        return True

    @abstractmethod
    async def _fetch_batch(self, kind: ObjectKind, ids: Sequence[str]) -> Mapping[str, Record]:
        """The records found among ``ids`` (distinct, at most ``batch_limit``), by the id
        asked for; one upstream request where the system's API allows it."""

    @abstractmethod
    async def _list_page(
        self, kind: ObjectKind, cursor: str | None, limit: int, filters: Mapping[str, str]
    ) -> Page[Record]:
        """One page of a readable ``kind``, its cursor naming the next (None at the end)."""

    # -- writes -------------------------------------------------------------------------

    async def write(self, command: WriteCommand, idempotency_key: str) -> WriteResult:
        """Apply ``command`` exactly once: the same key sent again must not write twice."""
        writer = self._writers().get(type(command))
        if writer is None:
            raise self._refuse("write", f"{command.kind} ({type(command).__name__})")
        return await writer(command, idempotency_key)

    def _writers(self) -> Mapping[type[WriteCommand], Writer]:
        """The write commands this connector applies, each to the method that applies it."""
        return {}

    # -- changes and health -------------------------------------------------------------

    @abstractmethod
    async def changes(self, since: str | None) -> ChangeBatch:
        """Changes after the opaque cursor ``since`` (None: from the beginning)."""

    async def health(self) -> Health:
        """Whether the system answers ``_probe`` now, and how long it took."""
        started = time.monotonic()
        try:
            detail = await self._probe()
        except UpstreamError as exc:
            healthy, detail = False, exc.message
        else:
            healthy = True
        latency_ms = round((time.monotonic() - started) * 1000)
        return Health(system=self.system, healthy=healthy, latency_ms=latency_ms, detail=detail)

    @abstractmethod
    async def _probe(self) -> str | None:
        """A cheap authenticated call that proves the system answers; raises the
        ``UpstreamError`` that says why not. Returns a detail worth showing, if any."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Release connections; the default has none."""

    # -- refusals -----------------------------------------------------------------------

    def _check_read(self, kind: ObjectKind) -> None:
        if kind not in self.reads:
            raise self._refuse("read", kind)

    def _refuse(self, verb: str, what: str) -> UpstreamRejected:
        """The one refusal of what a connector does not do, before anything is sent."""
        return UpstreamRejected(f"{self.system} does not {verb} {what}", system=self.system.value)

    def _rejected(self, message: str) -> UpstreamRejected:
        """A request this system cannot serve (a filter it lacks, a cursor not its own),
        refused before anything is sent."""
        return UpstreamRejected(message, system=self.system.value)
