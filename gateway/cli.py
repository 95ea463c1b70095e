"""The ``opsgraph`` command: serve, demo, migrate, sandbox, ownership check."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from pydantic_settings import SettingsError

from connectors.errors import GatewayError
from gateway.errors import ConfigurationError
from gateway.ownership import OwnershipMap
from gateway.settings import load_settings

app = typer.Typer(
    help="opsgraph: one operational truth over billing, ERP, CRM and support.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
ownership_app = typer.Typer(help="The ownership map.", no_args_is_help=True)
app.add_typer(ownership_app, name="ownership")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Serve the gateway with the settings from OPSGRAPH_* variables. On SIGINT or SIGTERM,
    requests in flight get OPSGRAPH_SHUTDOWN_GRACE_S to finish."""
    from connectors.sandbox.serve import PortUnavailable, listen, run_together, server
    from gateway.app import create_app

    settings = load_settings()
    app_ = create_app(settings)
    port = settings.port if port is None else port
    try:
        [sock] = listen({port: "the gateway"}, host or settings.host)
    except PortUnavailable as exc:
        raise ConfigurationError(f"{exc}; choose another with --port or OPSGRAPH_PORT") from None
    gateway = server(
        app_,
        sock,
        lifespan="on",
        grace_s=settings.shutdown_grace_s,
        log_level="info",
        access_log=True,
    )
    run_together([gateway])


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
