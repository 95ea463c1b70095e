"""Service credit requests: opsgraph's own records."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from connectors.models import CreditRequest
from gateway.auth.scopes import Scope, needs
from gateway.errors import NotFound
from gateway.logs import quoted
from resolvers.context import Info
from resolvers.enums import CreditPeriod, CreditStatus
from resolvers.money import MoneyType
from resolvers.pagination import Connection, check_first

if TYPE_CHECKING:
    from resolvers.customer import CustomerType


@strawberry.type(
    name="CreditPolicyContext",
    description="The credit policy's rule a credit is decided by (its currency, its customer's "
    "legal entity), and where the customer stands against it now.",
)
class CreditPolicyContextType:
    rule: str = strawberry.field(description='Where the rule is in the policy: USD."Opsgraph Inc."')
    auto_approve_below: MoneyType
    max_per_request: MoneyType
    max_per_customer: MoneyType
    period: CreditPeriod
    credited_in_period: MoneyType = strawberry.field(
        description="The customer's approved and pending credits in this currency since the "
        "period began, this one included while it is pending or approved."
    )
    approvers: list[str] = strawberry.field(description="The roles that may approve.")


@strawberry.federation.type(
    name="CreditRequest",
    description="A service credit request (opsgraph's).",
    requires_scopes=needs(Scope.CREDITS_READ),
)
class CreditRequestType:
    id: strawberry.ID
    customer_id: strawberry.ID
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
            customer_id=strawberry.ID(credit.customer_id),
            case_id=credit.case_id,
            amount=MoneyType.of(credit.amount),
            reason=credit.reason,
            status=credit.status,
            requested_by=credit.requested_by,
            decided_by=credit.decided_by,
            posting_id=credit.posting_id,
            created_at=credit.created_at,
        )

    @strawberry.field(description="The customer credited.")
    async def customer(
        self, info: Info
    ) -> Annotated[CustomerType, strawberry.lazy("resolvers.customer")] | None:
        from resolvers.customer import CustomerType  # the customer links back here

        identity = await info.context.loaders.customer(str(self.customer_id))
        return None if identity is None else CustomerType.of(identity)

    @strawberry.field(
        description="The policy this credit is decided by, as it stands now (null: no rule "
        "covers its currency)."
    )
    async def policy(self, info: Info) -> CreditPolicyContextType | None:
        identity = await info.context.loaders.customer(str(self.customer_id))
        if identity is None:
            return None
        rule, credited = await info.context.loaders.credit_standing(identity, self.amount.currency)
        if rule is None:
            return None
        return CreditPolicyContextType(
            rule=rule.name,
            auto_approve_below=MoneyType.of(rule.auto_approve_below),
            max_per_request=MoneyType.of(rule.max_per_request),
            max_per_customer=MoneyType.of(rule.max_per_customer),
            period=rule.period,
            credited_in_period=MoneyType.of(credited),
            approvers=sorted(role.value for role in rule.approvers),
        )


@strawberry.type
class CreditQuery:
    @strawberry.federation.field(
        description="One credit request.", requires_scopes=needs(Scope.CREDITS_READ)
    )
    async def credit_request(self, info: Info, id: strawberry.ID) -> CreditRequestType:
        principal = info.context.principal
        credits = info.context.services.credits
        found = [] if principal is None else await credits.visible(principal, ids=[str(id)])
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
        check_first(first)
        principal = info.context.principal
        if principal is None:
            return Connection.of([], False, 0, lambda c: c.id, CreditRequestType.of)
        credits = info.context.services.credits
        found, more, total = await credits.page(principal, status, first, after)
        return Connection.of(found, more, total, lambda c: c.id, CreditRequestType.of)
