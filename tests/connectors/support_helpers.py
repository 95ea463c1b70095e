"""What the support test modules share: the seeded world, an agent's API-token credentials,
and the fixtures of a seeded sandbox (a module takes them with
``sandbox, fresh = support_helpers.sandbox, support_helpers.fresh``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import httpx
import pytest

from connectors.models import Record, SystemName
from connectors.sandbox.seed import generate
from connectors.sandbox.support import create_app
from tests.connectors.conftest import running_sandbox

SEEDED: list[Record] = generate(customers=8, seed=3, as_of=date(2026, 11, 1)).slice(
    SystemName.SUPPORT
)
AUTH = ("agent@example.com/token", "sandbox-secret")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[str, httpx.Client]]:
    with running_sandbox(create_app, SEEDED) as running:
        yield running


@pytest.fixture
def fresh() -> Iterator[tuple[str, httpx.Client]]:
    """A sandbox of its own, for tests that write."""
    with running_sandbox(create_app, SEEDED) as running:
        yield running
