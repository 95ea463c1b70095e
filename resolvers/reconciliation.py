"""Reconciliation exceptions: differences between billing and the ERP, opsgraph's own."""

from __future__ import annotations

from datetime import datetime

import strawberry

from connectors.models import ReconciliationException
from gateway.auth.scopes import Scope, needs
from resolvers.enums import ExceptionKind, ExceptionStatus
from resolvers.money import MoneyType


@strawberry.federation.type(
    name="ReconciliationException",
    description="A difference between billing and the ERP that someone must resolve.",
    requires_scopes=needs(Scope.RECONCILIATION_READ),
)
class ReconciliationExceptionType:
    id: strawberry.ID
    kind: ExceptionKind
    invoice_id: str | None
    posting_id: str | None
    impact: MoneyType
    detail: str
    status: ExceptionStatus
    created_at: datetime

    @classmethod
    def of(cls, found: ReconciliationException) -> ReconciliationExceptionType:
        return cls(
            id=strawberry.ID(found.id),
            kind=found.kind,
            invoice_id=found.invoice_id,
            posting_id=found.posting_id,
            impact=MoneyType.of(found.impact),
            detail=found.detail,
            status=found.status,
            created_at=found.created_at,
        )
