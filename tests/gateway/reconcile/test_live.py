"""Reconciliation live, through the reference graphql-ws client against a served gateway:
a run's progress to its end, and each new exception as it is found."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from connectors.models import SystemName
from connectors.sandbox.fleet import set_faults
from connectors.sandbox.serve import Running, serve_in_thread
from gateway.app import create_app
from gateway.auth.scopes import Role
from gateway.reconcile.engine import RECONCILIATION_EXCEPTIONS
from tests.gateway.events.subscribers import Subscriber
from tests.identity import identity
from tests.world import Sandboxes, migrated_database, sandboxes, until

FINANCE = identity().token(Role.FINANCE_APPROVER, expires_in=3600)
RUN = """mutation($key: String!) {
  runReconciliation(scope: {periodFrom: "2026-09", periodTo: "2026-11"}, idempotencyKey: $key) {
    reconciliationRun { id } } }"""
RUN_UPDATED = """subscription($id: ID!) {
  reconciliationRunUpdated(id: $id) { id status phase stats } }"""
RAISED = """subscription($severity: ExceptionSeverity!) {
  reconciliationExceptionRaised(severity: $severity) { kind severity invoiceId status } }"""


@pytest.fixture
def boxes() -> Iterator[Sandboxes]:
    """Sandboxes of the test's own: it slows billing down."""
    with sandboxes() as running:
        yield running


@pytest.fixture
def gateway(boxes: Sandboxes, tmp_path: Path) -> Iterator[tuple[str, Starlette]]:
    app = create_app(boxes.settings(migrated_database(tmp_path / "gw.db", boxes.world)))
    running: Running = serve_in_thread(app, lifespan="on")
    try:
        yield running.url, app
    finally:
        running.stop()


def start_run(url: str, key: str) -> str:
    answer = httpx.post(
        f"{url}/graphql",
        json={"query": RUN, "variables": {"key": key}},
        headers={"Authorization": f"Bearer {FINANCE}"},
        timeout=10,
    ).json()
    run_id: str = answer["data"]["runReconciliation"]["reconciliationRun"]["id"]
    return run_id


def test_a_run_is_followed_to_its_end_and_its_new_exceptions_are_told(
    boxes: Sandboxes, gateway: tuple[str, Starlette]
) -> None:
    url, app = gateway
    broadcast = app.state.services.broadcast
    # Billing answers slowly: the run reads for a while, and says so as it goes.
    set_faults(boxes.admin[SystemName.BILLING], latency_ms=2000)
    raised = Subscriber(url, FINANCE, RAISED, {"severity": "MEDIUM"}, 50)
    assert until(lambda: broadcast.subscribers(RECONCILIATION_EXCEPTIONS) == 1)
    run_id = start_run(url, "live-1")
    progress = Subscriber(url, FINANCE, RUN_UPDATED, {"id": run_id}, 50)

    lines = progress.lines(timeout_s=60)
    assert lines[0] == {"connected": True}
    assert lines[-1] == {"complete": True}  # the server ends it with the run
    updates = [line["next"]["data"]["reconciliationRunUpdated"] for line in lines[1:-1]]
    assert {u["id"] for u in updates} == {run_id}
    assert [u["status"] for u in updates] == ["RUNNING"] * (len(updates) - 1) + ["COMPLETED"]
    phases = [u["phase"] for u in updates]
    order = ["READING", "COMPARING", "RESOLVING", "DONE"]
    assert phases == sorted(phases, key=order.index) and phases[-1] == "DONE"
    assert "READING" in phases  # it was seen at work, not only at its end
    assert updates[-1]["stats"]["new"] == 5

    raised.stop()
    told = [
        line["next"]["data"]["reconciliationExceptionRaised"]
        for line in raised.seen()
        if "next" in line
    ]
    # Exactly the run's new exceptions at least MEDIUM, each once, as the book has them.
    book = httpx.post(
        f"{url}/graphql",
        json={"query": "{ reconciliationExceptions(filter: {severity: MEDIUM}) "
              "{ edges { node { kind severity invoiceId status } } } }"},
        headers={"Authorization": f"Bearer {FINANCE}"},
    ).json()["data"]["reconciliationExceptions"]["edges"]  # fmt: skip
    expected = sorted((e["node"] for e in book), key=lambda n: n["invoiceId"])
    assert sorted(told, key=lambda n: n["invoiceId"]) == expected
    assert {"MISSING_IN_TARGET", "DUPLICATE_IN_TARGET"} <= {t["kind"] for t in told}


def test_a_run_that_ended_is_told_once_as_it_ended(gateway: tuple[str, Starlette]) -> None:
    url, app = gateway
    run_id = start_run(url, "live-2")
    reconciler = app.state.services.reconciler
    assert until(lambda: run_id not in reconciler._tasks)
    lines = Subscriber(url, FINANCE, RUN_UPDATED, {"id": run_id}, 5).lines()
    assert lines[0] == {"connected": True} and lines[-1] == {"complete": True}
    assert len(lines) == 3
    assert lines[1]["next"]["data"]["reconciliationRunUpdated"]["status"] == "COMPLETED"
