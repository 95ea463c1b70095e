"""The four sandboxes as one fleet: which app stands in for which system, and how to start,
seed and drive them together.

    APPS                       SystemName -> create_app, in port order
    configs(state_dir)         one SandboxConfig per system (fresh files, or in memory)
    apps(configs)              the four apps, to serve in this process (the demo)
    seed_apps(apps, world)     seed them in process, without HTTP
    serving(create, config)    one sandbox on a loopback port from a thread: (url, admin)
    in_threads() / in_process()
                               the four on loopback, in threads of this process or in a
                               process of their own (``python -m connectors.sandbox.fleet``):
                               a ``Fleet``
    Fleet                      their URLs and admin clients: seed a world (or make the
                               reconciliation benchmark's: ``bulk``), set faults, read and
                               reset their request counters; the process serving them

Driving goes through each sandbox's ``/_sandbox`` admin routes (``admin``), so a fleet in
another process is driven exactly like one in this.
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from connectors import codec
from connectors.models import Record, SystemName
from connectors.sandbox import billing, crm, erp, support
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.faults import SandboxMiddleware
from connectors.sandbox.seed import World
from connectors.sandbox.serve import HOST, listen, run_together, serve_in_thread, server

CreateApp = Callable[[SandboxConfig], SandboxMiddleware]

APPS: dict[SystemName, CreateApp] = {
    SystemName.BILLING: billing.create_app,
    SystemName.ERP: erp.create_app,
    SystemName.CRM: crm.create_app,
    SystemName.SUPPORT: support.create_app,
}


def ports(first: int) -> dict[SystemName, int]:
    """Billing on ``first``, then ERP, CRM and support."""
    return {system: first + n for n, system in enumerate(APPS)}


def configs(
    state_dir: Path | None = None,
    *,
    secret: str = SandboxConfig.secret,
    webhook_secret: str = SandboxConfig.webhook_secret,
) -> dict[SystemName, SandboxConfig]:
    """A config per system: its storage a fresh ``sandbox-<system>.db`` in ``state_dir``
    (whatever was there is deleted), or in memory without one."""
    chosen = {}
    for system in APPS:
        db = ":memory:"
        if state_dir is not None:
            path = state_dir / f"sandbox-{system.value}.db"
            path.unlink(missing_ok=True)
            db = str(path)
        chosen[system] = SandboxConfig(db_path=db, secret=secret, webhook_secret=webhook_secret)
    return chosen


def apps(chosen: Mapping[SystemName, SandboxConfig]) -> dict[SystemName, SandboxMiddleware]:
    return {system: APPS[system](config) for system, config in chosen.items()}


def seed_apps(running: Mapping[SystemName, SandboxMiddleware], world: World) -> None:
    for system, app in running.items():
        app.seeder(world.slice(system))


# -- one sandbox, driven over its admin routes ---------------------------------------------


def seed(admin: httpx.Client, records: Iterable[Record]) -> None:
    answer = admin.post("/_sandbox/seed", json={"records": [codec.to_json(r) for r in records]})
    if answer.status_code != 200:
        raise RuntimeError(f"seeding {admin.base_url} failed: {answer.text}")


def set_faults(admin: httpx.Client, **faults: Any) -> None:
    """Replace the sandbox's faults (none given: none at all)."""
    admin.put("/_sandbox/faults", json=faults).raise_for_status()


def stats(admin: httpx.Client) -> dict[str, Any]:
    answer: dict[str, Any] = admin.get("/_sandbox/stats").raise_for_status().json()
    return answer


def reset_stats(admin: httpx.Client) -> None:
    admin.post("/_sandbox/stats/reset").raise_for_status()


@contextmanager
def serving(create: CreateApp, config: SandboxConfig) -> Iterator[tuple[str, httpx.Client]]:
    """One sandbox served on a loopback port from a thread of this process: its URL and a
    client for its admin routes."""
    running = serve_in_thread(create(config))
    try:
        with httpx.Client(base_url=running.url, timeout=30) as admin:
            yield running.url, admin
    finally:
        running.stop()


# -- the four -------------------------------------------------------------------------------


@dataclass
class Fleet:
    urls: dict[SystemName, str]
    admin: dict[SystemName, httpx.Client]
    # The process serving them when it is not this one (``in_process``): for its memory.
    pid: int | None = field(default=None, kw_only=True)

    def seed(self, world: World) -> None:
        for system, admin in self.admin.items():
            seed(admin, world.slice(system))

    def bulk(self, invoices: int, seed: int = 1) -> dict[SystemName, dict[str, int]]:
        """Billing and the ERP make their sides of ``bulk.BenchWorld(invoices, seed)``:
        how many of each each holds."""
        made = {}
        for system in (SystemName.BILLING, SystemName.ERP):
            body = {"invoices": invoices, "seed": seed}
            answer = self.admin[system].post("/_sandbox/bulk", json=body)
            if answer.status_code != 200:
                raise RuntimeError(f"bulk seeding {system} failed: {answer.text}")
            made[system] = answer.json()
        return made

    def faults(self, system: SystemName, **faults: Any) -> None:
        set_faults(self.admin[system], **faults)

    def reset(self) -> None:
        """No faults anywhere, and every counter at zero."""
        for admin in self.admin.values():
            set_faults(admin)
        self.reset_stats()

    def deliver(self, system: SystemName, url: str | None) -> None:
        """Where ``system`` delivers its signed events from now on (None: nowhere)."""
        self.admin[system].put("/_sandbox/webhooks", json={"url": url}).raise_for_status()

    def reset_stats(self) -> None:
        """Zero the request counters, leaving the faults as they are."""
        for admin in self.admin.values():
            reset_stats(admin)

    def requests(self) -> dict[SystemName, dict[str, int]]:
        """Upstream requests each sandbox received since the last reset, per path."""
        return {system: stats(admin)["requests"] for system, admin in self.admin.items()}

    def totals(self) -> dict[SystemName, int]:
        return {system: sum(r.values()) for system, r in self.requests().items()}


@contextmanager
def _driving(urls: Mapping[SystemName, str], pid: int | None = None) -> Iterator[Fleet]:
    with ExitStack() as stack:
        clients = {
            s: stack.enter_context(httpx.Client(base_url=u, timeout=30)) for s, u in urls.items()
        }
        yield Fleet(dict(urls), clients, pid=pid)


@contextmanager
def in_threads(config: SandboxConfig | None = None) -> Iterator[Fleet]:
    """The four in threads of this process, on fresh in-memory storage."""
    with ExitStack() as stack:
        urls = {}
        for system, create in APPS.items():
            running = serve_in_thread(create(config or SandboxConfig()))
            stack.callback(running.stop)
            urls[system] = running.url
        yield stack.enter_context(_driving(urls))


@contextmanager
def in_process(state_dir: Path | None = None) -> Iterator[Fleet]:
    """The four in a process of their own, so that their work does not compete with this
    one's for an interpreter (benchmarks, tests of a gateway in yet another process)."""
    command = [sys.executable, "-m", "connectors.sandbox.fleet"]
    if state_dir is not None:
        command += ["--state-dir", str(state_dir)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        try:
            urls = {}
            for line in proc.stdout or ():  # "<system> <url>" once each listens
                system, url = line.split()
                urls[SystemName(system)] = url
                if len(urls) == len(APPS):
                    break
            if len(urls) < len(APPS):
                raise RuntimeError("the sandbox process did not start")
            with _driving(urls, proc.pid) as fleet:
                yield fleet
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def main(argv: list[str] | None = None) -> None:
    """Serve the four (empty) until SIGINT or SIGTERM, on ports from ``--port`` (each its
    own free port with 0), printing ``<system> <url>`` for each once it listens."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=0, help="billing's; ERP, CRM, support follow")
    parser.add_argument("--state-dir", type=Path, help="where their data lives (else memory)")
    args = parser.parse_args(argv)
    chosen = ports(args.port) if args.port else dict.fromkeys(APPS, 0)
    sockets = {s: listen({p: f"the {s.value} sandbox"})[0] for s, p in chosen.items()}
    running = apps(configs(args.state_dir))
    # CPython collects its youngest generation once 700 containers are alive that it has not
    # seen: a page of 100 invoices or of 1000 SuiteQL rows holds more until it is written,
    # so each page was a collection or more (~2 us of CPU a document). As the gateway does
    # (``gateway.collector``), the sandboxes wait for 10,000.
    gc.set_threshold(10_000)
    for system, sock in sockets.items():
        print(f"{system.value} http://{HOST}:{sock.getsockname()[1]}", flush=True)
    run_together([server(running[s], sock) for s, sock in sockets.items()])


if __name__ == "__main__":
    main()
