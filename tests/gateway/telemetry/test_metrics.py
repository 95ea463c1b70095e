"""``/metrics`` as Prometheus scrapes it, parsed by prometheus_client's own parser: each
measure moves by exactly what the requests, calls, deliveries, writes and runs made here
should move it by (deltas, since the gateway did some work of its own as it started)."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from connectors.models import Case, ObjectKind, SystemName
from connectors.resilience import Policy
from connectors.sandbox.billing.writes import signed
from gateway.auth.scopes import Role
from gateway.data.services import Services
from gateway.persisted import manifest
from tests.gateway.conftest import Bare
from tests.gateway.events.vendor_events import invoice_paid
from tests.gateway.telemetry.prometheus import scrape, scrape_text, value
from tests.gateways import Gateway, graphql
from tests.gateways import answered as ask
from tests.identity import identity
from tests.world import SECRET, Sandboxes, migrated_database, sandboxes, until

ERP = SystemName.ERP
WHSEC = "whsec_sandbox"  # the sandboxes' webhook secret
LEAD = identity().headers(Role.SUPPORT_LEAD, subject="lead-9")
FINANCE = identity().headers(Role.FINANCE_APPROVER, subject="finance-9", expires_in=3600)
REQUESTS = "opsgraph_graphql_requests_total"
ERRORS = "opsgraph_graphql_errors_total"
DUPLICATES = "opsgraph_duplicates_blocked_total"


@pytest.fixture(scope="module")
def boxes() -> Iterator[Sandboxes]:
    """Sandboxes of this module's own: it posts credits and runs reconciliations."""
    with sandboxes() as running:
        yield running


@pytest.fixture(scope="module")
def linked_db(boxes: Sandboxes, tmp_path_factory: pytest.TempPathFactory) -> str:
    return migrated_database(tmp_path_factory.mktemp("metrics") / "gateway.db", boxes.world)


def services_of(client: TestClient) -> Services:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    return services


# -- the GraphQL stage ---------------------------------------------------------------------


def test_each_operation_is_counted_under_its_registered_name_else_a_bounded_one(
    bare: Bare, tmp_path: Path
) -> None:
    operations = tmp_path / "operations"
    operations.mkdir()
    (operations / "typename.graphql").write_text("query Typename { __typename }\n")
    registered = tmp_path / "manifest.json"
    (typename,) = manifest.write(registered, operations)
    client = bare(persisted_queries={"manifest": str(registered)})
    before = scrape(client)

    for _ in range(3):
        assert client.post("/graphql", json={"query": typename.body}).status_code == 200
    # The registered name on other text, and no name at all: neither mints a series.
    client.post("/graphql", json={"query": "query Typename { t: __typename }"})
    client.post("/graphql", json={"query": "{ __typename }"})

    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(REQUESTS, operation="Typename", type="query") == 3
    assert delta(REQUESTS, operation="other", type="query") == 1
    assert delta(REQUESTS, operation="anonymous", type="query") == 1
    duration = "opsgraph_graphql_request_duration_seconds"
    assert delta(f"{duration}_count", operation="Typename", type="query") == 3
    assert delta(f"{duration}_bucket", operation="Typename", type="query", le="+Inf") == 3


def test_an_error_is_counted_under_its_code(bare: Bare) -> None:
    client = bare()
    before = scrape(client)

    invalid = client.post("/graphql", json={"query": "{ nope }"})
    assert invalid.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    not_json = client.post("/graphql", content=b"{", headers={"content-type": "application/json"})
    assert not_json.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"

    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(ERRORS, operation="anonymous", code="GRAPHQL_VALIDATION_FAILED") == 1
    assert delta(REQUESTS, operation="anonymous", type="query") == 1
    # Refused before it was read: no operation, no type.
    assert delta(ERRORS, operation="other", code="BAD_REQUEST") == 1
    assert delta(REQUESTS, operation="other", type="none") == 1


def test_metrics_can_be_turned_off(bare: Bare) -> None:
    client = bare(metrics={"enabled": False})
    assert client.get("/metrics").status_code == 404


# -- calls to the systems of record --------------------------------------------------------


def test_a_failing_system_counts_its_errors_and_retries_and_its_breaker_opens(
    boxes: Sandboxes, gateway: Gateway
) -> None:
    client = gateway()
    erp = services_of(client).registry.get(ERP)
    erp.policy = Policy(attempts=2, backoff_initial_s=0.01, breaker_threshold=2, timeout_s=2)
    before = scrape(client)
    assert value(before, "opsgraph_connector_breaker_state", system="erp") == 0

    boxes.faults(ERP, error_rate=1.0, error_status=503)
    for expected in ("UPSTREAM_UNAVAILABLE", "CIRCUIT_OPEN"):
        with pytest.raises(Exception) as failed:
            client.portal.call(erp.fetch_many, ObjectKind.CUSTOMER, ["1"])  # type: ignore[union-attr]
        assert getattr(failed.value, "code", None) == expected
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # Two attempts failed (the second opened the breaker); the next call was refused.
    errors = "opsgraph_connector_errors_total"
    assert delta(errors, system="erp", code="UPSTREAM_UNAVAILABLE") == 2
    assert delta(errors, system="erp", code="CIRCUIT_OPEN") == 1
    assert delta("opsgraph_connector_retries_total", system="erp") == 1
    assert delta("opsgraph_connector_call_duration_seconds_count", system="erp") == 2
    assert value(after, "opsgraph_connector_breaker_state", system="erp") == 2
    assert value(after, "opsgraph_connector_breaker_state", system="billing") == 0


# -- events in -----------------------------------------------------------------------------


def test_a_delivery_is_counted_processed_and_its_duplicate_blocked(gateway: Gateway) -> None:
    client = gateway(connector={"timeout_s": 2, "webhook_secret": WHSEC})
    before = scrape(client)

    def delta(samples: dict[Any, float], name: str, **labels: str) -> float:
        return value(samples, name, **labels) - value(before, name, **labels)

    body = json.dumps(invoice_paid(f"evt_metrics_{uuid.uuid4().hex[:12]}")).encode()
    first = client.post("/webhooks/billing", content=body, headers=signed(WHSEC, body))
    assert first.json()["duplicate"] is False
    processed = "opsgraph_events_processed_total"
    assert until(
        lambda: (
            delta(scrape(client), processed, source="billing", type="billing.invoice.paid") == 1
        ),
        within_s=10,
    )
    again = client.post("/webhooks/billing", content=body, headers=signed(WHSEC, body))
    assert again.json()["duplicate"] is True
    forged = client.post("/webhooks/billing", content=body, headers=signed("whsec_x", body))
    assert forged.status_code == 400

    after = scrape(client)
    received = "opsgraph_events_received_total"
    assert delta(after, received, source="billing", outcome="stored") == 1
    assert delta(after, received, source="billing", outcome="duplicate") == 1
    assert delta(after, received, source="billing", outcome="rejected") == 1
    assert delta(after, DUPLICATES, via="event_inbox", operation="event/billing") == 1
    assert delta(after, "opsgraph_event_processing_seconds_count", source="billing") == 1
    assert delta(after, processed, source="billing", type="billing.invoice.paid") == 1


# -- writes, credits and workflows ---------------------------------------------------------

REQUEST = """mutation($input: RequestCreditInput!, $key: String!) {
  requestCredit(input: $input, idempotencyKey: $key) {
    credit { id status } userErrors { code }
  }
}"""
APPROVE = """mutation($id: ID!, $key: String!) {
  approveCredit(id: $id, idempotencyKey: $key) {
    credit { status } workflowRun { status } userErrors { code }
  }
}"""


def test_an_approved_credit_observes_its_delay_and_its_replay_is_blocked(
    boxes: Sandboxes, gateway: Gateway
) -> None:
    client = gateway()
    customer, case = next(
        (c.id, x)
        for c in boxes.world.customers
        for x in boxes.world.slice(SystemName.SUPPORT)
        if isinstance(x, Case)
        and x.sla_breached
        and x.organization_id == c.external_ids.get(SystemName.SUPPORT)
    )
    before = scrape(client)
    given = {
        "customerId": customer,
        "caseId": case.id,
        "amount": {"amount": "120.00", "currency": "EUR"},  # above what policy approves
        "reason": "SLA breached on a P1",
    }
    requested = ask(client, REQUEST, LEAD, input=given, key="metrics-cr-1")["requestCredit"]
    assert requested["credit"]["status"] == "REQUESTED"
    credit_id = requested["credit"]["id"]
    approved = ask(client, APPROVE, FINANCE, id=credit_id, key="metrics-ap-1")["approveCredit"]
    assert approved["workflowRun"]["status"] == "SUCCEEDED"
    replayed = ask(client, APPROVE, FINANCE, id=credit_id, key="metrics-ap-1")["approveCredit"]
    assert replayed == approved

    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("opsgraph_credit_approval_delay_seconds_count") == 1
    assert delta(DUPLICATES, via="idempotency_key", operation="approveCredit") == 1
    finished = "opsgraph_workflow_runs_finished_total"
    assert delta(finished, workflow="service_credit", status="succeeded") == 1
    writes = "opsgraph_owner_writes_total"
    assert delta(writes, system="erp", kind="posting", outcome="done") == 1
    assert delta(writes, system="billing", kind="invoice", outcome="done") == 1


# -- reconciliation ------------------------------------------------------------------------

RUN = """mutation($key: String!, $scope: ReconciliationScopeInput!) {
  runReconciliation(scope: $scope, idempotencyKey: $key) {
    reconciliationRun { id } userErrors { code }
  }
}"""
STATUS = "query($id: ID!) { reconciliationRun(id: $id) { status } }"


def test_the_open_exceptions_gauge_is_what_the_database_holds_after_a_run(
    gateway: Gateway, linked_db: str
) -> None:
    client = gateway()
    scope = {"periodFrom": "2026-09", "periodTo": "2026-11"}
    started = ask(client, RUN, FINANCE, key=f"metrics-{uuid.uuid4().hex[:8]}", scope=scope)
    run_id = started["runReconciliation"]["reconciliationRun"]["id"]
    assert until(
        lambda: ask(client, STATUS, FINANCE, id=run_id)["reconciliationRun"]["status"] != "RUNNING",
        within_s=30,
    )
    path = linked_db.removeprefix("sqlite+aiosqlite:///")
    with closing(sqlite3.connect(path)) as db:
        held = db.execute(
            "SELECT kind, severity, count(*) FROM reconciliation_exceptions"
            " WHERE status = 'open' GROUP BY kind, severity"
        ).fetchall()
    assert held  # the seed plants discrepancies

    after = scrape(client)
    exported = {
        (dict(labels)["kind"], dict(labels)["severity"]): int(n)
        for (name, labels), n in after.items()
        if name == "opsgraph_reconciliation_exceptions_open" and n
    }
    assert exported == {(kind, severity): n for kind, severity, n in held}


# -- what it shows -------------------------------------------------------------------------


def test_metrics_may_require_a_token_and_never_show_a_secret(gateway: Gateway) -> None:
    token = f"metrics-{uuid.uuid4().hex}"
    client = gateway(connector={"timeout_s": 2, "webhook_secret": WHSEC}, metrics={"token": token})
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401

    graphql(client, "{ systems { name breaker } }")
    shown = scrape_text(client, Authorization=f"Bearer {token}")
    bearer = str(client.headers["authorization"]).removeprefix("Bearer ")
    for secret in (token, SECRET, WHSEC, bearer, FINANCE["Authorization"].split()[-1]):
        assert secret not in shown
    assert "opsgraph_graphql_requests_total" in shown
