"""The four seeded sandboxes and gateways over them, as fixtures (registered in
``tests/conftest.py``) for every test that needs the whole picture: in process through
``TestClient`` (``gateway``) or over real HTTP (``served``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from connectors.sandbox.serve import Running, serve_in_thread
from gateway.app import create_app
from gateway.auth.scopes import Role
from gateway.demo import link_customers
from gateway.storage.migrate import upgrade
from tests.identity import identity
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
# What the fixtures' gateways are asked with unless a test says otherwise: a viewer.
AUTH = identity().headers(Role.VIEWER, expires_in=86400)


@pytest.fixture
def gateway(boxes: Sandboxes, linked_db: str) -> Iterator[Gateway]:
    """Builds a gateway over the seeded sandboxes; settings overrides as keyword arguments
    (``connector={...}`` applies to every connector)."""
    clients: list[TestClient] = []

    def build(**overrides: Any) -> TestClient:
        overrides.setdefault("connector", {"timeout_s": 2})
        client = TestClient(create_app(boxes.settings(linked_db, **overrides)), headers=AUTH)
        clients.append(client.__enter__())
        # The health prober's first round goes out at start-up; `systems` answers once it
        # is in. Upstream calls are counted from here on.
        client.post("/graphql", json={"query": "{ systems { name } }"}).raise_for_status()
        boxes.reset_stats()
        return client

    boxes.reset()
    yield build
    for client in clients:
        client.__exit__(None, None, None)
    boxes.reset()


Served = Callable[..., str]


@pytest.fixture
def served(boxes: Sandboxes, linked_db: str) -> Iterator[Served]:
    """Like ``gateway``, but served over real HTTP on a loopback port (for clients that
    time out, disconnect or come in concurrently); returns its base URL."""
    running: list[Running] = []

    def build(**overrides: Any) -> str:
        overrides.setdefault("connector", {"timeout_s": 2})
        app = create_app(boxes.settings(linked_db, **overrides))
        running.append(serve_in_thread(app, lifespan="on"))
        url = running[-1].url
        query = {"query": "{ systems { name } }"}
        httpx.post(f"{url}/graphql", json=query, headers=AUTH).raise_for_status()
        boxes.reset_stats()
        return url

    boxes.reset()
    yield build
    boxes.reset()  # lets hung sandbox requests go before the servers stop
    for server in running:
        server.stop()


def graphql(client: TestClient, query: str, **variables: Any) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def answered(
    client: TestClient, query: str, headers: dict[str, str] | None = None, **variables: Any
) -> Any:
    """The ``data`` of an answer that must have no errors (asked with ``headers``, else the
    client's own)."""
    body = {"query": query, "variables": variables}
    response = client.post("/graphql", json=body, headers=headers)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert "errors" not in answer, answer
    return answer["data"]


def nodes(connection: dict[str, Any]) -> list[Any]:
    """The nodes of a Relay connection in an answer."""
    return [edge["node"] for edge in connection["edges"]]
