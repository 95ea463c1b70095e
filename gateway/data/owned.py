"""What opsgraph itself owns, read in bulk for the customer view: credit requests and open
reconciliation exceptions, as canonical records (the ORM rows stay in this stage)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors.models import (
    CreditRequest,
    CreditStatus,
    ExceptionKind,
    ExceptionSeverity,
    ExceptionStatus,
    ReconciliationException,
    SystemName,
)
from connectors.money import Money
from gateway.data.remembered import Kind, Remembered
from gateway.storage.tables import CreditRequestRow
from gateway.storage.tables import ReconciliationException as ExceptionRow

Row = TypeVar("Row", CreditRequestRow, ExceptionRow)
R = TypeVar("R")


class Owned:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], remembered: Remembered | None = None
    ) -> None:
        self._sessions = sessions
        # Each customer's lists as last read; the writes that change them forget them.
        self.remembered = remembered or Remembered(ttl_s=0)

    async def credits(self, customer_ids: Sequence[str]) -> list[list[CreditRequest]]:
        """Each customer's credit requests, newest first."""

        async def read(missing: Sequence[str]) -> Sequence[CreditRequestRow]:
            query = (
                select(CreditRequestRow)
                .where(CreditRequestRow.customer_id.in_(missing))
                .order_by(CreditRequestRow.created_at.desc())
            )
            async with self._sessions() as session:
                return (await session.scalars(query)).all()

        return await self._each(Kind.CREDITS, customer_ids, read, credit_of)

    async def open_exceptions(
        self, customer_ids: Sequence[str]
    ) -> list[list[ReconciliationException]]:
        """Each customer's open and acknowledged reconciliation exceptions, highest rank
        (severity, then impact) first."""

        async def read(missing: Sequence[str]) -> Sequence[ExceptionRow]:
            query = (
                select(ExceptionRow)
                .where(
                    ExceptionRow.customer_id.in_(missing),
                    ExceptionRow.status.in_(
                        [ExceptionStatus.OPEN.value, ExceptionStatus.ACKNOWLEDGED.value]
                    ),
                )
                .order_by(ExceptionRow.rank.desc(), ExceptionRow.id)
            )
            async with self._sessions() as session:
                return (await session.scalars(query)).all()

        return await self._each(Kind.EXCEPTIONS, customer_ids, read, exception_of)

    async def _each(
        self,
        kind: Kind,
        customer_ids: Sequence[str],
        read: Callable[[Sequence[str]], Awaitable[Sequence[Row]]],
        record: Callable[[Row], R],
    ) -> list[list[R]]:
        """Each customer's list: from memory where it is kept, else from one read of all
        the others (kept for next time)."""
        memory = self.remembered
        lists: dict[str, list[R]] = {}
        for customer in customer_ids:
            kept = memory.get(kind, customer)
            if kept is not None:
                lists[customer] = kept.value
        missing = [c for c in dict.fromkeys(customer_ids) if c not in lists]
        if missing:
            generation = memory.generation
            rows = await read(missing)
            read_at = datetime.now(UTC)
            fresh: dict[str, list[R]] = {customer: [] for customer in missing}
            for row in rows:  # in the read's order; every row is of a customer asked for
                fresh[str(row.customer_id)].append(record(row))
            for customer, records in fresh.items():
                lists[customer] = records
                memory.put(kind, customer, records, read_at, generation)
        return [list(lists[c]) for c in customer_ids]


def credit_of(row: CreditRequestRow) -> CreditRequest:
    return CreditRequest(
        system=SystemName.OPSGRAPH,
        id=row.id,
        customer_id=row.customer_id,
        case_id=row.case_id,
        amount=Money(row.amount_minor, row.currency),
        reason=row.reason,
        status=CreditStatus(row.status),
        requested_by=row.requested_by,
        decided_by=row.decided_by,
        posting_id=row.posting_id,
        created_at=row.created_at,
    )


def exception_of(row: ExceptionRow) -> ReconciliationException:
    return ReconciliationException(
        system=SystemName.OPSGRAPH,
        id=row.id,
        source=SystemName(row.source),
        target=SystemName(row.target),
        kind=ExceptionKind(row.kind),
        severity=ExceptionSeverity(row.severity),
        rank=row.rank,
        status=ExceptionStatus(row.status),
        key=row.key,
        entity=row.entity,
        period=row.period,
        customer_id=row.customer_id,
        invoice_id=row.invoice_id,
        posting_ids=tuple(row.posting_ids),
        impact=Money(row.impact_minor, row.currency),
        detail=row.detail,
        first_run_id=row.first_run_id,
        last_run_id=row.last_run_id,
        status_by=row.status_by,
        note=row.note,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
