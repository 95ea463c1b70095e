"""What opsgraph itself owns, read in bulk for the customer view: credit requests and open
reconciliation exceptions."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.storage.tables import CreditRequestRow, ReconciliationException


class Owned:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def credits(self, customer_ids: Sequence[str]) -> list[list[CreditRequestRow]]:
        query = (
            select(CreditRequestRow)
            .where(CreditRequestRow.customer_id.in_(customer_ids))
            .order_by(CreditRequestRow.created_at.desc())
        )
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [[r for r in rows if r.customer_id == c] for c in customer_ids]

    async def open_exceptions(
        self, customer_ids: Sequence[str]
    ) -> list[list[ReconciliationException]]:
        query = (
            select(ReconciliationException)
            .where(
                ReconciliationException.customer_id.in_(customer_ids),
                ReconciliationException.status == "open",
            )
            .order_by(ReconciliationException.impact_minor.desc())
        )
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [[r for r in rows if r.customer_id == c] for c in customer_ids]
