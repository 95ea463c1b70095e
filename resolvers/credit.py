"""Service credit requests: opsgraph's own records."""

from __future__ import annotations

from datetime import datetime

import strawberry

from connectors.models import CreditRequest
from gateway.auth.scopes import Scope, needs
from gateway.errors import NotFound
from gateway.logs import quoted
from resolvers.context import Info
from resolvers.enums import CreditStatus
from resolvers.money import MoneyType
from resolvers.pagination import Connection


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


@strawberry.type
class CreditQuery:
    @strawberry.federation.field(
        description="One credit request.", requires_scopes=needs(Scope.CREDITS_READ)
    )
    async def credit_request(self, info: Info, id: strawberry.ID) -> CreditRequestType:
        found = await _visible(info, None, ids=[str(id)])
        if not found:  # another legal entity's is not there either
            raise NotFound(f"no credit request {quoted(id)}")
        return CreditRequestType.of(found[0])

    @strawberry.federation.field(
        description="Credit requests, newest first: the approvals queue is status REQUESTED.",
        requires_scopes=needs(Scope.CREDITS_READ),
    )
    async def credit_requests(
        self,
        info: Info,
        status: CreditStatus | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> Connection[CreditRequestType]:
        found = await _visible(info, status)
        return Connection.page(found, first, after, lambda c: c.id, CreditRequestType.of)


async def _visible(
    info: Info, status: CreditStatus | None, ids: list[str] | None = None
) -> list[CreditRequest]:
    principal = info.context.principal
    if principal is None:
        return []
    return await info.context.services.credits.visible(principal, status, ids)
