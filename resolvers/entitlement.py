"""``entitlementCheck``: may this customer get this feature or SLA right now, and why."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry

from connectors.models import ObjectKind, Plan, SystemName
from gateway.entitlements import decide
from gateway.errors import BadUserInput, NotFound
from gateway.logs import quoted
from resolvers.billing import PlanType
from resolvers.context import Info
from resolvers.plans import plans_for, values
from resolvers.provenance import ProvenanceType


@strawberry.type(name="EntitlementDecision")
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
    checked_at: datetime


@strawberry.type
class EntitlementQuery:
    @strawberry.field(description="May this customer use this feature now, and why.")
    async def entitlement_check(
        self, info: Info, customer_id: strawberry.ID, feature: str
    ) -> EntitlementDecision:
        identity = await info.context.loaders.customer(str(customer_id))
        if identity is None:
            raise NotFound(f"no customer with id {quoted(customer_id)}")
        reader = info.context.services.reader
        catalog = await reader.listing(SystemName.BILLING, ObjectKind.PLAN)
        if isinstance(catalog, Exception):
            raise catalog
        known = {f for p in catalog.value if isinstance(p, Plan) for f in p.features}
        if feature not in known:
            raise BadUserInput(
                f"unknown feature {quoted(feature)}; known features: {', '.join(sorted(known))}"
            )
        billing_id = identity.external_ids.get(SystemName.BILLING)
        now = datetime.now(UTC)
        if billing_id is None:
            return EntitlementDecision(
                allowed=False, reason="no billing account", feature=feature, plan=None,
                support_tier=None, sla_hours=None, subscription_id=None, source=None,
                checked_at=now,
            )  # fmt: skip
        sourced = await info.context.loaders.related(
            SystemName.BILLING, ObjectKind.SUBSCRIPTION, billing_id
        )
        plans = await plans_for(info, sourced.value)
        decision = decide(feature, sourced.value, values(plans))
        plan: Plan | None = decision.plan
        return EntitlementDecision(
            allowed=decision.allowed,
            reason=decision.reason,
            feature=feature,
            plan=None if plan is None else PlanType.of(plans[plan.id]),
            support_tier=plan.support_tier if plan else None,
            sla_hours=plan.sla_hours if plan else None,
            subscription_id=(
                strawberry.ID(decision.subscription.id) if decision.subscription else None
            ),
            source=ProvenanceType.of(sourced),
            checked_at=now,
        )
