"""Connector health, probed in the background: ``systems`` answers from here, from memory.

Each configured system is asked every ``interval_s`` whether it answers (its connector's
``health``: one attempt, under the bulkhead like every call, bounded by its timeout), each
on its own schedule, so a system that hangs delays only its own next probe. A request
never triggers a probe, however many times it asks for ``systems``.
"""

from __future__ import annotations

import asyncio
import logging

from connectors.models import Health, SystemName
from connectors.resilience import Resilient
from gateway.data.detached import stop

log = logging.getLogger("opsgraph.health")


class HealthProber:
    def __init__(self, connectors: dict[SystemName, Resilient], interval_s: float) -> None:
        self._connectors = connectors
        self._interval_s = interval_s
        self._last: dict[SystemName, Health] = {}
        self._probed = {system: asyncio.Event() for system in connectors}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._probe_forever(system, connector), name=f"probe {system}")
            for system, connector in self._connectors.items()
        ]

    async def _probe_forever(self, system: SystemName, connector: Resilient) -> None:
        while True:
            try:
                health = await connector.health()
            except Exception as exc:  # noqa: BLE001 - a probe must never stop probing
                log.exception("probing %s failed", system)
                health = Health(system=system, healthy=False, latency_ms=0, detail=repr(exc))
            if self._last.get(system, health).healthy != health.healthy:
                log.warning("%s is now %s", system, "healthy" if health.healthy else "unhealthy")
            self._last[system] = health
            self._probed[system].set()
            await asyncio.sleep(self._interval_s)

    async def health(self, system: SystemName) -> Health:
        """The last probe's answer; right after start-up, the first one when it comes."""
        last = self._last.get(system)
        if last is not None:
            return last
        await self._probed[system].wait()
        return self._last[system]

    async def aclose(self) -> None:
        await stop(self._tasks, "health probes")
