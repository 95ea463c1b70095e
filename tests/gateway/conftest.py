"""A gateway with no systems of record on an empty, migrated SQLite database, trusting the
test identity provider: for the tests of the HTTP and GraphQL stages that need no data."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.settings import load_settings
from gateway.storage.migrate import upgrade
from tests.gateways import AUTH
from tests.identity import identity

Bare = Callable[..., TestClient]


@pytest.fixture(scope="module")
def empty_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('gw') / 'opsgraph.db'}"
    upgrade(url)
    return url


@pytest.fixture
def bare(empty_db: str) -> Iterator[Bare]:
    """Builds such a gateway (settings overrides as keyword arguments; the production
    profile unless they say otherwise); its client asks as a viewer."""
    clients: list[TestClient] = []

    def build(**overrides: Any) -> TestClient:
        overrides.setdefault("auth", identity().settings())
        settings = load_settings(database_url=empty_db, **overrides)
        clients.append(TestClient(create_app(settings), headers=AUTH).__enter__())
        return clients[-1]

    yield build
    for client in clients:
        client.__exit__(None, None, None)
