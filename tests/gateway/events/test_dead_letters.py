"""Dead letters and replay, as an operator meets them: a signed usage webhook whose ERP
posting the ERP refuses leaves a dead letter (``deadLetters``) with the last error;
``replayEvents`` runs it again once the ERP takes it, and a second replay, or ``opsgraph
replay``, repeats nothing that reached its owner."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from connectors.models import SystemName
from connectors.sandbox.billing.writes import signed
from gateway.auth.scopes import Role
from tests.gateway.events.vendor_events import usage_alert
from tests.identity import identity
from tests.world import (
    Sandboxes,
    migrated_database,
    opsgraph,
    sandbox_variables,
    sandboxes,
    until,
)

ERP = SystemName.ERP
WHSEC = "whsec_dead_letters"
ADMIN = identity().headers(Role.INTEGRATION_ADMIN, subject="admin-9")
VIEWER = identity().headers(Role.VIEWER, subject="viewer-9")
USAGE = "billing.billing.alert.triggered"

DEAD_LETTERS = """{
  deadLetters(first: 10) {
    totalCount
    edges { node { id workflow status errorCode subjectId steps { name status attempts } } }
  }
}"""
REPLAY = """mutation($from: DateTime!, $to: DateTime!, $type: String, $key: String!) {
  replayEvents(from: $from, to: $to, type: $type, idempotencyKey: $key) {
    events started retried unchanged userErrors { code message field }
  }
}"""
RUN = """query($id: ID!) {
  workflowRun(id: $id) { status steps { name status attempts output } }
}"""


@pytest.fixture(scope="module")
def boxes() -> Iterator[Sandboxes]:
    """Sandboxes of this module's own: it posts invoices and opens tickets (the ``gateway``
    fixture builds its gateways over these)."""
    with sandboxes() as running:
        yield running


@pytest.fixture(scope="module")
def linked_db(boxes: Sandboxes, tmp_path_factory: pytest.TempPathFactory) -> str:
    return migrated_database(tmp_path_factory.mktemp("dead-letters") / "gateway.db", boxes.world)


def ask(client: TestClient, query: str, headers: dict[str, str], **variables: Any) -> Any:
    answer = client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    return answer.json()


def dead_letters(client: TestClient) -> list[dict[str, Any]]:
    body = ask(client, DEAD_LETTERS, ADMIN)
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"]["deadLetters"]["edges"]]


def test_a_refused_step_is_a_dead_letter_that_a_replay_finishes_once(
    boxes: Sandboxes, linked_db: str, gateway: Callable[..., TestClient]
) -> None:
    # Replayed runs are run by the engine's background loop: every 0.2 s here.
    client = gateway(connector={"timeout_s": 2, "webhook_secret": WHSEC}, workflow_interval_s=0.2)
    since = datetime.now(UTC) - timedelta(seconds=1)
    customer = next(c for c in boxes.world.customers if c.currency == "USD")
    boxes.faults(ERP, error_next=50, error_status=400)
    event = usage_alert(customer, value=1_250)
    body = json.dumps(event).encode()
    delivered = client.post("/webhooks/billing", content=body, headers=signed(WHSEC, body))
    assert delivered.status_code == 200, delivered.text

    assert until(lambda: len(dead_letters(client)) == 1, within_s=15)
    (letter,) = dead_letters(client)
    assert (letter["workflow"], letter["status"], letter["errorCode"]) == (
        "route:usage_over_threshold",
        "FAILED",
        "UPSTREAM_REJECTED",
    )
    assert letter["subjectId"] == f"billing:{event['id']}"
    assert [(s["name"], s["status"], s["attempts"]) for s in letter["steps"]] == [
        ("enrich_usage", "SUCCEEDED", 1),
        ("erp_post_usage", "FAILED", 1),
        ("crm_usage_health", "PENDING", 0),
        ("support_entitlement_changed", "PENDING", 0),
    ]
    assert ask(client, DEAD_LETTERS, VIEWER)["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    boxes.faults(ERP, error_next=0)
    later = datetime.now(UTC) + timedelta(minutes=1)
    window = {"from": since.isoformat(), "to": later.isoformat()}
    first = ask(client, REPLAY, ADMIN, type=USAGE, key="replay-1", **window)["data"]["replayEvents"]
    assert first == {"events": 1, "started": 0, "retried": 1, "unchanged": 0, "userErrors": []}
    assert dead_letters(client) == []
    finished = lambda: ask(client, RUN, ADMIN, id=letter["id"])["data"]["workflowRun"]  # noqa: E731
    assert until(lambda: finished()["status"] == "SUCCEEDED", within_s=15)
    run = finished()
    assert [s["attempts"] for s in run["steps"]] == [1, 1, 1, 1]
    posted = run["steps"][1]["output"]

    again = ask(client, REPLAY, ADMIN, type=USAGE, key="replay-2", **window)["data"]["replayEvents"]
    assert again == {"events": 1, "started": 0, "retried": 0, "unchanged": 1, "userErrors": []}
    rerun = ask(client, RUN, ADMIN, id=letter["id"])["data"]["workflowRun"]
    assert rerun["steps"][1]["output"] == posted

    # The same from the command line, against the same database.
    done = opsgraph(
        "replay",
        "--from",
        since.strftime("%Y-%m-%dT%H:%M:%S"),
        "--to",
        later.strftime("%Y-%m-%dT%H:%M:%S"),
        "--type",
        USAGE,
        OPSGRAPH_DATABASE_URL=linked_db,
        **sandbox_variables(boxes),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1 events: 0 runs started, 0 retried, 1 left as they were\n"


def test_a_replay_range_must_run_forward(gateway: Callable[..., TestClient]) -> None:
    client = gateway()
    now = datetime.now(UTC).isoformat()
    answer = ask(client, REPLAY, ADMIN, key="replay-backwards", **{"from": now, "to": now})
    assert answer["data"]["replayEvents"]["userErrors"] == [
        {"code": "BAD_USER_INPUT", "message": "a replay's to must be after its from", "field": None}
    ]
