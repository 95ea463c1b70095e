"""The reconciler: compares what the source system says happened (billing's finalised
invoices, approved service credits) with what the target posted (the ERP's invoices and
credit memos), per legal entity and accounting period, on business outcomes: posted exactly
once, for the same amount, tax and currency, in the same period.

A run reads both sides page by page into ``reconciliation_items`` (a keyed table in the
gateway's database) and merges them ordered by key, so that neither system is ever held in
memory: memory follows a page and a key's records, not the ledger. What differs becomes an
exception kept across runs (one per source, target, kind and key): a run that finds it again
updates it, one that no longer finds it (a full run over its entity and period) marks it
auto-resolved, and one that finds a resolved exception again reopens it. Severity follows
business impact (``rules.severity``) with what the CRM says of the account.

A run works in a task of its own: ``start`` answers at once with the run, whose progress is
published on ``RECONCILIATION_RUNS`` and whose new exceptions on
``RECONCILIATION_EXCEPTIONS``. A run whose heartbeat stopped (its process died) is marked
failed by the next that starts; nothing it found is lost, and nothing is auto-resolved from
a run that did not complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Delete,
    String,
    and_,
    delete,
    func,
    insert,
    literal,
    not_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors import paging
from connectors.errors import GatewayError
from connectors.models import (
    Account,
    Booked,
    ExceptionKind,
    ExceptionStatus,
    Invoice,
    ObjectKind,
    Page,
    Posting,
    PostingState,
    PostingType,
    Record,
    SystemName,
)
from gateway.data.detached import stop
from gateway.data.registry import SHADOWS, Registry
from gateway.data.remembered import Kind, Remembered
from gateway.errors import BadUserInput
from gateway.events.broadcast import Broadcast
from gateway.events.canonical import changes_of, restored
from gateway.reconcile.records import (
    CREDITED,
    TARGET_PAGE,
    Item,
    Ledger,
    Staged,
    as_credit,
    credit_entry,
    invoice_entry,
    item_of,
    key_of,
    ledger_pages,
    matching,
    posting_entry,
    postings_for,
    staged,
    staged_row,
)
from gateway.reconcile.runs import (
    RECONCILIATION_EXCEPTIONS,
    RECONCILIATION_RUNS,
    Phase,
    ReconciliationRunning,
    RunKind,
    RunNotFound,
    RunStatus,
    RunView,
    run_view,
)
from gateway.reconcile.scope import Period, Scope
from gateway.rules.matching import Finding, discrepancies
from gateway.rules.severity import AccountStanding, SeverityPolicy
from gateway.storage.tables import CreditRequestRow, Customer, ExternalId, InboundEvent
from gateway.storage.tables import ReconciliationException as ExceptionRow
from gateway.storage.tables import ReconciliationItem as ItemRow
from gateway.storage.tables import ReconciliationRun as RunRow

log = logging.getLogger("opsgraph.reconcile")

PAGE = 100  # billing's largest list page
# Billing lists invoices by when they were made, and an invoice counts from its
# finalisation: those made this long before the scope's first day are read too (a draft
# finalised in the scope). One made earlier still and posted is found by its posting (the
# source is asked for an orphan's key); unposted, it is not seen.
DRAFTED_BEFORE = timedelta(days=7)
STAGE_ROWS = 5000  # read records written to reconciliation_items together
# Staged records grouped and compared in the database at a time: about half as many keys,
# of which only those that differ (1% in the benchmark) are read back.
MERGE_PAGE = 10_000
# Billing's invoices of a run are read as this many windows of issue dates at once: one
# list is a chain of pages, each asked for when the last has come, and reading several
# keeps this process busy while billing builds the next page.
SOURCE_READERS = 4
BATCH = 500  # keys compared, ranked and stored together
PROGRESS_EVERY_S = 1.0
STALE_S = 120.0  # a running run whose heartbeat is older was interrupted
RECONCILER = "reconciler"  # who auto-resolves and reopens
HEARTBEAT_S = 20.0
WATERMARK_LAG_S = 5.0
# Opsgraph's own postings (gateway.events.actions: usage overages) carry these keys: no
# billing invoice is theirs.
OWN_POSTINGS = ("usage:",)
_LOCK = 0x0C0_2EC0  # the advisory lock that serialises starting runs on PostgreSQL


def _staged_by(run_id: str) -> Delete:
    """Forgets what the run ``run_id`` staged."""
    return delete(ItemRow).where(ItemRow.run_id == run_id)


def exception_id(source: str, target: str, kind: ExceptionKind, key: str) -> str:
    """The same difference found by any run has one id."""
    digest = hashlib.sha256(f"{source}|{target}|{kind.value}|{key}".encode()).hexdigest()
    return f"rx_{digest[:32]}"


@dataclass(frozen=True)
class _Customer:
    id: str
    entity: str | None


@dataclass
class _Directory:
    """The crosswalk for a run: each system's customer ids to opsgraph's customer and its
    legal entity, and each customer's CRM account id (for severity)."""

    by_ref: dict[tuple[SystemName, str], _Customer] = field(default_factory=dict)
    by_id: dict[str, _Customer] = field(default_factory=dict)
    crm: dict[str, str] = field(default_factory=dict)

    def customer(self, system: SystemName, ref: str) -> _Customer | None:
        """``ref``: the customer's id in ``system`` (opsgraph's own for ``OPSGRAPH``)."""
        if system is SystemName.OPSGRAPH:
            return self.by_id.get(ref)
        return self.by_ref.get((system, ref))


@dataclass
class _Found:
    ledger: Ledger
    key: str
    finding: Finding
    customer: _Customer | None
    entity: str
    period: Period
    invoice_id: str | None


class _Staging:
    """Read records kept until there are ``STAGE_ROWS`` of them: a COPY for every page of
    100 invoices cost a transaction and asyncpg's look-up of the table's columns each."""

    def __init__(self, write: Callable[[Sequence[Staged]], Awaitable[None]]) -> None:
        self._write = write
        self._rows: list[Staged] = []

    async def add(self, rows: Iterable[Staged]) -> None:
        self._rows += rows
        if len(self._rows) >= STAGE_ROWS:
            await self.flush()

    async def flush(self) -> None:
        rows, self._rows = self._rows, []
        await self._write(rows)


@dataclass
class _Progress:
    stats: dict[str, Any]
    phase: Phase = Phase.READING
    reported_at: float = 0.0


class Reconciler:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        registry: Registry,
        policy: SeverityPolicy,
        broadcast: Broadcast | None = None,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
        stale_s: float = STALE_S,
        remembered: Remembered | None = None,
    ) -> None:
        self.sessions = sessions
        # What the read path keeps of customers' open exceptions: a run that stores or
        # resolves any forgets all of it.
        self.remembered = remembered or Remembered(ttl_s=0)
        self.stale_s = stale_s
        self.watermark_lag_s = WATERMARK_LAG_S
        self.registry = registry
        self.policy = policy
        self.broadcast = broadcast
        self.today = today
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._starting = asyncio.Lock()

    # -- runs ------------------------------------------------------------------------------

    async def start(self, scope: Scope, requested_by: str, kind: RunKind = RunKind.FULL) -> RunView:
        """Starts a run over ``scope`` and answers it at once (status running); its progress
        is published as it goes. ``ReconciliationRunning`` while another run over an
        overlapping scope is under way."""
        if kind is RunKind.INCREMENTAL and scope.source is not SystemName.BILLING:
            raise BadUserInput("an ERP is compared with its shadow by full runs only")
        if kind is RunKind.INCREMENTAL and await self._watermark(scope) is None:
            raise BadUserInput(
                "no completed run covers this scope yet: an incremental run follows a full one"
            )
        for system in (scope.source, scope.target):
            if system not in self.registry.systems:
                raise BadUserInput(f"{system.value} is not configured")
        async with self._starting:
            await self._fail_interrupted()
            now = datetime.now(UTC)
            row = RunRow(
                id=f"rr_{uuid.uuid4().hex[:24]}",
                kind=kind.value,
                source=scope.source.value,
                target=scope.target.value,
                entities=list(scope.entities),
                period_from=str(scope.first),
                period_to=str(scope.last),
                status=RunStatus.RUNNING.value,
                phase=Phase.READING.value,
                requested_by=requested_by,
                stats={},
                started_at=now,
                heartbeat_at=now,
            )
            async with self.sessions.begin() as session:
                await self._refuse_overlap(session, scope)
                session.add(row)
            run = run_view(row)
            self._tasks[run.id] = asyncio.create_task(self._run(run), name=f"reconcile {run.id}")
        await self._publish_run(run)
        return run

    async def run(self, scope: Scope, requested_by: str, kind: RunKind = RunKind.FULL) -> RunView:
        """Starts a run and waits for it to end: the run as it ended."""
        started = await self.start(scope, requested_by, kind)
        return await self.wait(started.id)

    async def wait(self, run_id: str) -> RunView:
        task = self._tasks.get(run_id)
        if task is not None:
            await asyncio.shield(task)
        return await self.get(run_id)

    async def get(self, run_id: str) -> RunView:
        async with self.sessions() as session:
            row = await session.get(RunRow, run_id)
        if row is None:
            raise RunNotFound(f"no reconciliation run {run_id}")
        return run_view(row)

    async def schedule_forever(self, every_s: float, periods: int) -> None:
        """Every ``every_s``, an incremental run over the last ``periods`` periods (this one
        included) of every legal entity: what changed since the last run. Skipped while
        another run covers them."""
        while True:
            await asyncio.sleep(every_s)
            month = Period.of(self.today())
            scope = Scope(month.shifted(1 - periods), month)
            try:
                try:
                    started = await self.start(scope, "opsgraph (schedule)", RunKind.INCREMENTAL)
                except BadUserInput:  # nothing to follow yet: a full run first
                    started = await self.start(scope, "opsgraph (schedule)", RunKind.FULL)
            except ReconciliationRunning:
                continue
            except Exception:
                log.exception("the scheduled reconciliation did not start")
                continue
            await self.wait(started.id)

    async def aclose(self) -> None:
        """Stops the runs under way; each is marked failed (interrupted)."""
        await stop(list(self._tasks.values()), "reconciliation runs")

    async def _fail_interrupted(self) -> None:
        """Runs left running by a process that stopped (no heartbeat for ``stale_s``) are
        failed, and the records they had read forgotten."""
        stale = datetime.now(UTC) - timedelta(seconds=self.stale_s)
        async with self.sessions.begin() as session:
            running = await session.scalars(
                select(RunRow).where(
                    RunRow.status == RunStatus.RUNNING.value, RunRow.heartbeat_at < stale
                )
            )
            for row in running:
                if row.id not in self._tasks:
                    row.status, row.phase = RunStatus.FAILED.value, Phase.DONE.value
                    row.error = "interrupted: its process stopped before it ended"
                    row.finished_at = datetime.now(UTC)
                    await session.execute(_staged_by(row.id))

    async def _refuse_overlap(self, session: AsyncSession, scope: Scope) -> None:
        """``ReconciliationRunning`` if a run over an overlapping scope is under way. On
        PostgreSQL the check and the new run's insert hold a transaction lock, so that two
        replicas starting at once do not both pass."""
        if (await session.connection()).dialect.name == "postgresql":
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
        running = await session.scalars(
            select(RunRow).where(RunRow.status == RunStatus.RUNNING.value)
        )
        for row in running:
            if run_view(row).scope.overlaps(scope):
                raise ReconciliationRunning(row.id)

    async def _run(self, run: RunView) -> None:
        progress = _Progress(stats={"source": 0, "target": 0, "compared": 0})
        beating = asyncio.create_task(self._heartbeat(run.id))
        try:
            try:
                await self._reconcile(run, progress)
            finally:
                beating.cancel()
                await asyncio.shield(self._forget_staged(run.id))
        except asyncio.CancelledError:
            await asyncio.shield(self._finish(run, progress, "interrupted: the gateway stopped"))
            raise
        except Exception as exc:
            log.exception("reconciliation run %s failed", run.id)
            await self._finish(run, progress, _why(exc))
        else:
            await self._finish(run, progress, None)
        finally:
            self._tasks.pop(run.id, None)

    async def _heartbeat(self, run_id: str) -> None:
        """Says the run is alive every ``HEARTBEAT_S`` whatever it waits on (a slow page,
        a long delete), so that no other process takes it for dead."""
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                async with self.sessions.begin() as session:
                    await session.execute(
                        update(RunRow)
                        .where(RunRow.id == run_id, RunRow.status == RunStatus.RUNNING.value)
                        .values(heartbeat_at=datetime.now(UTC))
                    )
            except Exception:  # the next beat tries again; a run that stops beating is failed
                log.exception("the heartbeat of reconciliation run %s failed", run_id)

    async def _forget_staged(self, run_id: str) -> None:
        async with self.sessions.begin() as session:
            await session.execute(_staged_by(run_id))

    async def _reconcile(self, run: RunView, progress: _Progress) -> None:
        scope = run.scope
        directory = await self._directory()
        # Where the inbox stands now: the next incremental run reads the events after it.
        progress.stats["watermark"] = await self._last_event()
        touched: list[str] = []
        if run.kind is RunKind.FULL:
            # Together; one failing stops the other (a TaskGroup cancels the rest).
            async with asyncio.TaskGroup() as readers:
                readers.create_task(self._read_source(run, directory, progress))
                readers.create_task(self._read_target(run, directory, progress))
        else:
            touched = await self._read_touched(run, directory, progress)
        await self._moved(run, progress, Phase.COMPARING, force=True)
        found: list[_Found] = []
        orphans: list[tuple[str, list[Item]]] = []
        unposted: list[Item] = []
        for ledger in Ledger:
            async for agreeing, differing in self._merged(run.id, ledger):
                progress.stats["compared"] += agreeing
                for key, items in differing:
                    if key.startswith(OWN_POSTINGS):
                        continue  # opsgraph's own postings (usage overages): no source
                    progress.stats["compared"] += 1
                    sources = [i for i in items if i.side == "source"]
                    targets = [i for i in items if i.side == "target"]
                    source = sources[0] if sources else None
                    if len(sources) > 1:
                        # Posted more than once in the source as well (an ERP against its
                        # shadow): the target is to hold as many, no more (duplicates) and
                        # no fewer (missing); the first of each is compared.
                        targets = matching(sources, targets)
                    if source is None:
                        if not any(scope.covers(t.entry.day) for t in targets):
                            continue  # a neighbouring period's posting, that period's
                        orphans.append((key, targets))
                        if len(orphans) >= BATCH:
                            found += await self._orphans(scope, ledger, orphans, directory)
                            orphans = []
                    elif not targets and run.kind is RunKind.FULL:
                        # Not posted in the window read: maybe further away (mis-dated by
                        # more than the slack); the target is asked for the key before it
                        # is missing.
                        unposted.append(source)
                        if len(unposted) >= BATCH:
                            found += await self._unposted(scope, ledger, unposted, directory)
                            unposted = []
                    else:
                        found += self._compared(scope, ledger, key, source, targets, directory)
                    if len(found) >= BATCH:
                        await self._store(run, found, directory, progress)
                        found = []
                await self._moved(run, progress, Phase.COMPARING)
            if orphans:
                found += await self._orphans(scope, ledger, orphans, directory)
                orphans = []
            if unposted:
                found += await self._unposted(scope, ledger, unposted, directory)
                unposted = []
        await self._store(run, found, directory, progress)
        await self._moved(run, progress, Phase.RESOLVING, force=True)
        if run.kind is RunKind.FULL:
            await self._auto_resolve(run, progress)
        else:
            await self._auto_resolve(run, progress, keys=touched)

    # -- reading ---------------------------------------------------------------------------

    async def _directory(self) -> _Directory:
        query = select(
            ExternalId.system, ExternalId.external_id, Customer.id, Customer.legal_entity
        ).join(Customer, Customer.id == ExternalId.customer_id)
        directory = _Directory()
        async with self.sessions() as session:
            for system, ref, customer_id, entity in await session.execute(query):
                customer = _Customer(customer_id, entity)
                directory.by_ref[(SystemName(system), ref)] = customer
                directory.by_id[customer_id] = customer
                if system == SystemName.CRM.value:
                    directory.crm[customer_id] = ref
        return directory

    async def _read_source(self, run: RunView, directory: _Directory, progress: _Progress) -> None:
        scope = run.scope
        if scope.source is not SystemName.BILLING:  # an ERP against its shadow
            await self._read_postings(run, progress, scope.source, "source", *scope.bounds)
            return
        first, last = scope.bounds
        async with asyncio.TaskGroup() as readers:
            for start, end in _windows(first - DRAFTED_BEFORE, last, SOURCE_READERS):
                readers.create_task(self._read_invoices(run, directory, progress, start, end))
        await self._read_credits(run, directory, progress)

    async def _read_invoices(
        self, run: RunView, directory: _Directory, progress: _Progress, start: date, end: date
    ) -> None:
        """Billing's invoices made in [start, end) that count in the scope (its periods and
        entities)."""
        scope = run.scope
        billing = self.registry.get(scope.source)
        filters = {"issued_from": start.isoformat(), "issued_before": end.isoformat()}

        def invoices(cursor: str | None) -> Awaitable[Page[Booked]]:
            return billing.ledger_page(
                ObjectKind.INVOICE, cursor=cursor, limit=PAGE, filters=filters
            )

        async with self._staging() as staging:
            async for page in paging.Pages(invoices):
                rows = []
                for invoice in page.items:
                    if not invoice.live or not scope.covers(invoice.day):
                        continue
                    customer = directory.customer(scope.source, invoice.customer_id)
                    if customer is None or not scope.covers_entity(customer.entity):
                        continue
                    rows.append(staged(run.id, Ledger.INVOICE, "source", invoice.id, invoice))
                await staging.add(rows)
                progress.stats["source"] += len(rows)
                await self._moved(run, progress, Phase.READING)

    async def _read_credits(self, run: RunView, directory: _Directory, progress: _Progress) -> None:
        """Approved service credits, opsgraph's own, decided in the scope's periods."""
        scope = run.scope
        since, until = (datetime.combine(day, datetime.min.time(), UTC) for day in scope.bounds)
        query = (
            select(CreditRequestRow, Customer.legal_entity)
            .join(Customer, Customer.id == CreditRequestRow.customer_id)
            .where(
                CreditRequestRow.status.in_(sorted(CREDITED)),
                CreditRequestRow.decided_at >= since,
                CreditRequestRow.decided_at < until,
            )
            .order_by(CreditRequestRow.id)
        )
        if scope.entities:
            query = query.where(Customer.legal_entity.in_(scope.entities))
        async with self.sessions() as session:
            credits = (await session.execute(query)).all()
        rows = [
            staged_row(
                run.id,
                Ledger.CREDIT,
                "source",
                credit.id,
                credit.customer_id,
                credit_entry(credit),
            )
            for credit, _ in credits
        ]
        await self._stage(rows)
        progress.stats["source"] += len(rows)

    async def _read_target(self, run: RunView, directory: _Directory, progress: _Progress) -> None:
        scope = run.scope
        await self._read_postings(run, progress, scope.target, "target", *scope.window)

    async def _read_postings(
        self, run: RunView, progress: _Progress, system: SystemName, side: str,
        start: date, end: date,
    ) -> None:  # fmt: skip
        """``system``'s invoices and credit memos posted in [start, end), of the scope's
        legal entities, as ``side``."""
        scope = run.scope
        erp = self.registry.get(system)
        for posting_type, ledger in ((PostingType.INVOICE, Ledger.INVOICE),
                                     (PostingType.CREDIT_MEMO, Ledger.CREDIT)):  # fmt: skip
            for entity in scope.entities or (None,):
                filters = {
                    "type": posting_type.value,
                    "posted_from": start.isoformat(),
                    "posted_before": end.isoformat(),
                }
                if entity is not None:
                    filters["subsidiary"] = entity
                async with self._staging() as staging:
                    async for page in ledger_pages(erp, filters):
                        rows = [
                            staged(run.id, ledger, side, key_of(p), p, p.entity)
                            for p in page
                            if p.live
                        ]
                        await staging.add(rows)
                        progress.stats[side] += len(rows)
                        await self._moved(run, progress, Phase.READING)

    async def _last_event(self) -> int:
        """The last inbox event received ``watermark_lag_s`` ago or more: one received
        since may yet be joined by a lower id still being committed (group commit, another
        replica), and is left to the next run."""
        settled = datetime.now(UTC) - timedelta(seconds=self.watermark_lag_s)
        query = select(func.max(InboundEvent.id)).where(InboundEvent.received_at <= settled)
        async with self.sessions() as session:
            return int(await session.scalar(query) or 0)

    async def _watermark(self, scope: Scope) -> int | None:
        """The inbox event the last completed run covering ``scope`` (every legal entity it
        names, every period) had seen: what changed after it has not been reconciled. None
        without one: an incremental run needs a full run to follow."""
        query = (
            select(RunRow)
            .where(
                RunRow.source == scope.source.value,
                RunRow.target == scope.target.value,
                RunRow.status == RunStatus.COMPLETED.value,
            )
            .order_by(RunRow.started_at.desc())
            .limit(100)
        )
        async with self.sessions() as session:
            for row in await session.scalars(query):
                done = run_view(row).scope
                covers_entities = not done.entities or set(scope.entities or ["*"]) <= set(
                    done.entities
                )
                if covers_entities and done.first <= scope.first and scope.last <= done.last:
                    return int(row.stats.get("watermark", 0))
        return None

    async def _read_touched(
        self, run: RunView, directory: _Directory, progress: _Progress
    ) -> list[str]:
        """An incremental run's reading: the invoices the events since the watermark name
        (billing's webhooks, the ERP's change feed), both sides of each read by key. Credits
        are left to full runs. Answers the keys read."""
        scope = run.scope
        since, until = await self._watermark(scope) or 0, progress.stats["watermark"]
        invoices: set[str] = set()
        postings: set[str] = set()
        async with self.sessions() as session:
            events = await session.stream(
                select(InboundEvent.source, InboundEvent.payload)
                .where(InboundEvent.id > since, InboundEvent.id <= until)
                .order_by(InboundEvent.id)
                .execution_options(yield_per=TARGET_PAGE)
            )
            async for source, payload in events:
                if source not in (scope.source.value, scope.target.value):
                    continue
                for change in changes_of(restored(payload)):
                    if change.kind is ObjectKind.INVOICE and change.system is scope.source:
                        invoices.add(change.id)
                    elif change.kind is ObjectKind.POSTING and change.system is scope.target:
                        postings.add(change.id)
        progress.stats["since"] = since
        erp = self.registry.get(scope.target)
        for batch in paging.batches(sorted(postings), PAGE):
            for record in await erp.fetch_many(ObjectKind.POSTING, batch):
                if isinstance(record, Posting) and record.type is PostingType.INVOICE:
                    invoices.add(key_of(record))
        keys = sorted(k for k in invoices if not k.startswith((*OWN_POSTINGS, "posting:")))
        billing = self.registry.get(scope.source)
        for batch in paging.batches(keys, PAGE):
            bills = await billing.fetch_many(ObjectKind.INVOICE, batch)
            rows = []
            for record in bills:
                if not isinstance(record, Invoice) or (entry := invoice_entry(record)) is None:
                    continue
                customer = directory.customer(scope.source, record.customer_id)
                if scope.covers(entry.day) and customer and scope.covers_entity(customer.entity):
                    rows.append(
                        staged_row(
                            run.id, Ledger.INVOICE, "source", record.id, record.customer_id, entry
                        )
                    )
            posted = await erp.run(lambda batch=batch: postings_for(erp, batch))  # type: ignore[misc]
            rows += [
                staged_row(
                    run.id,
                    Ledger.INVOICE,
                    "target",
                    key_of(p),
                    p.customer_id,
                    posting_entry(p),
                    p.subsidiary,
                )
                for p in posted
                if p.type is PostingType.INVOICE and p.status is not PostingState.VOIDED
            ]
            await self._stage(rows)
            progress.stats["source"] += sum(r.side == "source" for r in rows)
            progress.stats["target"] += sum(r.side == "target" for r in rows)
            await self._moved(run, progress, Phase.READING)
        return keys

    @contextlib.asynccontextmanager
    async def _staging(self) -> AsyncIterator[_Staging]:
        """Records on their way to ``_stage``, ``STAGE_ROWS`` at a time; what is left is
        written as the block ends (a reader that fails leaves it: its run fails)."""
        staging = _Staging(self._stage)
        yield staging
        await staging.flush()

    async def _stage(self, rows: Sequence[Staged]) -> None:
        """Writes read records into the keyed table: on PostgreSQL by COPY (a million
        staged rows took a third of a run's CPU as INSERTs through the ORM), elsewhere by
        one multi-row INSERT. Staged rows need no transaction of their own: the run
        deletes them when it ends, and one that dies leaves them to the next run's sweep."""
        if not rows:
            return
        async with self.sessions.begin() as session:
            connection = await session.connection()
            if connection.dialect.name != "postgresql":
                await connection.execute(insert(ItemRow), [row._asdict() for row in rows])
                return
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            await driver.copy_records_to_table(
                ItemRow.__tablename__, columns=Staged._fields, records=rows
            )

    async def _merged(
        self, run_id: str, ledger: Ledger
    ) -> AsyncIterator[tuple[int, list[tuple[str, list[Item]]]]]:
        """The run's staged records of ``ledger`` by key, in key order, a page of keys at a
        time: how many of the page's keys agree, and the records of each other key.

        The database compares first (``_AGREE``): a key whose one source record and one
        target record have the same amount, tax, currency and month is counted, not read
        back, so only the few that differ cross to this process. Each page is read in a
        short session: no transaction stays open while the caller asks the systems about
        what it read; and ordered by the index's own columns (run, ledger, key), so that
        every page is an index range whatever the planner's statistics say."""
        columns = (ItemRow.side, ItemRow.key, ItemRow.record_id, ItemRow.customer_ref,
                   ItemRow.amount_minor, ItemRow.tax_minor, ItemRow.currency, ItemRow.day,
                   ItemRow.entity, ItemRow.id)  # fmt: skip
        mine = (ItemRow.run_id == run_id, ItemRow.ledger == ledger.value)
        after = ""
        while True:
            # The page ends at its MERGE_PAGE-th record's key (None: the rest is the last
            # page), so that the grouping is over an index range, not the rest of the run.
            bound = (
                select(ItemRow.key)
                .where(*mine, ItemRow.key > after)
                .order_by(ItemRow.key)
                .offset(MERGE_PAGE - 1)
                .limit(1)
            )
            async with self.sessions() as session:
                connection = await session.connection()
                last = await connection.scalar(bound)
                within = [*mine, ItemRow.key > after]
                if last is not None:
                    within.append(ItemRow.key <= last)
                # The keys that differ, and one row (key NULL) counting those that agree:
                # the agreeing keys (99% in the benchmark) are not sent here one by one.
                grouped = select(ItemRow.key, _AGREE).where(*within).group_by(ItemRow.key).cte()
                keys = union_all(
                    select(grouped.c.key, literal(0)).where(not_(grouped.c.agree)),
                    select(literal(None, String), func.count()).where(grouped.c.agree),
                )
                page = list(await connection.execute(keys))
                differ = sorted(key for key, _ in page if key is not None)
                agreeing = sum(n for key, n in page if key is None)
                rows = []
                if differ:
                    # Within the page's range too: PostgreSQL takes a key list alone as a
                    # filter over the whole run, not as a place in the index.
                    wanted = select(*columns).where(*within, ItemRow.key.in_(differ))
                    rows = list(await connection.execute(wanted))
            if not differ and not agreeing:
                return
            items: dict[str, list[Any]] = {key: [] for key in differ}
            for row in rows:
                items[row.key].append(row)
            differing = []
            for key, group in items.items():
                group.sort(key=lambda r: (r.side, r.id))
                differing.append((key, [item_of(r) for r in group]))
            yield agreeing, differing
            if last is None:
                return
            after = last

    # -- comparing -------------------------------------------------------------------------

    def _compared(
        self,
        scope: Scope,
        ledger: Ledger,
        key: str,
        source: Item,
        targets: Sequence[Item],
        directory: _Directory,
    ) -> list[_Found]:
        from_billing = scope.source is SystemName.BILLING
        system = (
            SystemName.OPSGRAPH
            if ledger is Ledger.CREDIT and from_billing
            else SHADOWS.get(scope.source, scope.source)
        )
        customer = directory.customer(system, source.customer_ref)
        entity = (customer.entity if customer else None) or source.entity or "unknown"
        findings = discrepancies(source.entry, [t.entry for t in targets])
        if ledger is Ledger.CREDIT:
            findings = as_credit(
                [f for f in findings if f.kind is not ExceptionKind.PERIOD_MISMATCH], key
            )
        invoice_id = key if ledger is Ledger.INVOICE else None
        period = Period.of(source.entry.day)
        return [_Found(ledger, key, f, customer, entity, period, invoice_id) for f in findings]

    async def _orphans(
        self,
        scope: Scope,
        ledger: Ledger,
        orphans: Sequence[tuple[str, list[Item]]],
        directory: _Directory,
    ) -> list[_Found]:
        """Target records whose key the source read does not hold: the source is asked for
        those keys (an invoice issued in another period is a mis-dated posting, not an
        orphan); what it does not know is an orphan."""
        known = await self._source_records(scope, ledger, [key for key, _ in orphans])
        found: list[_Found] = []
        for key, targets in orphans:
            source = known.get(key)
            if source is not None:
                found += self._compared(scope, ledger, key, source, targets, directory)
                continue
            first = targets[0]
            customer = directory.customer(
                SHADOWS.get(scope.target, scope.target), first.customer_ref
            )
            entity = (customer.entity if customer else None) or first.entity or "unknown"
            findings = discrepancies(None, [t.entry for t in targets])
            if ledger is Ledger.CREDIT:
                findings = as_credit(findings, key)
            period = Period.of(min(t.entry.day for t in targets if scope.covers(t.entry.day)))
            found += [_Found(ledger, key, f, customer, entity, period, None) for f in findings]
        return found

    async def _unposted(
        self,
        scope: Scope,
        ledger: Ledger,
        sources: Sequence[Item],
        directory: _Directory,
    ) -> list[_Found]:
        """Source records the target's window did not post: the target is asked for their
        keys, so that a posting dated further away is compared (a period mismatch, as an
        incremental run would find it) rather than called missing."""
        target = self.registry.get(scope.target)
        wanted = PostingType.INVOICE if ledger is Ledger.INVOICE else PostingType.CREDIT_MEMO
        keys = [s.key for s in sources]
        posted = await target.run(lambda: postings_for(target, keys))
        by_key: dict[str, list[Item]] = {}
        for p in posted:
            if p.type is wanted and p.status is not PostingState.VOIDED:
                item = Item(
                    "target", key_of(p), p.id, p.customer_id, posting_entry(p), p.subsidiary
                )
                by_key.setdefault(item.key, []).append(item)
        found: list[_Found] = []
        for source in sources:
            targets = by_key.get(source.key, [])
            found += self._compared(scope, ledger, source.key, source, targets, directory)
        return found

    async def _source_records(
        self, scope: Scope, ledger: Ledger, keys: Sequence[str]
    ) -> dict[str, Item]:
        if ledger is Ledger.CREDIT and scope.source is SystemName.BILLING:
            async with self.sessions() as session:
                credits = (
                    await session.scalars(
                        select(CreditRequestRow).where(
                            CreditRequestRow.id.in_(keys),
                            CreditRequestRow.status.in_(sorted(CREDITED)),
                        )
                    )
                ).all()
            return {
                c.id: Item("source", c.id, c.id, c.customer_id, credit_entry(c)) for c in credits
            }
        source = self.registry.get(scope.source)
        if scope.source is not SystemName.BILLING:  # an ERP: its postings of those keys
            wanted = PostingType.INVOICE if ledger is Ledger.INVOICE else PostingType.CREDIT_MEMO
            posted = await source.run(lambda: postings_for(source, keys))
            found: dict[str, Item] = {}
            for p in sorted(posted, key=lambda p: (len(p.id), p.id)):
                if p.type is wanted and p.status is not PostingState.VOIDED:
                    found.setdefault(key_of(p), Item("source", key_of(p), p.id, p.customer_id,
                                                    posting_entry(p)))  # fmt: skip
            return found
        records = await source.fetch_many(ObjectKind.INVOICE, keys)
        out = {}
        for record in records:
            if isinstance(record, Invoice) and (entry := invoice_entry(record)) is not None:
                out[record.id] = Item("source", record.id, record.id, record.customer_id, entry)
        return out

    # -- storing ---------------------------------------------------------------------------

    async def _store(
        self, run: RunView, found: Sequence[_Found], directory: _Directory, progress: _Progress
    ) -> None:
        scope = run.scope
        found = [f for f in found if scope.covers_entity(f.entity)]  # the run's entities only
        if not found:
            return
        standings = await self._standings(found, directory, progress)
        # Without the CRM's word, a stored severity raised by it is kept, not lowered.
        crm_down = "crmUnavailable" in progress.stats
        today = self.today()
        now = datetime.now(UTC)
        rows: dict[str, dict[str, Any]] = {}
        for f in found:
            customer_id = f.customer.id if f.customer else None
            assessment = self.policy.assess(
                f.finding.kind, f.finding.impact, standings.get(customer_id or ""), today
            )
            detail = f.finding.detail
            if assessment.reasons:
                detail += f" ({'; '.join(assessment.reasons)})"
            id_ = exception_id(scope.source.value, scope.target.value, f.finding.kind, f.key)
            rows[id_] = {
                "id": id_, "source": scope.source.value, "target": scope.target.value,
                "kind": f.finding.kind.value, "key": f.key, "entity": f.entity,
                "period": str(f.period), "customer_id": customer_id, "invoice_id": f.invoice_id,
                "posting_ids": list(f.finding.postings),
                "impact_minor": f.finding.impact.amount_minor,
                "currency": f.finding.impact.currency, "severity": assessment.severity.label.value,
                "rank": assessment.rank, "detail": detail, "last_run_id": run.id,
                "updated_at": now,
            }  # fmt: skip
            kinds = progress.stats.setdefault("kinds", {})
            kinds[f.finding.kind.value] = kinds.get(f.finding.kind.value, 0) + 1
        raised: list[dict[str, Any]] = []
        async with self.sessions.begin() as session:
            existing = {
                row.id: row
                for row in await session.scalars(
                    select(ExceptionRow).where(ExceptionRow.id.in_(list(rows)))
                )
            }
            for id_, values in rows.items():
                row = existing.get(id_)
                if row is None:
                    session.add(
                        ExceptionRow(
                            **values,
                            status=ExceptionStatus.OPEN.value,
                            first_run_id=run.id,
                            created_at=now,
                        )
                    )
                    progress.stats["new"] = progress.stats.get("new", 0) + 1
                    raised.append(values | {"status": ExceptionStatus.OPEN.value, "createdAt": now})
                    continue
                kept = crm_down and row.rank > values["rank"]
                for name, value in values.items():
                    if not (kept and name in ("severity", "rank", "detail")):
                        setattr(row, name, value)
                if row.status in (
                    ExceptionStatus.RESOLVED.value,
                    ExceptionStatus.AUTO_RESOLVED.value,
                ):
                    row.status, row.status_by = ExceptionStatus.OPEN.value, RECONCILER
                    row.note = f"found again by run {run.id}"
                    progress.stats["reopened"] = progress.stats.get("reopened", 0) + 1
                    raised.append(
                        values | {"status": ExceptionStatus.OPEN.value, "createdAt": row.created_at}
                    )
        await self.remembered.forget(Kind.EXCEPTIONS)
        if self.broadcast is not None and raised:
            await self.broadcast.publish_many(
                [(RECONCILIATION_EXCEPTIONS, {"exception": _notice(values)}) for values in raised]
            )

    async def _standings(
        self, found: Sequence[_Found], directory: _Directory, progress: _Progress
    ) -> dict[str, AccountStanding]:
        """What the CRM says of each customer's account; none (and the run says so) when
        the CRM cannot answer: severity then follows impact alone."""
        accounts = {
            f.customer.id: directory.crm[f.customer.id]
            for f in found
            if f.customer is not None and f.customer.id in directory.crm
        }
        if not accounts:
            return {}
        ids = sorted(set(accounts.values()))
        try:
            records = await self.registry.get(SystemName.CRM).fetch_many(ObjectKind.ACCOUNT, ids)
        except GatewayError as exc:
            progress.stats["crmUnavailable"] = exc.message
            return {}
        by_id: dict[str, Record | None] = dict(zip(ids, records, strict=True))
        out = {}
        for customer_id, account_id in accounts.items():
            account = by_id.get(account_id)
            if isinstance(account, Account):
                out[customer_id] = AccountStanding(account.strategic, account.renewal_date)
        return out

    async def _auto_resolve(
        self, run: RunView, progress: _Progress, keys: Sequence[str] | None = None
    ) -> None:
        """Open and acknowledged exceptions of the scope that this run did not find again:
        the pair agrees now. ``keys``: only those of these invoices (an incremental run
        compared nothing else)."""
        if keys is not None:
            progress.stats["autoResolved"] = 0
            for batch in paging.batches(keys, PAGE):
                await self._resolve_where(run, progress, ExceptionRow.key.in_(batch))
            return
        await self._resolve_where(run, progress, None)

    async def _resolve_where(
        self, run: RunView, progress: _Progress, narrowed: ColumnElement[bool] | None
    ) -> None:
        scope = run.scope
        query = (
            update(ExceptionRow)
            .where(
                ExceptionRow.source == scope.source.value,
                ExceptionRow.target == scope.target.value,
                ExceptionRow.status.in_(
                    [ExceptionStatus.OPEN.value, ExceptionStatus.ACKNOWLEDGED.value]
                ),
                ExceptionRow.last_run_id != run.id,
                ExceptionRow.period.in_([str(p) for p in scope.periods]),
            )
            .values(
                status=ExceptionStatus.AUTO_RESOLVED.value,
                status_by=RECONCILER,
                note=f"not found again by run {run.id}",
                updated_at=datetime.now(UTC),
            )
            .returning(ExceptionRow.id)
        )
        if scope.entities:
            query = query.where(ExceptionRow.entity.in_(scope.entities))
        if narrowed is not None:
            query = query.where(narrowed)
        async with self.sessions.begin() as session:
            resolved = (await session.scalars(query)).all()
        progress.stats["autoResolved"] = progress.stats.get("autoResolved", 0) + len(resolved)
        if resolved:
            await self.remembered.forget(Kind.EXCEPTIONS)

    # -- progress --------------------------------------------------------------------------

    async def _moved(
        self, run: RunView, progress: _Progress, phase: Phase, *, force: bool = False
    ) -> None:
        """Saves and publishes the run's progress, at most every ``PROGRESS_EVERY_S``
        (or at once when ``force``): the heartbeat that says the run is alive."""
        loop = asyncio.get_running_loop()
        moved = phase is not progress.phase
        progress.phase = phase
        if not (force or moved) and loop.time() - progress.reported_at < PROGRESS_EVERY_S:
            return
        progress.reported_at = loop.time()
        now = datetime.now(UTC)
        async with self.sessions.begin() as session:
            await session.execute(
                update(RunRow)
                .where(RunRow.id == run.id)
                .values(phase=phase.value, stats=dict(progress.stats), heartbeat_at=now)
            )
        await self._publish_run(
            replace(run, phase=phase, stats=dict(progress.stats), heartbeat_at=now)
        )

    async def _finish(self, run: RunView, progress: _Progress, error: str | None) -> None:
        now = datetime.now(UTC)
        status = RunStatus.COMPLETED if error is None else RunStatus.FAILED
        async with self.sessions.begin() as session:
            await session.execute(
                update(RunRow)
                .where(RunRow.id == run.id)
                .values(
                    status=status.value,
                    phase=Phase.DONE.value,
                    stats=dict(progress.stats),
                    error=error,
                    heartbeat_at=now,
                    finished_at=now,
                )
            )
        await self._publish_run(
            replace(
                run,
                status=status,
                phase=Phase.DONE,
                stats=dict(progress.stats),
                error=error,
                heartbeat_at=now,
                finished_at=now,
            )
        )

    async def _publish_run(self, run: RunView) -> None:
        if self.broadcast is not None:
            await self.broadcast.publish(RECONCILIATION_RUNS, {"run": run.json()})


# -- records as entries ----------------------------------------------------------------------


# Whether a key's staged records agree, as the database can tell: one source record and one
# target record, with the same amount, tax, currency and month (``day`` is an ISO date).
# Whatever else (no posting, two, a difference) is read back and compared here.
_AGREE = and_(
    func.count().filter(ItemRow.side == "source") == 1,
    func.count().filter(ItemRow.side == "target") == 1,
    func.min(ItemRow.amount_minor) == func.max(ItemRow.amount_minor),
    func.min(ItemRow.tax_minor) == func.max(ItemRow.tax_minor),
    func.min(ItemRow.currency) == func.max(ItemRow.currency),
    func.min(func.substr(ItemRow.day, 1, 7)) == func.max(func.substr(ItemRow.day, 1, 7)),
).label("agree")


def _windows(start: date, end: date, most: int) -> list[tuple[date, date]]:
    """[start, end) cut into at most ``most`` windows of whole days, in order."""
    days = (end - start).days
    step = max(1, -(-days // most))
    return [
        (start + timedelta(days=first), start + timedelta(days=min(first + step, days)))
        for first in range(0, days, step)
    ]


def _notice(values: Mapping[str, Any]) -> dict[str, Any]:
    """What a raised exception's broadcast carries."""
    created = values["createdAt"]
    return {
        "id": values["id"], "kind": values["kind"], "severity": values["severity"],
        "rank": values["rank"], "status": values["status"], "entity": values["entity"],
        "period": values["period"], "customerId": values["customer_id"],
        "invoiceId": values["invoice_id"], "postingIds": values["posting_ids"],
        "impactMinor": values["impact_minor"], "currency": values["currency"],
        "detail": values["detail"], "runId": values["last_run_id"],
        "createdAt": created.isoformat(),
    }  # fmt: skip


def _why(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):  # a reader's failure, from the TaskGroup
        return _why(exc.exceptions[0])
    if isinstance(exc, GatewayError):
        return exc.message
    return f"{type(exc).__name__}: the run stopped on an unexpected error"


# What other modules take from here, defined in runs and records.
__all__ = [
    "PAGE", "RECONCILIATION_EXCEPTIONS", "RECONCILIATION_RUNS", "TARGET_PAGE", "Phase",
    "ReconciliationRunning", "Reconciler", "RunKind", "RunNotFound", "RunStatus", "RunView",
    "exception_id", "postings_for", "run_view",
]  # fmt: skip
