"""The ``opsgraph`` command: serve, demo, migrate, sandbox, replay, reconcile, ownership check,
policy check, routes check, schema check|write, keys create|list|revoke."""

from __future__ import annotations

import asyncio
import math
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from pydantic_settings import SettingsError

from connectors.errors import GatewayError
from gateway.auth.scopes import Scope
from gateway.errors import ConfigurationError
from gateway.ownership import OwnershipMap
from gateway.rules.credit_policy import CreditPolicy
from gateway.settings import load_settings

if TYPE_CHECKING:
    from gateway.auth.keys import ApiKeys

# uvicorn's exit status for a server that could not start.
STARTUP_FAILURE = 3

T = TypeVar("T")

app = typer.Typer(
    help="opsgraph: one operational truth over billing, ERP, CRM and support.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
ownership_app = typer.Typer(help="The ownership map.", no_args_is_help=True)
app.add_typer(ownership_app, name="ownership")
policy_app = typer.Typer(help="The service-credit policy.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
schema_app = typer.Typer(help="The committed schema (schema.graphql).", no_args_is_help=True)
app.add_typer(schema_app, name="schema")
routes_app = typer.Typer(help="The event routes.", no_args_is_help=True)
app.add_typer(routes_app, name="routes")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1, max=256, help="Processes serving the port, each one event loop: one per core."
        ),
    ] = 1,
) -> None:
    """Serve the gateway with the settings from OPSGRAPH_* variables. On SIGINT or SIGTERM,
    requests in flight get OPSGRAPH_SHUTDOWN_GRACE_S to finish. With --workers N, N
    processes share the port (uvicorn's supervisor: a worker that dies is started again;
    SIGHUP replaces them one by one)."""
    from connectors.sandbox.serve import PortUnavailable, listen, run_together, server
    from gateway.app import create_app
    from gateway.telemetry.log_format import configure_logging

    settings = load_settings()
    app_ = create_app(settings)  # every file it reads is checked before a port is taken
    port = settings.port if port is None else port
    try:
        [sock] = listen({port: "the gateway"}, host or settings.host)
    except PortUnavailable as exc:
        raise ConfigurationError(f"{exc}; choose another with --port or OPSGRAPH_PORT") from None
    if workers > 1:
        _serve_workers(sock, workers, settings.shutdown_grace_s)
        return
    gateway = server(
        app_,
        sock,
        lifespan="on",
        grace_s=settings.shutdown_grace_s,
        log_level="info",
        access_log=True,
    )
    configure_logging(settings)  # once the server is made: uvicorn configures its own then
    run_together([gateway])


def _serve_workers(sock: socket.socket, workers: int, grace_s: float) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        "gateway.app:worker_app",
        factory=True,
        host=host,  # what uvicorn logs; the workers serve ``sock``
        port=port,
        workers=workers,
        lifespan="on",
        log_level="info",
        timeout_graceful_shutdown=math.ceil(grace_s),
    )
    supervisor = Multiprocess(config, sockets=[sock])
    supervisor.run()
    # A worker that could not start (its database, say) stops them all: so does the command.
    failed = [p.exitcode for p in supervisor.processes if p.exitcode == STARTUP_FAILURE]
    if failed:
        raise typer.Exit(STARTUP_FAILURE)


@app.command()
def migrate(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Bring the gateway's database to a migration revision (default: head)."""
    from gateway.storage.migrate import upgrade

    settings = load_settings()
    upgrade(settings.database_url, revision)
    typer.echo(f"database at {revision}")


@app.command()
def demo(
    customers: Annotated[int, typer.Option(min=1, max=5000, help="Customers to seed.")] = 12,
    seed: Annotated[int, typer.Option(help="Seed for the deterministic world.")] = 7,
    port: Annotated[
        int | None,
        typer.Option(
            help="Gateway port (default: OPSGRAPH_PORT, else 8000); sandboxes use port+101..104."
        ),
    ] = None,
    state_dir: Annotated[Path, typer.Option(help="Where demo state lives.")] = Path(".opsgraph"),
    as_of: Annotated[str | None, typer.Option(help="World date YYYY-MM-DD.")] = None,
) -> None:
    """Run everything on the embedded default: sandboxes, seeded data, the gateway."""
    from gateway.demo import run_demo

    when = date.fromisoformat(as_of) if as_of else None
    run_demo(customers, seed, port, state_dir, when)


@app.command()
def sandbox(
    port: Annotated[
        int, typer.Option(help="First port; billing, erp, crm, support follow.")
    ] = 8101,
    state_dir: Annotated[Path, typer.Option(help="Where sandbox data lives.")] = Path(".opsgraph"),
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
) -> None:
    """Serve the four sandboxes (empty; seed them through POST /_sandbox/seed) and print the
    settings that point `opsgraph serve` at them."""
    from connectors.sandbox.serve import PortUnavailable, listen, run_together, server
    from gateway.demo import sandbox_apps, sandbox_exports, sandbox_ports

    ports = sandbox_ports(port)
    try:
        sockets = listen(
            {p: f"the {s.value} sandbox, --port + {p - port}" for s, p in ports.items()}, host
        )
    except PortUnavailable as exc:
        raise ConfigurationError(f"{exc}; choose another --port") from None
    state_dir.mkdir(parents=True, exist_ok=True)
    apps = sandbox_apps(state_dir)
    typer.echo("# For `opsgraph serve` in another shell:")
    for line in sandbox_exports(ports, "127.0.0.1" if host == "0.0.0.0" else host):
        typer.echo(line)
    servers = [server(app, sock) for app, sock in zip(apps.values(), sockets, strict=True)]
    run_together(servers)


@ownership_app.command("check")
def ownership_check(
    path: Annotated[Path | None, typer.Argument(help="Ownership file (default: settings).")] = None,
) -> None:
    """Validate the ownership file and print who owns what."""
    ownership = OwnershipMap.load(path or load_settings().ownership_file)
    for kind, system in sorted(ownership.owners.items()):
        typer.echo(f"{kind.value:<26} {system.value}")


@policy_app.command("check")
def policy_check(
    path: Annotated[Path | None, typer.Argument(help="Policy file (default: settings).")] = None,
) -> None:
    """Validate the credit policy file and print each rule."""
    policy = CreditPolicy.load(path or load_settings().credit_policy_file)
    for rule in policy.rules.values():
        typer.echo(
            f"{rule.name:<24} auto-approved below {rule.auto_approve_below}, at most "
            f"{rule.max_per_request} a request and {rule.max_per_customer} a customer per "
            f"{rule.period}; approvers: {', '.join(sorted(rule.approvers))}"
        )


@routes_app.command("check")
def routes_check(
    path: Annotated[Path | None, typer.Argument(help="Routes file (default: settings).")] = None,
) -> None:
    """Validate the event routes file and print each route."""
    from gateway.events.actions import ACTIONS
    from gateway.events.routing import Routes

    routes = Routes.load(path or load_settings().event_routes_file, ACTIONS)
    for route in routes.routes:
        steps = " -> ".join(route.spec.actions)
        typer.echo(f"{route.name:<24} {', '.join(route.spec.on)} -> {steps}")


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


@app.command()
def replay(
    since: Annotated[
        datetime,
        typer.Option("--from", help="First moment of the range (UTC: YYYY-MM-DDTHH:MM:SS)."),
    ],
    until: Annotated[datetime, typer.Option("--to", help="End of the range (UTC), excluded.")],
    event_type: Annotated[
        str | None, typer.Option("--type", help="Only events of this type.")
    ] = None,
) -> None:
    """Route again the events received in [--from, --to): routes an event has no run of
    start one, failed or parked runs run again, and runs that succeeded are left alone."""
    from gateway.data.services import Services

    settings = load_settings()

    async def run() -> None:
        services = Services.build(settings, OwnershipMap.load(settings.ownership_file))
        try:
            done = await services.router.replay(_utc(since), _utc(until), event_type)
        finally:
            await services.aclose()
        typer.echo(
            f"{done.events} events: {done.started} runs started, {done.retried} retried, "
            f"{done.unchanged} left as they were"
        )

    asyncio.run(run())


class FailOn(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"
    NEVER = "never"


@app.command()
def reconcile(
    period: Annotated[str, typer.Option(help="The (first) accounting period, YYYY-MM.")],
    to: Annotated[
        str | None, typer.Option("--to", help="The last period, inclusive (default: --period).")
    ] = None,
    entity: Annotated[
        list[str] | None,
        typer.Option(help="A legal entity (repeat; default: every one)."),
    ] = None,
    fail_on: Annotated[
        FailOn,
        typer.Option(
            help="Exit 1 when the scope has open exceptions at least this severe (a close "
            "checklist's gate); never: only a failed run exits non-zero (2)."
        ),
    ] = FailOn.HIGH,
    incremental: Annotated[
        bool,
        typer.Option(
            help="Compare only the invoices the change feeds and webhooks named since the "
            "last run (default: read both systems over the scope)."
        ),
    ] = False,
) -> None:
    """Reconcile billing against the ERP over legal entities and periods: progress as it
    reads and compares, then what it found, highest rank first."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from connectors.models import ExceptionSeverity, ExceptionStatus
    from gateway import collector
    from gateway.data.services import Services
    from gateway.reconcile.book import ExceptionFilter
    from gateway.reconcile.engine import RunKind, RunStatus
    from gateway.reconcile.scope import Period, Scope

    settings = load_settings()
    first = Period.parse(period)
    scope = Scope(first, first if to is None else Period.parse(to), tuple(entity or ()))
    console = Console(stderr=True)

    async def run() -> int:
        services = Services.build(settings, OwnershipMap.load(settings.ownership_file))
        try:
            kind = RunKind.INCREMENTAL if incremental else RunKind.FULL
            started = await services.reconciler.start(scope, "cli", kind)
            columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
            with Progress(*columns, console=console, transient=True) as bar:
                task = bar.add_task("starting")
                while (
                    now := await services.reconciler.get(started.id)
                ).status is RunStatus.RUNNING:
                    stats = now.stats
                    bar.update(
                        task,
                        description=f"{now.phase.value}: {stats.get('source', 0)} source, "
                        f"{stats.get('target', 0)} target records, "
                        f"{stats.get('compared', 0)} keys compared",
                    )
                    await asyncio.sleep(0.25)
            done = await services.reconciler.wait(started.id)
            entities = scope.entities or None
            unresolved = ExceptionFilter(
                source=scope.source, target=scope.target, periods=tuple(scope.periods),
                statuses=(ExceptionStatus.OPEN, ExceptionStatus.ACKNOWLEDGED),
            )  # fmt: skip
            shown = await services.book.page(unresolved, entities, 50, None)
            total = shown.total
            gated = 0
            if fail_on is not FailOn.NEVER:
                severe = replace(unresolved, severity=ExceptionSeverity(fail_on.value))
                gated = await services.book.count(severe, entities)
        finally:
            await services.aclose()
        if done.status is not RunStatus.COMPLETED:
            console.print(f"[red]run {done.id} failed:[/red] {done.error}")
            return 2
        table = Table(title=f"run {done.id}: {total} open exceptions (the first 50, by rank)")
        for column in ("severity", "kind", "entity", "period", "customer", "key", "impact"):
            table.add_column(column)
        for e in shown.exceptions:
            table.add_row(
                e.severity.value, e.kind.value, e.entity, e.period, e.customer_id or "-",
                e.key, str(e.impact),
            )  # fmt: skip
        Console().print(table)
        stats = done.stats
        console.print(
            f"{stats.get('source', 0)} source and {stats.get('target', 0)} target records, "
            f"{stats.get('new', 0)} new, {stats.get('reopened', 0)} reopened, "
            f"{stats.get('autoResolved', 0)} auto-resolved"
        )
        if gated:
            console.print(f"{gated} open exceptions are {fail_on.value} or worse")
        return 1 if gated else 0

    try:
        # A run allocates by the million, as a server does by the request: the collector
        # is tuned as the gateway's (gateway.collector).
        with collector.tuned(settings.gc_threshold):
            code = asyncio.run(run())
    except GatewayError as exc:
        typer.echo(f"opsgraph: {exc.message}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


Snapshot = Annotated[Path, typer.Option(help="The committed schema.")]
SCHEMA_FILE = Path("schema.graphql")


@schema_app.command("check")
def schema_check(snapshot: Snapshot = SCHEMA_FILE) -> None:
    """List how the running schema differs from the snapshot; exit 1 if it does."""
    from gateway.schema_check import WRITE, check

    changes = check(snapshot)
    if not changes:
        typer.echo(f"{snapshot} matches the running schema")
        return
    for change in changes:
        typer.echo(str(change))
    typer.echo(
        f"opsgraph: the running schema is not {snapshot}: if the changes above are meant, "
        f"run `{WRITE}` and commit {snapshot} with them",
        err=True,
    )
    raise typer.Exit(1)


@schema_app.command("write")
def schema_write(snapshot: Snapshot = SCHEMA_FILE) -> None:
    """Write the running schema to the snapshot, listing what changes in it."""
    from gateway.schema_check import write

    for change in write(snapshot):
        typer.echo(str(change))
    typer.echo(f"wrote {snapshot}")


keys_app = typer.Typer(help="API keys for service clients.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _with_keys(work: Callable[[ApiKeys], Awaitable[T]]) -> T:
    from gateway.auth.keys import opened

    async def run() -> T:
        async with opened(load_settings().database_url) as keys:
            return await work(keys)

    return asyncio.run(run())


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who the key is for.")],
    scope: Annotated[list[Scope], typer.Option(help="A scope it grants (repeat).")],
    entity: Annotated[
        list[str] | None,
        typer.Option(help="A legal entity it may see (repeat; default: every one)."),
    ] = None,
) -> None:
    """Create a key and print it, once: opsgraph keeps only its hash.

    The composing router's key needs schema:read, which `_service` requires."""
    info, key = _with_keys(lambda keys: keys.create(name, scope, entity or None))
    typer.echo(key)
    typer.echo(f"{info.id} ({info.name}): store the key now, it is not shown again", err=True)


@keys_app.command("list")
def keys_list() -> None:
    """Every key, without its secret: scopes, legal entities, created, last used, revoked."""
    issued = _with_keys(lambda keys: keys.issued())
    rows = [("ID", "NAME", "SCOPES", "ENTITIES", "CREATED", "LAST USED", "REVOKED")]
    for k in issued:
        rows.append(
            (
                k.id, k.name, ",".join(k.scopes),
                "*" if k.legal_entities is None else ",".join(k.legal_entities),
                _when(k.created_at), _when(k.last_used_at), _when(k.revoked_at),
            )
        )  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _when(at: datetime | None) -> str:
    return "-" if at is None else at.isoformat(timespec="seconds")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id.")]) -> None:
    """Refuse the key from the next request on."""
    info = _with_keys(lambda keys: keys.revoke(key_id))
    typer.echo(f"revoked {info.id} ({info.name})")


def main() -> None:
    try:
        app()
    except GatewayError as exc:
        typer.echo(f"opsgraph: {exc.message}", err=True)
        sys.exit(2)
    except SettingsError as exc:  # a variable that is not even JSON (OPSGRAPH_ERP=x)
        typer.echo(f"opsgraph: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C before serving started: no traceback
        sys.exit(130)


if __name__ == "__main__":
    main()
