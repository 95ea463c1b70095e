"""The embedded default in one process: four sandboxes seeded with the demo world, the
gateway on SQLite with in-process cache and stream, all on loopback."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic_settings import DotEnvSettingsSource, EnvSettingsSource
from rich.console import Console

from connectors.models import SystemName
from connectors.sandbox import fleet
from connectors.sandbox.faults import SandboxMiddleware
from connectors.sandbox.seed import World, generate
from connectors.sandbox.serve import HOST, PortUnavailable, listen, run_together, server
from gateway.app import create_app
from gateway.auth import dev_tokens
from gateway.auth.scopes import Role
from gateway.data.crosswalk import Crosswalk
from gateway.data.registry import EXTERNAL
from gateway.errors import ConfigurationError
from gateway.reconcile.scope import Period
from gateway.settings import ConnectorSettings, Profile, Settings, load_settings
from gateway.storage.database import create_engine, sessions
from gateway.storage.migrate import upgrade
from gateway.telemetry.log_format import configure_logging

SANDBOX_SECRET = "sandbox-secret"
WEBHOOK_SECRET = "whsec_sandbox"
# The demo's sandboxes listen on the gateway's port + 101..104.
SANDBOX_OFFSET = 101


def sandbox_ports(first_port: int) -> dict[SystemName, int]:
    """Billing on ``first_port``, then ERP, CRM and support."""
    return fleet.ports(first_port)


def sandbox_connector(url: str) -> dict[str, str]:
    """The connector settings that reach a sandbox at ``url``."""
    return {"base_url": url, **_credentials()}


def _credentials() -> dict[str, str]:
    return {"secret": SANDBOX_SECRET, "webhook_secret": WEBHOOK_SECRET}


def sandbox_exports(ports: Mapping[SystemName, int], host: str = HOST) -> list[str]:
    """Shell lines that point ``opsgraph serve`` at sandboxes on ``ports``."""
    return [
        f"export OPSGRAPH_{system.value.upper()}__{name.upper()}={value}"
        for system, port in ports.items()
        for name, value in sandbox_connector(f"http://{host}:{port}").items()
    ]


def sandbox_apps(state_dir: Path) -> dict[SystemName, SandboxMiddleware]:
    """The four sandboxes on fresh storage in ``state_dir``. They deliver no webhooks until
    told where (``deliver_to``)."""
    configs = fleet.configs(state_dir, secret=SANDBOX_SECRET, webhook_secret=WEBHOOK_SECRET)
    return fleet.apps(configs)


def deliver_to(apps: Mapping[SystemName, SandboxMiddleware], gateway_url: str) -> None:
    """Billing and support deliver their signed events to the gateway at ``gateway_url``."""
    for system, app in apps.items():
        if app.webhooks is not None:
            app.webhooks.url = f"{gateway_url}/webhooks/{system.value}"


def _database_url(state_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{state_dir / 'opsgraph.db'}"


def demo_settings(state_dir: Path, port: int | None) -> Settings:
    """The gateway's settings in the demo: ``OPSGRAPH_*`` as for ``opsgraph serve``; the
    demo supplies only what those leave unset of its database URL, its port and how to
    reach its sandboxes. ``port`` (``--port``) wins over everything."""
    # Values given to the settings constructor win over the environment, so the demo gives
    # its own only where the environment is silent (nested settings merge field by field).
    given = _set_by_environment()
    flag = {} if port is None else {"port": port}
    own: dict[str, Any] = {
        "database_url": _database_url(state_dir),
        # GraphiQL and introspection open, and the demo's own tokens (HS256, a new secret
        # each run): anonymous requests are still refused, as in production.
        "profile": Profile.DEVELOPMENT.value,
        "auth": {"hs256_secret": secrets.token_urlsafe(32)},
    }
    # First without the sandboxes' URLs, which follow from the port this settles.
    for system in EXTERNAL:
        own[system.value] = _credentials()
    first = load_settings(**_unless_given(own, given), **flag)
    for system, p in sandbox_ports(first.port + SANDBOX_OFFSET).items():
        own[system.value] = sandbox_connector(f"http://{HOST}:{p}")
    return load_settings(**_unless_given(own, given), **flag)


def _set_by_environment() -> dict[str, Any]:
    """The settings ``OPSGRAPH_*`` variables and ``.env`` set, unvalidated: alone they need
    not be valid (a system's base URL may wait for the demo's secret)."""
    given: dict[str, Any] = {}
    for source in (DotEnvSettingsSource(Settings), EnvSettingsSource(Settings)):
        for name, value in source().items():
            if isinstance(value, dict) and isinstance(given.get(name), dict):
                value = {**given[name], **value}
            given[name] = value
    return given


def _unless_given(own: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``own`` without what ``given`` sets, field by field in nested settings."""
    kept: dict[str, Any] = {}
    for name, value in own.items():
        if isinstance(value, dict):
            nested = given.get(name, {})
            if not isinstance(nested, dict):  # not settings at all: validation says so
                nested = value
            kept[name] = {k: v for k, v in value.items() if k not in nested}
        elif name not in given:
            kept[name] = value
    return kept


async def link_customers(database_url: str, world: World) -> None:
    engine = create_engine(database_url)
    try:
        crosswalk = Crosswalk(sessions(engine))
        for customer in world.customers:
            await crosswalk.link(
                customer.id, customer.name, customer.external_ids, customer.legal_entity
            )
    finally:
        await engine.dispose()


def run_demo(
    customers: int, seed: int, port: int | None, state_dir: Path, as_of: date | None
) -> None:
    """Seed, serve until SIGINT or SIGTERM, then stop everything. Every port is taken
    before any state is touched: a busy one stops the demo with ``ConfigurationError``
    naming it."""
    settings = demo_settings(state_dir, port)
    # One full reconciliation of the seed's three months as the gateway starts, so that the
    # planted discrepancies are there to see without asking.
    month = Period.of(as_of or datetime.now(UTC).date())
    if settings.reconcile_at_start is None:
        at_start = f"{month.shifted(-2)}..{month}"
        settings = settings.model_copy(update={"reconcile_at_start": at_start})
    gateway = create_app(settings)  # checks the ownership file
    ports = sandbox_ports(settings.port + SANDBOX_OFFSET)
    try:
        gateway_socket, *sandbox_sockets = listen(
            {
                settings.port: "the gateway",
                **{
                    p: f"the {system.value} sandbox, --port + {p - settings.port}"
                    for system, p in ports.items()
                },
            }
        )
    except PortUnavailable as exc:
        raise ConfigurationError(
            f"{exc}; start the demo on another --port (make demo PORT=...)"
        ) from None

    console = Console()
    state_dir.mkdir(parents=True, exist_ok=True)
    world = generate(customers=customers, seed=seed, as_of=as_of)
    apps = sandbox_apps(state_dir)
    fleet.seed_apps(apps, world)
    deliver_to(apps, f"http://{HOST}:{settings.port}")
    (state_dir / "seed-manifest.json").write_text(json.dumps(world.manifest(), indent=2))
    if settings.database_url == _database_url(state_dir):
        (state_dir / "opsgraph.db").unlink(missing_ok=True)
    upgrade(settings.database_url)
    asyncio.run(link_customers(settings.database_url, world))
    secret = settings.auth.hs256_secret
    tokens = {}
    if secret:
        auth = settings.auth
        path = state_dir / "tokens.json"
        tokens = dev_tokens.write(path, secret, issuer=auth.issuer, audience=auth.audience)

    servers = [
        server(gateway, gateway_socket, lifespan="on", grace_s=settings.shutdown_grace_s),
        *(server(app, sock) for app, sock in zip(apps.values(), sandbox_sockets, strict=True)),
    ]
    url = f"http://{HOST}:{settings.port}"
    console.print(f"[bold]opsgraph demo[/] — {customers} customers (seed {seed})")
    console.print(f"  dashboards  {url}/dashboards  (start here: sign in, find a customer)")
    console.print(f"  GraphQL     {url}/graphql")
    if settings.profile is Profile.DEVELOPMENT:
        console.print(f"  GraphiQL    {url}/graphiql")
    console.print(f"  readiness   {url}/readyz")
    for system, p in ports.items():
        sandbox = f"http://{HOST}:{p}"
        console.print(f"  sandbox     {system.value:<8} {sandbox}  (admin: /_sandbox/faults)")
        configured: ConnectorSettings = getattr(settings, system.value)
        if str(configured.base_url).rstrip("/") != sandbox:
            variable = f"OPSGRAPH_{system.value.upper()}__BASE_URL={configured.base_url}"
            console.print(f"              (the gateway's {system.value}: {variable})")
    console.print(f"  manifest    {state_dir / 'seed-manifest.json'}")
    query = '{ systems { name healthy breaker } customer(id: \\"cust_0001\\") { name } }'
    if tokens:
        console.print(f"  tokens      {state_dir / 'tokens.json'}  (development, one per role)")
        console.print(
            f"  try         curl -s {url}/graphql -H 'content-type: application/json' "
            f"-H 'authorization: Bearer {tokens[Role.VIEWER]}' "
            f'-d \'{{"query": "{query}"}}\'',
            soft_wrap=True,
            highlight=False,
        )
    else:
        console.print("  tokens      none: OPSGRAPH_AUTH__* verifies your identity provider's")
    console.print("Ctrl-C stops everything.")
    configure_logging(settings)  # once the servers are made: uvicorn configures its own then
    run_together(servers)
