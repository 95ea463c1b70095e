"""Subscriptions and the plan catalog, owned by the billing system."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import cast

import strawberry

from connectors.models import Plan, Subscription
from gateway.auth.scopes import Scope, needs
from gateway.data.reads import Sourced
from resolvers.context import Info
from resolvers.enums import PlanInterval, SubscriptionStatus
from resolvers.money import MoneyType
from resolvers.provenance import ProvenanceType


@strawberry.federation.type(
    name="Plan",
    description="A plan in the billing catalog.",
    requires_scopes=needs(Scope.BILLING_READ),
)
class PlanType:
    id: strawberry.ID
    name: str
    price: MoneyType
    interval: PlanInterval
    features: list[str]
    support_tier: str
    sla_hours: int
    source: ProvenanceType

    @classmethod
    def of(cls, plan: Plan, sourced: Sourced[Plan | None]) -> PlanType:
        return cls(
            id=strawberry.ID(plan.id),
            name=plan.name,
            price=MoneyType.of(plan.price),
            interval=plan.interval,
            features=list(plan.features),
            support_tier=plan.support_tier,
            sla_hours=plan.sla_hours,
            source=ProvenanceType.of(sourced),
        )


async def plans_for(info: Info, subscriptions: Sequence[Subscription]) -> dict[str, Sourced[Plan]]:
    """The plans the subscriptions name that the catalog has, loaded together (one batch),
    with provenance."""
    ids = sorted({s.plan_id for s in subscriptions})
    loaded = await asyncio.gather(*(info.context.loaders.plan(i) for i in ids))
    # A plan the catalog has is a Sourced[Plan]; the ones it lacks are left out.
    return {i: cast(Sourced[Plan], s) for i, s in zip(ids, loaded, strict=True) if s.value}


@strawberry.federation.type(
    name="CustomerSubscription",
    description="A subscription, owned by the billing system.",
    requires_scopes=needs(Scope.BILLING_READ),
)
class SubscriptionType:
    id: strawberry.ID
    status: SubscriptionStatus
    quantity: int
    current_period_start: datetime
    current_period_end: datetime
    source: ProvenanceType
    plan_id: strawberry.Private[str]

    @strawberry.field
    async def plan(self, info: Info) -> PlanType | None:
        sourced = await info.context.loaders.plan(self.plan_id)
        return None if sourced.value is None else PlanType.of(sourced.value, sourced)

    @classmethod
    def of(cls, s: Subscription, sourced: Sourced[list[Subscription]]) -> SubscriptionType:
        return cls(
            id=strawberry.ID(s.id),
            status=s.status,
            quantity=s.quantity,
            current_period_start=s.current_period_start,
            current_period_end=s.current_period_end,
            source=ProvenanceType.of(sourced, s.id),
            plan_id=s.plan_id,
        )
