"""The four sandboxes on loopback, seeded with one deterministic world, for tests and
benchmarks that need the whole picture."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx

from connectors import codec
from connectors.models import SystemName
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.seed import World, generate
from connectors.sandbox.serve import Running, serve_in_thread
from gateway.registry import EXTERNAL
from gateway.settings import ConnectorSettings, Settings, load_settings

SECRET = "sandbox-secret"


@dataclass
class Sandboxes:
    world: World
    running: dict[SystemName, Running]
    admin: dict[SystemName, httpx.Client] = field(default_factory=dict)

    def settings(self, database_url: str, **overrides: Any) -> Settings:
        per_system: dict[str, Any] = overrides.pop("connector", {})
        connectors = {
            s.value: ConnectorSettings(
                base_url=self.running[s].url,  # type: ignore[arg-type]
                secret=SECRET,
                **per_system,
            )
            for s in EXTERNAL
        }
        return load_settings(database_url=database_url, **connectors, **overrides)

    def requests(self) -> dict[SystemName, dict[str, int]]:
        """Upstream requests each sandbox received since the last reset, per path."""
        return {s: a.get("/_sandbox/stats").json()["requests"] for s, a in self.admin.items()}

    def totals(self) -> dict[SystemName, int]:
        return {s: sum(r.values()) for s, r in self.requests().items()}

    def reset(self) -> None:
        for admin in self.admin.values():
            admin.put("/_sandbox/faults", json={}).raise_for_status()
            admin.post("/_sandbox/stats/reset").raise_for_status()

    def faults(self, system: SystemName, **faults: Any) -> None:
        self.admin[system].put("/_sandbox/faults", json=faults).raise_for_status()


@contextmanager
def sandboxes(
    customers: int = 6, seed: int = 11, as_of: date = date(2026, 11, 1)
) -> Iterator[Sandboxes]:
    world = generate(customers=customers, seed=seed, as_of=as_of)
    boxes = Sandboxes(world, {})
    try:
        for system in EXTERNAL:
            module = importlib.import_module(f"connectors.sandbox.{system.value}")
            app = module.create_app(SandboxConfig(secret=SECRET))
            boxes.running[system] = serve_in_thread(app)
        for system, r in boxes.running.items():
            boxes.admin[system] = httpx.Client(base_url=r.url, timeout=10)
            records = [codec.to_json(x) for x in world.slice(system)]
            seeded = boxes.admin[system].post("/_sandbox/seed", json={"records": records})
            seeded.raise_for_status()
        boxes.reset()
        yield boxes
    finally:
        for client in boxes.admin.values():
            client.close()
        for r in boxes.running.values():
            r.stop()
