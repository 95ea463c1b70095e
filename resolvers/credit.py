"""Service credit requests: opsgraph's own records."""

from __future__ import annotations

from datetime import datetime

import strawberry

from connectors.models import CreditRequest
from gateway.auth.scopes import Scope, needs
from resolvers.enums import CreditStatus
from resolvers.money import MoneyType


@strawberry.federation.type(
    name="CreditRequest",
    description="A service credit request (opsgraph's).",
    requires_scopes=needs(Scope.CREDITS_READ),
)
class CreditRequestType:
    id: strawberry.ID
    case_id: str | None
    amount: MoneyType
    reason: str
    status: CreditStatus
    requested_by: str
    decided_by: str | None
    posting_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, credit: CreditRequest) -> CreditRequestType:
        return cls(
            id=strawberry.ID(credit.id),
            case_id=credit.case_id,
            amount=MoneyType.of(credit.amount),
            reason=credit.reason,
            status=credit.status,
            requested_by=credit.requested_by,
            decided_by=credit.decided_by,
            posting_id=credit.posting_id,
            created_at=credit.created_at,
        )
