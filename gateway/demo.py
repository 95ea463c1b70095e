"""The embedded default in one process: four sandboxes seeded with the demo world, the
gateway on SQLite with in-process cache and stream, all on loopback."""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import uvicorn
from rich.console import Console

from connectors.models import SystemName
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.faults import SandboxMiddleware
from connectors.sandbox.seed import World, generate
from connectors.sandbox.serve import HOST, serve_forever
from gateway.app import create_app
from gateway.crosswalk import Crosswalk
from gateway.registry import EXTERNAL
from gateway.settings import ConnectorSettings, Settings, load_settings
from gateway.storage.database import create_engine, sessions
from gateway.storage.migrate import upgrade

SANDBOX_SECRET = "sandbox-secret"
WEBHOOK_SECRET = "whsec_sandbox"


def sandbox_apps(
    state_dir: Path, first_port: int
) -> dict[SystemName, tuple[SandboxMiddleware, int]]:
    """The four sandboxes on fresh storage, billing on ``first_port`` and the others after.
    They deliver no webhooks until the gateway serves ``/webhooks`` (events issue)."""
    apps = {}
    for offset, system in enumerate(EXTERNAL):
        module = importlib.import_module(f"connectors.sandbox.{system.value}")
        create: Callable[[SandboxConfig], SandboxMiddleware] = module.create_app
        db = state_dir / f"sandbox-{system.value}.db"
        db.unlink(missing_ok=True)
        config = SandboxConfig(
            db_path=str(db),
            secret=SANDBOX_SECRET,
            webhook_secret=WEBHOOK_SECRET,
        )
        apps[system] = (create(config), first_port + offset)
    return apps


def demo_settings(state_dir: Path, port: int, ports: dict[SystemName, int]) -> Settings:
    def sandbox(system: SystemName) -> ConnectorSettings:
        return ConnectorSettings(
            base_url=f"http://{HOST}:{ports[system]}",
            secret=SANDBOX_SECRET,
            webhook_secret=WEBHOOK_SECRET,
            timeout_s=5,
        )

    return load_settings(
        database_url=f"sqlite+aiosqlite:///{state_dir / 'opsgraph.db'}",
        port=port,
        **{s.value: sandbox(s) for s in EXTERNAL},
    )


async def link_customers(database_url: str, world: World) -> None:
    engine = create_engine(database_url)
    try:
        crosswalk = Crosswalk(sessions(engine))
        for customer in world.customers:
            await crosswalk.link(customer.id, customer.name, customer.external_ids)
    finally:
        await engine.dispose()


def run_demo(customers: int, seed: int, port: int, state_dir: Path, as_of: date | None) -> None:
    console = Console()
    state_dir.mkdir(parents=True, exist_ok=True)
    world = generate(customers=customers, seed=seed, as_of=as_of)
    apps = sandbox_apps(state_dir, port + 101)
    for system, (app, _) in apps.items():
        app.seeder(world.slice(system))
    (state_dir / "seed-manifest.json").write_text(json.dumps(world.manifest(), indent=2))
    settings = demo_settings(state_dir, port, {s: p for s, (_, p) in apps.items()})
    (state_dir / "opsgraph.db").unlink(missing_ok=True)
    upgrade(settings.database_url)
    asyncio.run(link_customers(settings.database_url, world))

    gateway = uvicorn.Server(
        uvicorn.Config(create_app(settings), host=HOST, port=port, log_level="warning")
    )
    console.print(f"[bold]opsgraph demo[/] — {customers} customers (seed {seed})")
    console.print(f"  GraphQL     http://{HOST}:{port}/graphql")
    console.print(f"  readiness   http://{HOST}:{port}/readyz")
    for system, (_, p) in apps.items():
        console.print(
            f"  sandbox     {system.value:<8} http://{HOST}:{p}  (admin: /_sandbox/faults)"
        )
    console.print(f"  manifest    {state_dir / 'seed-manifest.json'}")
    console.print(
        '  try         { systems { name healthy breaker } customer(id: "cust_0001") '
        "{ name externalIds { system id } } }"
    )
    console.print("Ctrl-C stops everything.")

    async def main() -> None:
        await asyncio.gather(serve_forever(list(apps.values())), gateway.serve())

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
