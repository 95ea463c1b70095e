"""Scale-out: with Redis configured, replicas share circuit-breaker state."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import date

import pytest

from connectors.errors import CircuitOpen, UpstreamUnavailable
from connectors.models import ObjectKind, SystemName
from connectors.resilience import Policy
from connectors.sandbox import erp
from connectors.sandbox.seed import generate
from gateway.data.services import Services
from gateway.ownership import OwnershipMap
from gateway.settings import load_settings
from tests.connectors.conftest import running_sandbox


@pytest.fixture(scope="module")
def netsuite() -> Iterator[tuple[str, object]]:
    world = generate(customers=3, seed=2, as_of=date(2026, 11, 1))
    with running_sandbox(erp.create_app, world.slice(SystemName.ERP)) as running:
        yield running


@pytest.fixture
async def replicas(
    netsuite: tuple[str, object], redis_url: str, sqlite_database: str
) -> AsyncIterator[list[Services]]:
    # What is shared is under test, not Redis's timeout: a loaded machine may take longer
    # than the default 250 ms to answer, and a replica would then fall back to its own state.
    settings = load_settings(
        database_url=sqlite_database,
        redis_url=redis_url,
        redis_timeout_s=5,
        erp={"base_url": netsuite[0], "secret": "sandbox-secret"},
    )
    ownership = OwnershipMap.load(settings.ownership_file)
    built = [Services.build(settings, ownership) for _ in range(2)]
    for services in built:
        await services.start()
        connector = services.registry.get(SystemName.ERP)
        connector.policy = Policy(attempts=1, breaker_threshold=2, breaker_reset_s=30)
    yield built
    for services in built:
        await services.aclose()


async def test_a_breaker_opened_on_one_replica_is_open_on_the_other(
    netsuite: tuple[str, object], replicas: list[Services]
) -> None:
    admin = netsuite[1]
    admin.put("/_sandbox/faults", json={"error_rate": 1.0, "error_status": 503})  # type: ignore[attr-defined]
    try:
        a, b = (s.registry.get(SystemName.ERP) for s in replicas)
        for _ in range(2):
            with pytest.raises(UpstreamUnavailable):
                await a.list_page(ObjectKind.POSTING)
        assert await b.breaker_state() == "open"
        with pytest.raises(CircuitOpen):
            await b.list_page(ObjectKind.POSTING)
    finally:
        admin.put("/_sandbox/faults", json={})  # type: ignore[attr-defined]


async def test_the_owner_of_a_kind_is_its_configured_connector(
    replicas: list[Services],
) -> None:
    registry = replicas[0].registry
    assert registry.owner_of(ObjectKind.POSTING) is registry.get(SystemName.ERP)
    assert registry.owner_of(ObjectKind.BALANCE).system is SystemName.ERP
    with pytest.raises(UpstreamUnavailable) as missing:
        registry.owner_of(ObjectKind.ACCOUNT)  # the CRM owns accounts; it is not configured
    assert missing.value.message == "crm is not configured"
    assert missing.value.system == "crm"
