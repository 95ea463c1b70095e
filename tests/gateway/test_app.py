from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from connectors.models import SystemName
from gateway.app import create_app
from gateway.data.crosswalk import Crosswalk
from gateway.errors import ConfigurationError
from gateway.settings import load_settings
from gateway.storage.database import create_engine, sessions
from gateway.storage.migrate import head_revision
from tests.gateways import AUTH
from tests.identity import identity


async def _seed(url: str) -> None:
    engine = create_engine(url)
    try:
        walk = Crosswalk(sessions(engine))
        await walk.link("cust_0001", "Acme", {SystemName.BILLING: "cus_A", SystemName.ERP: "1001"})
    finally:
        await engine.dispose()


@pytest.fixture
def client(migrated_url: str) -> Iterator[TestClient]:
    asyncio.run(_seed(migrated_url))
    settings = load_settings(database_url=migrated_url, auth=identity().settings())
    with TestClient(create_app(settings), headers=AUTH) as client:
        yield client


CUSTOMER = '{ customer(id: "cust_0001") { id name externalIds { system id } } }'


def test_a_customer_is_answered_over_post_and_get(client: TestClient) -> None:
    expected = {
        "data": {
            "customer": {
                "id": "cust_0001",
                "name": "Acme",
                "externalIds": [
                    {"system": "BILLING", "id": "cus_A"},
                    {"system": "ERP", "id": "1001"},
                ],
            }
        }
    }
    assert client.post("/graphql", json={"query": CUSTOMER}).json() == expected
    preflighted = {"apollo-require-preflight": "true"}  # a GET needs it (gateway.http.csrf)
    got = client.get("/graphql", params={"query": CUSTOMER}, headers=preflighted)
    assert got.json() == expected


def test_lookup_by_external_id(client: TestClient) -> None:
    query = '{ customerByExternalId(system: ERP, externalId: "1001") { id } }'
    assert client.post("/graphql", json={"query": query}).json() == {
        "data": {"customerByExternalId": {"id": "cust_0001"}}
    }


def test_an_unknown_customer_is_a_typed_error(client: TestClient) -> None:
    body = client.post("/graphql", json={"query": '{ customer(id: "nope") { id } }'}).json()
    assert body == {
        "data": None,
        "errors": [
            {
                "message": "no customer with id 'nope'",
                "locations": [{"line": 1, "column": 3}],
                "path": ["customer"],
                "extensions": {"code": "NOT_FOUND"},
            }
        ],
    }


def test_invalid_documents_carry_a_graphql_code(client: TestClient) -> None:
    bad_field = client.post("/graphql", json={"query": "{ nope }"}).json()
    assert bad_field["errors"][0]["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}
    unparsable = client.post("/graphql", json={"query": "{ customer("}).json()
    assert unparsable["errors"][0]["extensions"] == {"code": "GRAPHQL_PARSE_FAILED"}


def test_no_connectors_configured_means_no_systems(client: TestClient) -> None:
    assert client.post("/graphql", json={"query": "{ systems { name } }"}).json() == {
        "data": {"systems": []}
    }


def test_healthz_and_readyz_on_a_migrated_database(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": "ok", "redis": "not configured (in-process)"},
    }


def test_readyz_checks_real_redis_when_configured(migrated_url: str, redis_url: str) -> None:
    with TestClient(create_app(load_settings(database_url=migrated_url, redis_url=redis_url))) as c:
        assert c.get("/readyz").json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_refuses_an_unmigrated_database_and_a_dead_redis(database_url: str) -> None:
    settings = load_settings(database_url=database_url, redis_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["database"] == (
        f"migrations at None, head is {head_revision()}: run `opsgraph migrate`"
    )
    assert checks["redis"] == "unreachable: ConnectionError"


def test_a_bad_credit_policy_stops_the_gateway_before_it_serves(tmp_path: Path) -> None:
    policy = tmp_path / "credit_policy.toml"
    policy.write_text("[USD.default]\nauto_approve_below = 25\n")
    with pytest.raises(ConfigurationError) as refused:
        create_app(load_settings(credit_policy_file=policy))
    assert str(policy) in refused.value.message


def test_a_started_gateway_freezes_its_start_up_and_collects_less_often(empty_db: str) -> None:
    """gateway.collector: while the app serves, what start-up made is frozen and the first
    generation's threshold is the setting's; once it stops, CPython's defaults are back and
    nothing stays frozen. ``gc_threshold=0`` touches nothing."""
    settings = load_settings(database_url=empty_db, auth=identity().settings())
    with TestClient(create_app(settings)):
        assert gc.get_threshold() == (10_000, 20, 20)
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0
    untouched = load_settings(database_url=empty_db, auth=identity().settings(), gc_threshold=0)
    with TestClient(create_app(untouched)):
        assert gc.get_threshold() == (700, 10, 10)
        assert gc.get_freeze_count() == 0
