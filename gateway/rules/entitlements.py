"""Entitlements come from the billing system: a subscription's plan lists its features, its
support tier and the SLA hours promised. This module decides; it reads nothing itself."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from connectors.models import Entitlement, Plan, Subscription, SubscriptionStatus

# Stripe statuses that keep access: trialing and active; past_due keeps access while dunning
# runs (the customer is told, not cut off). Everything else has no access.
ENTITLED = {SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    subscription: Subscription | None
    plan: Plan | None


def entitlements(
    subscriptions: Sequence[Subscription], plans: Mapping[str, Plan]
) -> list[Entitlement]:
    """What the customer may use now, one entry per feature (the best plan wins)."""
    best: dict[str, Entitlement] = {}
    for sub in subscriptions:
        plan = plans.get(sub.plan_id)
        if sub.status not in ENTITLED or plan is None:
            continue
        for feature in plan.features:
            current = best.get(feature)
            if current is None or plan.sla_hours < current.sla_hours:
                best[feature] = Entitlement(
                    feature=feature,
                    plan_id=plan.id,
                    support_tier=plan.support_tier,
                    sla_hours=plan.sla_hours,
                )
    return [best[f] for f in sorted(best)]


def decide(
    feature: str, subscriptions: Sequence[Subscription], plans: Mapping[str, Plan]
) -> Decision:
    """May this customer use ``feature`` now, and why. ``plans`` holds every plan the
    customer's subscriptions name."""
    candidates = [
        (sub, plans[sub.plan_id])
        for sub in subscriptions
        if sub.plan_id in plans and feature in plans[sub.plan_id].features
    ]
    entitled = [(s, p) for s, p in candidates if s.status in ENTITLED]
    if entitled:
        sub, plan = min(entitled, key=lambda sp: sp[1].sla_hours)
        reason = f"{plan.name} plan includes {feature}"
        if sub.status is SubscriptionStatus.PAST_DUE:
            reason += " (subscription past due: access kept while payment is retried)"
        elif sub.status is SubscriptionStatus.TRIALING:
            reason += " (trial)"
        return Decision(True, reason, sub, plan)
    if candidates:
        sub, plan = candidates[0]
        return Decision(False, f"{plan.name} subscription is {sub.status}", sub, plan)
    if not subscriptions:
        return Decision(False, "no subscription", None, None)
    sub = next((s for s in subscriptions if s.status in ENTITLED), subscriptions[0])
    held = plans.get(sub.plan_id)
    name = held.name if held else sub.plan_id
    return Decision(False, f"{name} plan does not include {feature}", sub, held)
