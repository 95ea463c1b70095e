"""What opsgraph itself owns, read in bulk for the customer view: credit requests and open
reconciliation exceptions, as canonical records (the ORM rows stay in this stage)."""

from __future__ import annotations

from collections.abc import Sequence

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
from gateway.storage.tables import CreditRequestRow
from gateway.storage.tables import ReconciliationException as ExceptionRow


class Owned:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def credits(self, customer_ids: Sequence[str]) -> list[list[CreditRequest]]:
        """Each customer's credit requests, newest first."""
        query = (
            select(CreditRequestRow)
            .where(CreditRequestRow.customer_id.in_(customer_ids))
            .order_by(CreditRequestRow.created_at.desc())
        )
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [[credit_of(r) for r in rows if r.customer_id == c] for c in customer_ids]

    async def open_exceptions(
        self, customer_ids: Sequence[str]
    ) -> list[list[ReconciliationException]]:
        """Each customer's open and acknowledged reconciliation exceptions, highest rank
        (severity, then impact) first."""
        query = (
            select(ExceptionRow)
            .where(
                ExceptionRow.customer_id.in_(customer_ids),
                ExceptionRow.status.in_(
                    [ExceptionStatus.OPEN.value, ExceptionStatus.ACKNOWLEDGED.value]
                ),
            )
            .order_by(ExceptionRow.rank.desc(), ExceptionRow.id)
        )
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [[exception_of(r) for r in rows if r.customer_id == c] for c in customer_ids]


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
