from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.demo import link_customers
from gateway.storage.migrate import upgrade
from tests.world import Sandboxes, sandboxes


@pytest.fixture(scope="session")
def boxes() -> Iterator[Sandboxes]:
    with sandboxes() as running:
        yield running


@pytest.fixture(scope="session")
def linked_db(boxes: Sandboxes, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite gateway database whose crosswalk links the seeded customers."""
    path: Path = tmp_path_factory.mktemp("gw") / "opsgraph.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    asyncio.run(link_customers(url, boxes.world))
    return url


Gateway = Callable[..., TestClient]


@pytest.fixture
def gateway(boxes: Sandboxes, linked_db: str) -> Iterator[Gateway]:
    """Builds a gateway over the seeded sandboxes; settings overrides as keyword arguments
    (``connector={...}`` applies to every connector)."""
    clients: list[TestClient] = []

    def build(**overrides: Any) -> TestClient:
        overrides.setdefault("connector", {"timeout_s": 2})
        client = TestClient(create_app(boxes.settings(linked_db, **overrides)))
        clients.append(client.__enter__())
        return client

    boxes.reset()
    yield build
    for client in clients:
        client.__exit__(None, None, None)
    boxes.reset()


def graphql(client: TestClient, query: str, **variables: Any) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
