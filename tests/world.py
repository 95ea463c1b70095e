"""The four sandboxes on loopback, seeded with one deterministic world, for tests and
benchmarks that need the whole picture: the sandboxes' ``fleet`` plus the world and the
gateway settings that reach it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from connectors.models import SystemName
from connectors.sandbox import fleet
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.seed import World, generate
from gateway.data.registry import EXTERNAL
from gateway.demo import link_customers
from gateway.settings import ConnectorSettings, Settings, load_settings
from tests.identity import identity

SECRET = "sandbox-secret"


@dataclass
class Sandboxes(fleet.Fleet):
    """A running fleet (``urls``, ``admin``, and faults, counters and resets through them)
    and the world it was seeded with."""

    world: World

    def settings(self, database_url: str, **overrides: Any) -> Settings:
        per_system: dict[str, Any] = overrides.pop("connector", {})
        connectors = {
            s.value: ConnectorSettings(base_url=self.urls[s], secret=SECRET, **per_system)  # type: ignore[arg-type]
            for s in EXTERNAL
        }
        overrides.setdefault("auth", identity().settings())
        # Tests that count upstream calls must not count the change feeds' polls: a test
        # of the feeds polls them itself.
        overrides.setdefault("change_feed_interval_s", 3600)
        return load_settings(database_url=database_url, **connectors, **overrides)


def free_port(offsets: Sequence[int] = (0,)) -> int:
    """A loopback port p such that p + each offset is free too."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base: int = s.getsockname()[1]
        if base + max(offsets) > 65535:
            continue
        try:
            for offset in offsets:
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base
    raise RuntimeError("no free ports")


@contextmanager
def _sandbox_process(state_dir: str) -> Iterator[dict[SystemName, str]]:
    """The four sandboxes in a process of their own, so that their work does not compete
    with the gateway's for one interpreter (benchmarks): their URLs."""
    with fleet.in_process(Path(state_dir)) as running:
        yield running.urls


@contextmanager
def sandboxes(
    customers: int = 6,
    seed: int = 5,  # a world with every plan: starter, growth and enterprise customers
    as_of: date = date(2026, 11, 1),
    separate_process: bool = False,
) -> Iterator[Sandboxes]:
    """Start, seed and yield the four sandboxes: in threads of this process (tests), or in
    a process of their own (``separate_process``, benchmarks)."""
    world = generate(customers=customers, seed=seed, as_of=as_of)
    if separate_process:
        started = fleet.in_process()
    else:
        started = fleet.in_threads(SandboxConfig(secret=SECRET))
    with started as running:
        running.seed(world)
        running.reset()
        yield Sandboxes(running.urls, running.admin, world)


def cli_env(**variables: str) -> dict[str, str]:
    """This process's environment without its ``OPSGRAPH_*`` settings, plus ``variables``:
    what an ``opsgraph`` command started by a test sees."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSGRAPH_")}
    return {**env, **variables}


def opsgraph(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``opsgraph *args`` run to its end in a process of its own, with ``cli_env(**env)``."""
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        env=cli_env(**env),
        timeout=60,
    )


def sandbox_variables(boxes: Sandboxes) -> dict[str, str]:
    """The ``OPSGRAPH_<SYSTEM>__*`` variables that point a gateway at ``boxes``."""
    variables = {}
    for system, url in boxes.urls.items():
        variables[f"OPSGRAPH_{system.value.upper()}__BASE_URL"] = url
        variables[f"OPSGRAPH_{system.value.upper()}__SECRET"] = SECRET
    return variables


def migrated_database(path: Path, world: World) -> str:
    """A new SQLite gateway database at ``path``, brought to head by ``opsgraph migrate``,
    whose crosswalk links the world's customers; its URL."""
    url = f"sqlite+aiosqlite:///{path}"
    subprocess.run(
        [sys.executable, "-m", "gateway.cli", "migrate"],
        env=cli_env(OPSGRAPH_DATABASE_URL=url),
        check=True,
        capture_output=True,
        timeout=60,
    )
    asyncio.run(link_customers(url, world))
    return url


def wait_ready(url: str, proc: subprocess.Popen[Any], within_s: float = 60) -> bool:
    """Whether the gateway at ``url``, served by ``proc``, answers ``/readyz`` with 200
    before ``proc`` exits or ``within_s`` pass."""
    deadline = time.monotonic() + within_s
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False


@contextmanager
def gateway_process(
    env: Mapping[str, str], *options: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``opsgraph serve`` (with ``options``) on a free port in a process of its own with
    ``env``, yielded once ``/readyz`` answers: its URL and the process, for the test to
    signal. Killed at the end if it is still running."""
    port = free_port()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), *options],
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            if not wait_ready(url, proc):
                log.seek(0)
                raise RuntimeError(f"the gateway did not start:\n{log.read().decode()}")
            yield url, proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


def until(done: Callable[[], bool], within_s: float = 30) -> bool:
    """Whether ``done()`` comes true within ``within_s``, asked every 50 ms (and once more
    at the end): for what a background task or another process does in its own time."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.05)
    return done()
