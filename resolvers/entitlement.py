"""Entitlements: what a customer may use now, from its plans; and ``entitlementCheck``: may
this customer get this feature or SLA right now, and why."""

from __future__ import annotations

from datetime import datetime

import strawberry

from connectors.models import Entitlement, ObjectKind
from gateway.auth.scopes import Scope, needs
from gateway.errors import BadUserInput, NotFound
from gateway.logs import quoted
from gateway.rules.entitlements import decide
from resolvers.context import Info
from resolvers.provenance import ProvenanceType
from resolvers.subscription import PlanType, plans_for


@strawberry.federation.type(
    name="Entitlement",
    description="A feature the customer may use now.",
    requires_scopes=needs(Scope.BILLING_READ),
)
class EntitlementType:
    feature: str
    plan_id: strawberry.ID
    support_tier: str
    sla_hours: int
    source: ProvenanceType

    @classmethod
    def of(cls, e: Entitlement, source: ProvenanceType) -> EntitlementType:
        return cls(
            feature=e.feature,
            plan_id=strawberry.ID(e.plan_id),
            support_tier=e.support_tier,
            sla_hours=e.sla_hours,
            source=source,
        )


@strawberry.federation.type(name="EntitlementDecision", requires_scopes=needs(Scope.BILLING_READ))
class EntitlementDecision:
    allowed: bool
    reason: str
    feature: str
    plan: PlanType | None
    support_tier: str | None
    sla_hours: int | None
    subscription_id: strawberry.ID | None
    source: ProvenanceType | None = strawberry.field(
        description="The billing answer the decision rests on (None: no billing account)."
    )
    checked_at: datetime = strawberry.field(
        description="When what the decision rests on was read from its owner (the oldest of "
        "the subscriptions and plans it used; the crosswalk's read without a billing "
        "account): the decision is exactly as fresh as that, and the same cached data "
        "gives the same answer."
    )


@strawberry.type
class EntitlementQuery:
    @strawberry.federation.field(
        description="May this customer use this feature now, and why.",
        requires_scopes=needs(Scope.BILLING_READ),
    )
    async def entitlement_check(
        self, info: Info, customer_id: strawberry.ID, feature: str
    ) -> EntitlementDecision:
        loaders = info.context.loaders
        identity = await loaders.customer(str(customer_id))
        if identity is None:
            raise NotFound(f"no customer with id {quoted(customer_id)}")
        catalog = await loaders.plan_catalog()
        known = {f for p in catalog.value for f in p.features}
        if feature not in known:
            raise BadUserInput(
                f"unknown feature {quoted(feature)}; known features: {', '.join(sorted(known))}"
            )
        billing_id = loaders.id_in(identity, ObjectKind.SUBSCRIPTION)
        if billing_id is None:
            return EntitlementDecision(
                allowed=False, reason="no billing account", feature=feature, plan=None,
                support_tier=None, sla_hours=None, subscription_id=None, source=None,
                checked_at=identity.read_at,
            )  # fmt: skip
        sourced = await loaders.subscriptions(billing_id)
        plans = await plans_for(info, sourced.value)
        decision = decide(feature, sourced.value, {i: s.value for i, s in plans.items()})
        read_at = min([sourced.fetched_at, *(p.fetched_at for p in plans.values())])
        plan = decision.plan
        return EntitlementDecision(
            allowed=decision.allowed,
            reason=decision.reason,
            feature=feature,
            plan=None if plan is None else PlanType.of(plan, plans[plan.id]),
            support_tier=plan.support_tier if plan else None,
            sla_hours=plan.sla_hours if plan else None,
            subscription_id=(
                strawberry.ID(decision.subscription.id) if decision.subscription else None
            ),
            source=ProvenanceType.of(sourced),
            checked_at=read_at,
        )
