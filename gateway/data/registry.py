"""The connector registry: builds one resilient connector per configured system and answers
"who owns X" through the ownership map."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from purgatory import AsyncCircuitBreakerFactory

from connectors import deadline, systems
from connectors.models import ConnectorConfig, Health, ObjectKind, SystemName
from connectors.resilience import RESERVE_S, BreakerState, CallObserver, Policy, Resilient
from gateway.data.prober import HealthProber
from gateway.errors import UpstreamUnavailable
from gateway.ownership import OwnershipMap
from gateway.settings import ConnectorSettings, Settings

EXTERNAL = (SystemName.BILLING, SystemName.ERP, SystemName.CRM, SystemName.SUPPORT)
# Systems kept alongside one of those for a while (a cut-over's old ERP).
SHADOWS = {SystemName.ERP_SHADOW: SystemName.ERP}


@dataclass(frozen=True)
class SystemStatus:
    system: SystemName
    health: Health
    breaker: BreakerState


def _config(settings: ConnectorSettings, traced: bool = False) -> ConnectorConfig:
    options = {"email": settings.email} if settings.email else {}
    return ConnectorConfig(
        base_url=str(settings.base_url).rstrip("/"),
        secret=settings.secret,
        timeout=settings.timeout_s,
        webhook_secret=settings.webhook_secret or None,
        max_connections=settings.max_concurrency,
        options=options,
        traced=traced,
    )


class Registry:
    def __init__(
        self,
        connectors: Mapping[SystemName, Resilient],
        ownership: OwnershipMap,
        health_interval_s: float = 15.0,
    ):
        self._connectors = dict(connectors)
        self.ownership = ownership
        self._prober = HealthProber(self._connectors, health_interval_s)

    def start(self) -> None:
        """Start probing every system's health in the background."""
        self._prober.start()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        ownership: OwnershipMap,
        breakers: AsyncCircuitBreakerFactory | None = None,
        observer: CallObserver | None = None,
    ) -> Registry:
        """``observer`` is told of every call to every system (the gateway's metrics)."""
        breakers = breakers or AsyncCircuitBreakerFactory()
        built: dict[SystemName, Resilient] = {}
        for name, conf in settings.connectors().items():
            system = SystemName(name)
            inner = systems.connect(system, _config(conf, settings.telemetry.tracing))
            policy = Policy(timeout_s=conf.timeout_s, max_concurrency=conf.max_concurrency)
            built[system] = Resilient(inner, policy, breakers, observer=observer)
        return cls(built, ownership, settings.health_interval_s)

    @property
    def systems(self) -> list[SystemName]:
        return [s for s in (*EXTERNAL, *SHADOWS) if s in self._connectors]

    def shadow_of(self, system: SystemName) -> Resilient | None:
        """The configured shadow of ``system`` (the old ERP of a cut-over), if any."""
        for shadow, of in SHADOWS.items():
            if of is system and shadow in self._connectors:
                return self._connectors[shadow]
        return None

    def get(self, system: SystemName) -> Resilient:
        try:
            return self._connectors[system]
        except KeyError:
            raise UpstreamUnavailable(f"{system} is not configured", system=system.value) from None

    def owner_of(self, kind: ObjectKind) -> Resilient:
        return self.get(self.ownership.owner(kind))

    async def status(self) -> list[SystemStatus]:
        """Each system's last probed health and its breaker's state now; no system is
        called."""

        async def one(connector: Resilient) -> SystemStatus:
            health, breaker = await asyncio.gather(
                self._health(connector.system), connector.breaker_state()
            )
            return SystemStatus(connector.system, health, breaker)

        return list(await asyncio.gather(*(one(self._connectors[s]) for s in self.systems)))

    async def breakers(self) -> dict[SystemName, BreakerState]:
        """Each system's breaker state now (shared between replicas with Redis); no
        system is called, and no probe waited for."""
        states = await asyncio.gather(*(self._connectors[s].breaker_state() for s in self.systems))
        return dict(zip(self.systems, states, strict=True))

    async def _health(self, system: SystemName) -> Health:
        left = deadline.remaining()
        try:
            async with asyncio.timeout(None if left is None else max(0.0, left - RESERVE_S)):
                return await self._prober.health(system)
        except TimeoutError:
            return Health(system=system, healthy=False, latency_ms=0, detail="not probed yet")

    async def aclose(self) -> None:
        await self._prober.aclose()
        await asyncio.gather(*(c.aclose() for c in self._connectors.values()))
