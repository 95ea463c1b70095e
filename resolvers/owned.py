from __future__ import annotations

from datetime import datetime

import strawberry

from connectors.money import Money
from gateway.storage.tables import CreditRequestRow, ReconciliationException
from resolvers.money import MoneyType


@strawberry.type(name="CreditRequest", description="A service credit request (opsgraph's).")
class CreditRequestType:
    id: strawberry.ID
    case_id: str | None
    amount: MoneyType
    reason: str
    status: str
    requested_by: str
    decided_by: str | None
    posting_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: CreditRequestRow) -> CreditRequestType:
        return cls(
            id=strawberry.ID(row.id),
            case_id=row.case_id,
            amount=MoneyType.of(Money(row.amount_minor, row.currency)),
            reason=row.reason,
            status=row.status,
            requested_by=row.requested_by,
            decided_by=row.decided_by,
            posting_id=row.posting_id,
            created_at=row.created_at,
        )


@strawberry.type(
    name="ReconciliationException",
    description="A difference between billing and the ERP that someone must resolve.",
)
class ReconciliationExceptionType:
    id: strawberry.ID
    kind: str
    invoice_id: str | None
    posting_id: str | None
    impact: MoneyType
    detail: str
    status: str
    created_at: datetime

    @classmethod
    def of(cls, row: ReconciliationException) -> ReconciliationExceptionType:
        return cls(
            id=strawberry.ID(row.id),
            kind=row.kind,
            invoice_id=row.invoice_id,
            posting_id=row.posting_id,
            impact=MoneyType.of(Money(row.impact_minor, row.currency)),
            detail=row.detail,
            status=row.status,
            created_at=row.created_at,
        )
