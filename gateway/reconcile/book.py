"""The book of reconciliation exceptions and runs: what finance reads (ranked, filtered,
paged by keyset) and the lifecycle it moves an exception along (acknowledged, resolved)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors.models import (
    ExceptionKind,
    ExceptionSeverity,
    ExceptionStatus,
    ReconciliationException,
    SystemName,
)
from gateway.data.crosswalk import Entities
from gateway.data.owned import exception_of
from gateway.data.remembered import Kind, Remembered
from gateway.errors import BadUserInput, Conflict, NotFound
from gateway.reconcile.engine import RunView, run_view
from gateway.reconcile.scope import Period
from gateway.rules.severity import Severity
from gateway.storage.tables import ReconciliationException as ExceptionRow
from gateway.storage.tables import ReconciliationRun as RunRow

# Where an exception may go from each status by hand; the reconciler alone auto-resolves
# and reopens.
_MOVES = {
    ExceptionStatus.ACKNOWLEDGED: frozenset({ExceptionStatus.OPEN}),
    ExceptionStatus.RESOLVED: frozenset({ExceptionStatus.OPEN, ExceptionStatus.ACKNOWLEDGED}),
}


class ExceptionNotFound(NotFound):
    code = "RECONCILIATION_EXCEPTION_NOT_FOUND"


class ExceptionStateConflict(Conflict):
    code = "RECONCILIATION_EXCEPTION_STATE"


@dataclass(frozen=True)
class ExceptionFilter:
    kind: ExceptionKind | None = None
    source: SystemName | None = None
    target: SystemName | None = None
    statuses: tuple[ExceptionStatus, ...] = ()  # any of these (and ``status``, if given)
    periods: tuple[Period, ...] = ()  # any of these
    severity: ExceptionSeverity | None = None  # at least this severe
    status: ExceptionStatus | None = None
    customer_id: str | None = None
    entity: str | None = None
    period: Period | None = None


@dataclass(frozen=True)
class Page:
    exceptions: list[ReconciliationException]
    has_next_page: bool
    total: int


class Book:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], remembered: Remembered | None = None
    ) -> None:
        self.sessions = sessions
        # What the read path keeps of each customer's open exceptions: a move forgets it.
        self.remembered = remembered or Remembered(ttl_s=0)

    async def page(
        self, wanted: ExceptionFilter, entities: Entities, first: int, after: str | None
    ) -> Page:
        """Exceptions highest rank first (then by id), ``first`` after the cursor ``after``
        (an exception's ``cursor``); only those of ``entities`` (None: every entity)."""
        conditions = _conditions(wanted, entities)
        query = select(ExceptionRow).where(*conditions)
        if after is not None:
            rank, id_ = _cursor(after)
            query = query.where(
                or_(
                    ExceptionRow.rank < rank, and_(ExceptionRow.rank == rank, ExceptionRow.id > id_)
                )
            )
        query = query.order_by(ExceptionRow.rank.desc(), ExceptionRow.id).limit(first + 1)
        async with self.sessions() as session:
            rows = list((await session.scalars(query)).all())
            total = await session.scalar(
                select(func.count()).select_from(ExceptionRow).where(*conditions)
            )
        return Page([exception_of(r) for r in rows[:first]], len(rows) > first, total or 0)

    async def count(self, wanted: ExceptionFilter, entities: Entities) -> int:
        conditions = _conditions(wanted, entities)
        async with self.sessions() as session:
            found = await session.scalar(
                select(func.count()).select_from(ExceptionRow).where(*conditions)
            )
        return int(found or 0)

    async def open_by_kind(self) -> dict[tuple[str, str], int]:
        """How many exceptions are open, by (kind, severity), across every entity."""
        query = (
            select(ExceptionRow.kind, ExceptionRow.severity, func.count())
            .where(ExceptionRow.status == ExceptionStatus.OPEN.value)
            .group_by(ExceptionRow.kind, ExceptionRow.severity)
        )
        async with self.sessions() as session:
            return {(kind, severity): n for kind, severity, n in await session.execute(query)}

    async def get(self, id_: str, entities: Entities) -> ReconciliationException:
        async with self.sessions() as session:
            row = await session.get(ExceptionRow, id_)
        if row is None or (entities is not None and row.entity not in entities):
            raise ExceptionNotFound(f"no reconciliation exception {id_}")
        return exception_of(row)

    async def move(
        self, id_: str, to: ExceptionStatus, by: str, note: str | None, entities: Entities
    ) -> ReconciliationException:
        """Acknowledges or resolves an exception (``to``), saying who and why. Moving it
        where it is already is answered as it is (a retry); from anywhere else
        ``ExceptionStateConflict``."""
        if to not in _MOVES:
            raise BadUserInput(f"an exception is not set {to.value} by hand")
        if note is not None and len(note) > 2000:
            raise BadUserInput("a note is at most 2000 characters")
        async with self.sessions.begin() as session:
            row = await session.get(ExceptionRow, id_, with_for_update=True)
            if row is None or (entities is not None and row.entity not in entities):
                raise ExceptionNotFound(f"no reconciliation exception {id_}")
            status = ExceptionStatus(row.status)
            if status is to:
                if note is not None and note != row.note:  # what was done, said again
                    row.note, row.status_by = note, by
                    row.updated_at = datetime.now(UTC)
            elif status not in _MOVES[to]:
                raise ExceptionStateConflict(
                    f"exception {id_} is {status.value}: it cannot be {to.value}"
                )
            else:
                row.status, row.status_by, row.updated_at = to.value, by, datetime.now(UTC)
                if note is not None:
                    row.note = note
            moved = exception_of(row)
        await self._forget(moved)
        return moved

    async def noted(self, id_: str, by: str, note: str) -> ReconciliationException:
        """Says what was done about an exception (a repost, a void), whatever its status
        now; an open one becomes acknowledged: the next run tells whether it worked."""
        async with self.sessions.begin() as session:
            row = await session.get(ExceptionRow, id_, with_for_update=True)
            if row is None:
                raise ExceptionNotFound(f"no reconciliation exception {id_}")
            if row.status == ExceptionStatus.OPEN.value:
                row.status = ExceptionStatus.ACKNOWLEDGED.value
            row.note, row.status_by, row.updated_at = note, by, datetime.now(UTC)
            noted = exception_of(row)
        await self._forget(noted)
        return noted

    async def _forget(self, changed: ReconciliationException) -> None:
        if changed.customer_id is not None:
            await self.remembered.forget(Kind.EXCEPTIONS, [changed.customer_id])

    async def run_count(self) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(RunRow)) or 0)

    async def runs(
        self, first: int, after: str | None, entities: Entities
    ) -> tuple[list[RunView], bool]:
        """Runs newest first, ``first`` after the run ``after``. One limited to legal
        entities sees the runs that covered only its entities."""
        query = select(RunRow).order_by(RunRow.started_at.desc(), RunRow.id.desc())
        if after is not None:
            async with self.sessions() as session:
                anchor = await session.get(RunRow, after)
            if anchor is None:
                raise BadUserInput(f"unknown cursor {after!r}")
            query = query.where(
                or_(
                    RunRow.started_at < anchor.started_at,
                    and_(RunRow.started_at == anchor.started_at, RunRow.id < anchor.id),
                )
            )
        out: list[RunView] = []
        async with self.sessions() as session:
            stream = await session.stream_scalars(query.execution_options(yield_per=100))
            async for row in stream:
                run = run_view(row)
                if not run.scope.seen_by(entities):
                    continue
                if len(out) == first:
                    return out, True
                out.append(run)
        return out, False


def cursor_of(exception: ReconciliationException) -> str:
    return f"{exception.rank}:{exception.id}"


def _cursor(text: str) -> tuple[int, str]:
    rank, _, id_ = text.partition(":")
    if not rank.isdigit() or not id_:
        raise BadUserInput(f"unknown cursor {text!r}")
    return int(rank), id_


def _conditions(wanted: ExceptionFilter, entities: Entities) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if entities is not None:
        conditions.append(ExceptionRow.entity.in_(sorted(entities)))
    if wanted.kind is not None:
        conditions.append(ExceptionRow.kind == wanted.kind.value)
    if wanted.severity is not None:
        floor = Severity.of(wanted.severity)
        at_least = [s.label.value for s in Severity if s >= floor]
        conditions.append(ExceptionRow.severity.in_(at_least))
    if wanted.status is not None:
        conditions.append(ExceptionRow.status == wanted.status.value)
    if wanted.statuses:
        conditions.append(ExceptionRow.status.in_([s.value for s in wanted.statuses]))
    if wanted.periods:
        conditions.append(ExceptionRow.period.in_([str(p) for p in wanted.periods]))
    if wanted.source is not None:
        conditions.append(ExceptionRow.source == wanted.source.value)
    if wanted.target is not None:
        conditions.append(ExceptionRow.target == wanted.target.value)
    if wanted.customer_id is not None:
        conditions.append(ExceptionRow.customer_id == wanted.customer_id)
    if wanted.entity is not None:
        conditions.append(ExceptionRow.entity == wanted.entity)
    if wanted.period is not None:
        conditions.append(ExceptionRow.period == str(wanted.period))
    return conditions
