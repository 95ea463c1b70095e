"""The ``/_sandbox`` admin routes every sandbox shares: faults, counters and seeding, never
counted or faulted themselves, and a JSON 404 for anything else under ``/_sandbox/``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from starlette.testclient import TestClient

from connectors import codec
from connectors.models import SystemName
from connectors.sandbox import erp
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.faults import Faults
from connectors.sandbox.seed import generate

RECORDS = generate(customers=2, seed=3, as_of=date(2026, 11, 1)).slice(SystemName.ERP)
AUTH = {"Authorization": "Bearer sandbox-secret"}
RECORD = "/services/rest/record/v1/customer/1001"


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(erp.create_app(SandboxConfig())) as client:
        seeded = client.post(
            "/_sandbox/seed", json={"records": [codec.to_json(r) for r in RECORDS]}
        )
        assert seeded.json() == {"seeded": len(RECORDS)}
        yield client


def test_faults_are_read_and_replaced(client: TestClient) -> None:
    assert client.get("/_sandbox/faults").json() == vars(Faults())
    replaced = client.put("/_sandbox/faults", json={"latency_ms": 5, "error_next": 2})
    assert replaced.json() == vars(Faults(latency_ms=5, error_next=2))
    assert client.get("/_sandbox/faults").json() == replaced.json()


@pytest.mark.parametrize("body", [b"[1]", b'{"nope": 1}', b"{"])
def test_faults_that_are_not_faults_are_a_400(client: TestClient, body: bytes) -> None:
    refused = client.put("/_sandbox/faults", content=body)
    assert refused.status_code == 400
    assert list(refused.json()) == ["error"]
    assert client.get("/_sandbox/faults").json() == vars(Faults())


def test_requests_are_counted_per_method_and_path_until_reset(client: TestClient) -> None:
    client.get(RECORD, headers=AUTH)
    client.get(RECORD, headers=AUTH)
    client.get("/nowhere")
    assert client.get("/_sandbox/stats").json() == {
        "requests": {f"GET {RECORD}": 2, "GET /nowhere": 1},
        "total": 3,
        "in_flight": 0,
        "max_in_flight": 1,
    }
    reset = {"requests": {}, "total": 0, "in_flight": 0, "max_in_flight": 0}
    assert client.post("/_sandbox/stats/reset").json() == reset
    assert client.get("/_sandbox/stats").json() == reset


def test_admin_requests_are_neither_counted_nor_faulted(client: TestClient) -> None:
    client.put("/_sandbox/faults", json={"error_next": 3, "error_status": 503})
    assert client.get("/_sandbox/stats").json()["total"] == 0
    assert client.get(RECORD, headers=AUTH).status_code == 503
    assert client.get("/_sandbox/stats").json()["requests"] == {f"GET {RECORD}": 1}


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/_sandbox/nope"), ("DELETE", "/_sandbox/faults")]
)
def test_anything_else_under_the_admin_prefix_is_a_json_404(
    client: TestClient, method: str, path: str
) -> None:
    answer = client.request(method, path)
    assert (answer.status_code, answer.json()) == (404, {"error": "no such admin route"})


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{}", "bad seed: 'records'"),
        (b'{"records": [{"@type": "Nope"}]}', "bad seed: unknown record type 'Nope'"),
    ],
)
def test_a_seed_that_cannot_be_read_is_a_400(client: TestClient, body: bytes, reason: str) -> None:
    refused = client.post("/_sandbox/seed", content=body)
    assert (refused.status_code, refused.json()) == (400, {"error": reason})


def test_a_seed_the_system_cannot_hold_is_a_400(client: TestClient) -> None:
    world = generate(customers=1, seed=3, as_of=date(2026, 11, 1))
    crm_records = [codec.to_json(r) for r in world.slice(SystemName.CRM)]
    refused = client.post("/_sandbox/seed", json={"records": crm_records})
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "bad seed: the ERP sandbox holds only CustomerRecord and Posting records"
    }
