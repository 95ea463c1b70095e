from __future__ import annotations

import strawberry

from gateway.auth.scopes import Scope, needs
from resolvers.context import Info
from resolvers.enums import BreakerState, SystemName


@strawberry.federation.type(
    description="A configured system of record and how it is doing right now.",
    requires_scopes=needs(Scope.SYSTEMS_READ),
)
class SystemStatus:
    name: SystemName
    healthy: bool
    latency_ms: int
    detail: str | None
    breaker: BreakerState


@strawberry.type
class SystemQuery:
    @strawberry.field(
        description="Every configured connector: its last probed health and its breaker now."
    )
    async def systems(self, info: Info) -> list[SystemStatus]:
        statuses = await info.context.once("systems", info.context.services.registry.status)
        return [
            SystemStatus(
                name=s.system,
                healthy=s.health.healthy,
                latency_ms=s.health.latency_ms,
                detail=s.health.detail,
                breaker=s.breaker,
            )
            for s in statuses
        ]
