from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
from starlette.types import ASGIApp

from connectors import codec
from connectors.models import Record
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.serve import serve_in_thread


@contextmanager
def running_sandbox(
    create_app: Callable[[SandboxConfig], ASGIApp],
    records: list[Record],
    config: SandboxConfig | None = None,
) -> Iterator[tuple[str, httpx.Client]]:
    """Serve a sandbox on a loopback port, seed it through its admin route, and yield its
    base URL and an admin client."""
    running = serve_in_thread(create_app(config or SandboxConfig()))
    try:
        with httpx.Client(base_url=running.url, timeout=10) as admin:
            seeded = admin.post(
                "/_sandbox/seed", json={"records": [codec.to_json(r) for r in records]}
            )
            assert seeded.status_code == 200, seeded.text
            admin.post("/_sandbox/stats/reset")
            yield running.url, admin
    finally:
        running.stop()
