from __future__ import annotations

import asyncio
from collections.abc import Sequence

from connectors.models import ObjectKind, Plan, Subscription, SystemName
from gateway.reads import Sourced
from resolvers.context import Info


async def plans_for(info: Info, subscriptions: Sequence[Subscription]) -> dict[str, Sourced[Plan]]:
    """The plans the subscriptions name, loaded together (one batch), with provenance."""
    ids = sorted({s.plan_id for s in subscriptions})
    loaded = await asyncio.gather(
        *(info.context.loaders.record(SystemName.BILLING, ObjectKind.PLAN, i) for i in ids)
    )
    return {i: s for i, s in zip(ids, loaded, strict=True) if s.value is not None}


def values(plans: dict[str, Sourced[Plan]]) -> dict[str, Plan]:
    return {i: s.value for i, s in plans.items()}
