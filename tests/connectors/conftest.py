from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from connectors.models import Record
from connectors.sandbox import fleet
from connectors.sandbox.config import SandboxConfig


@contextmanager
def running_sandbox(
    create_app: fleet.CreateApp,
    records: list[Record],
    config: SandboxConfig | None = None,
) -> Iterator[tuple[str, httpx.Client]]:
    """Serve a sandbox on a loopback port, seed it through its admin route, and yield its
    base URL and an admin client."""
    with fleet.serving(create_app, config or SandboxConfig()) as (url, admin):
        fleet.seed(admin, records)
        fleet.reset_stats(admin)
        yield url, admin
