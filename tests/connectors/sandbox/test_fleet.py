"""The fleet: the four sandboxes by system, started in threads or in a process of their own,
seeded with one world and driven through their admin routes."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import httpx
from starlette.testclient import TestClient

from connectors.models import SystemName
from connectors.sandbox import fleet
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.seed import generate

WORLD = generate(customers=3, seed=5, as_of=date(2026, 11, 1))
SYSTEMS = [SystemName.BILLING, SystemName.ERP, SystemName.CRM, SystemName.SUPPORT]
BEARER = {"Authorization": "Bearer sandbox-secret"}


def test_ports_follow_billing_erp_crm_support() -> None:
    assert fleet.ports(8101) == dict(zip(SYSTEMS, (8101, 8102, 8103, 8104), strict=True))


def test_configs_on_disk_start_from_fresh_files(tmp_path: Path) -> None:
    (tmp_path / "sandbox-erp.db").write_bytes(b"an old demo's ledger")
    configs = fleet.configs(tmp_path, secret="s", webhook_secret="w")
    assert list(configs) == SYSTEMS
    assert configs[SystemName.ERP] == SandboxConfig(
        db_path=str(tmp_path / "sandbox-erp.db"), secret="s", webhook_secret="w"
    )
    assert not (tmp_path / "sandbox-erp.db").exists()
    assert {c.db_path for c in fleet.configs().values()} == {":memory:"}


def test_apps_are_seeded_in_process() -> None:
    apps = fleet.apps(fleet.configs())
    fleet.seed_apps(apps, WORLD)
    customer = WORLD.customers[0].external_ids[SystemName.ERP]
    with TestClient(apps[SystemName.ERP]) as client:
        answer = client.get(f"/services/rest/record/v1/customer/{customer}", headers=BEARER)
    assert answer.json()["companyName"] == WORLD.customers[0].name


def test_a_fleet_in_threads_is_seeded_and_driven() -> None:
    with fleet.in_threads() as running:
        running.seed(WORLD)
        assert list(running.urls) == SYSTEMS
        assert running.totals() == dict.fromkeys(SYSTEMS, 0)
        running.faults(SystemName.CRM, error_next=1, error_status=503)
        limits = f"{running.urls[SystemName.CRM]}/services/data/v61.0/limits"
        assert httpx.get(limits, headers=BEARER).status_code == 503
        assert httpx.get(limits, headers=BEARER).status_code == 200
        assert running.requests()[SystemName.CRM] == {"GET /services/data/v61.0/limits": 2}
        running.reset()
        assert running.totals() == dict.fromkeys(SYSTEMS, 0)


def test_a_fleet_in_its_own_process_answers_on_its_urls() -> None:
    with fleet.in_process() as running:
        running.seed(WORLD)
        assert list(running.urls) == SYSTEMS
        org = WORLD.customers[0].external_ids[SystemName.SUPPORT]
        url = f"{running.urls[SystemName.SUPPORT]}/api/v2/organizations/show_many?ids={org}"
        answer = httpx.get(url, auth=("me@x.example/token", "sandbox-secret"))
        assert [o["name"] for o in answer.json()["organizations"]] == [WORLD.customers[0].name]
        assert running.totals() == {**dict.fromkeys(SYSTEMS, 0), SystemName.SUPPORT: 1}
