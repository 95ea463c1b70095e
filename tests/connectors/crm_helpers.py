"""What the CRM test modules share: the seeded world, orgs serving it (one to read, a
fresh one to write), and requests as Salesforce wants them sent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from connectors.models import Account, SystemName
from connectors.sandbox.crm import create_app
from connectors.sandbox.seed import generate
from tests.connectors.conftest import running_sandbox

SEEDED = generate(customers=8, seed=3, as_of=date(2026, 11, 1)).slice(SystemName.CRM)
ACCOUNTS = [r for r in SEEDED if isinstance(r, Account)]
API = "/services/data/v61.0"
SESSION = {"Authorization": "Bearer sandbox-secret"}
NOT_FOUND = [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]


@pytest.fixture(scope="module")
def org() -> Iterator[tuple[str, httpx.Client]]:
    """An org the tests of a module only read."""
    with running_sandbox(create_app, SEEDED) as running:
        yield running


@pytest.fixture
async def wire(org: tuple[str, httpx.Client]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=org[0], headers=SESSION, timeout=10) as client:
        yield client


@pytest.fixture
async def fresh() -> AsyncIterator[httpx.AsyncClient]:
    """An org of its own, for a test that writes."""
    with running_sandbox(create_app, SEEDED) as (url, _):
        async with httpx.AsyncClient(base_url=url, headers=SESSION, timeout=10) as client:
            yield client


async def names(wire: httpx.AsyncClient, where: str, order: str = "Name") -> list[str]:
    """The names of the accounts SOQL selects ``where``, in ``order``."""
    soql = f"SELECT Name FROM Account WHERE {where} ORDER BY {order}"
    answer = await wire.get(f"{API}/query", params={"q": soql})
    assert answer.status_code == 200, answer.json()
    return [r["Name"] for r in answer.json()["records"]]


def sub(reference: str, method: str, path: str, body: Any = None) -> dict[str, Any]:
    """A composite subrequest for ``path`` under the API."""
    request = {"method": method, "url": API + path, "referenceId": reference}
    return request if body is None else {**request, "body": body}
