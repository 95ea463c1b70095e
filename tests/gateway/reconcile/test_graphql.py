"""Reconciliation over GraphQL: finance starts a run, follows it, reads the ranked book,
acknowledges and resolves; a viewer reads but may not run; an entity-limited principal sees
its own entity only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from connectors.models import ObjectKind, SystemName
from gateway.app import create_app
from gateway.auth.scopes import Role
from tests.gateways import graphql, nodes
from tests.identity import identity
from tests.world import Sandboxes, migrated_database, sandboxes

FINANCE = identity().headers(Role.FINANCE_APPROVER, subject="fin-1", expires_in=3600)
VIEWER = identity().headers(Role.VIEWER, expires_in=3600)
RUN = """mutation($key: String!, $scope: ReconciliationScopeInput!) {
  runReconciliation(scope: $scope, idempotencyKey: $key) {
    reconciliationRun { id status periodFrom periodTo entities requestedBy }
    userErrors { code message }
  }
}"""
BOOK = """query($filter: ReconciliationExceptionFilter, $first: Int = 20, $after: String) {
  reconciliationExceptions(filter: $filter, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id kind severity status entity period invoiceId rank
                   impact { amount currency } customer { id } } }
  }
}"""
QUARTER = {"periodFrom": "2026-09", "periodTo": "2026-11"}


@pytest.fixture
def client(boxes: Sandboxes, tmp_path: Path) -> Iterator[TestClient]:
    """A gateway with a database of its own: the runs here write exceptions."""
    url = migrated_database(tmp_path / "opsgraph.db", boxes.world)
    with TestClient(create_app(boxes.settings(url)), headers=FINANCE) as running:
        yield running


def ran(client: TestClient, key: str, scope: dict[str, Any] = QUARTER) -> dict[str, Any]:
    body = graphql(client, RUN, key=key, scope=scope)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["runReconciliation"]
    return payload


def finished(client: TestClient, run_id: str) -> dict[str, Any]:
    query = "query($id: ID!) { reconciliationRun(id: $id) { status phase stats error durationS } }"
    for _ in range(200):
        run: dict[str, Any] = graphql(client, query, id=run_id)["data"]["reconciliationRun"]
        if run["status"] != "RUNNING":
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not end")


def test_finance_runs_a_reconciliation_and_reads_the_ranked_book(
    boxes: Sandboxes, client: TestClient
) -> None:
    started = ran(client, "run-1")
    run = started["reconciliationRun"]
    assert started["userErrors"] == []
    assert (run["status"], run["periodFrom"], run["periodTo"], run["entities"]) == (
        "RUNNING", "2026-09", "2026-11", [],
    )  # fmt: skip
    assert run["requestedBy"] == "fin-1"
    done = finished(client, run["id"])
    assert (done["status"], done["phase"], done["error"]) == ("COMPLETED", "DONE", None)
    assert done["stats"]["new"] == 5 and done["durationS"] >= 0

    # The same key again: the same run, not a second one.
    assert ran(client, "run-1")["reconciliationRun"]["id"] == run["id"]

    answer = graphql(client, BOOK, first=2)
    assert "errors" not in answer, answer
    book = answer["data"]["reconciliationExceptions"]
    assert book["totalCount"] == 5 and book["pageInfo"]["hasNextPage"] is True
    rest = graphql(client, BOOK, after=book["pageInfo"]["endCursor"])["data"][
        "reconciliationExceptions"
    ]
    ranked = nodes(book) + nodes(rest)
    assert [n["rank"] for n in ranked] == sorted((n["rank"] for n in ranked), reverse=True)
    planted = {(d.customer_id, d.invoice_id) for d in boxes.world.discrepancies if d.invoice_id}
    assert {(n["customer"]["id"], n["invoiceId"]) for n in ranked} == planted
    missing = graphql(client, BOOK, filter={"kind": "MISSING_IN_TARGET"})["data"][
        "reconciliationExceptions"
    ]
    assert [n["kind"] for n in nodes(missing)] == ["MISSING_IN_TARGET"]
    assert nodes(missing)[0]["severity"] in {"MEDIUM", "HIGH", "CRITICAL"}  # never LOW

    # The exception links what it is about as objects, with their provenance.
    linked = """query($f: ReconciliationExceptionFilter) { reconciliationExceptions(filter: $f) {
      edges { node { postingIds invoice { id postingStatus source { system } }
                     postings { id externalId source { system } } } } } }"""
    (dup,) = nodes(
        graphql(client, linked, f={"kind": "DUPLICATE_IN_TARGET"})["data"][
            "reconciliationExceptions"
        ]
    )
    (planted_dup,) = [d for d in boxes.world.discrepancies if d.kind == "duplicate_posting"]
    assert dup["invoice"] == {
        "id": planted_dup.invoice_id, "postingStatus": "DUPLICATE",
        "source": {"system": "BILLING"},
    }  # fmt: skip
    assert [(p["id"], p["externalId"], p["source"]["system"]) for p in dup["postings"]] == [
        (posting_id, planted_dup.invoice_id, "ERP") for posting_id in dup["postingIds"]
    ]
    assert len(dup["postingIds"]) == 2

    # Acknowledge, then resolve; resolving again answers it as it is.
    move = """mutation($id: ID!, $key: String!, $note: String) {
      %s(id: $id, idempotencyKey: $key, note: $note) {
        reconciliationException { status statusBy note } userErrors { code message } } }"""
    target = nodes(missing)[0]["id"]
    ack = graphql(client, move % "acknowledgeReconciliationException", id=target, key="a1",
                  note="looking")["data"]["acknowledgeReconciliationException"]  # fmt: skip
    assert ack["reconciliationException"] == {
        "status": "ACKNOWLEDGED", "statusBy": "fin-1", "note": "looking",
    }  # fmt: skip
    res = graphql(client, move % "resolveReconciliationException", id=target, key="r1",
                  note="reposted by hand")["data"]["resolveReconciliationException"]  # fmt: skip
    assert res["reconciliationException"]["status"] == "RESOLVED"
    back = graphql(client, move % "acknowledgeReconciliationException", id=target, key="a2")
    assert back["data"]["acknowledgeReconciliationException"]["userErrors"] == [
        {
            "code": "RECONCILIATION_EXCEPTION_STATE",
            "message": f"exception {target} is resolved: it cannot be acknowledged",
        }
    ]

    # Still there at the next run: it is reopened by the reconciler.
    again = ran(client, "run-2")["reconciliationRun"]
    assert finished(client, again["id"])["stats"]["reopened"] == 1
    reopened = graphql(client, BOOK, filter={"kind": "MISSING_IN_TARGET"})["data"]
    assert nodes(reopened["reconciliationExceptions"])[0]["status"] == "OPEN"


def test_a_viewer_reads_but_may_not_run_and_bad_periods_are_refused(
    client: TestClient,
) -> None:
    refused = client.post(
        "/graphql",
        json={"query": RUN, "variables": {"key": "v1", "scope": QUARTER}},
        headers=VIEWER,
    ).json()
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    bad = graphql(client, RUN, key="b1", scope={"periodFrom": "2026-9"})
    assert bad["data"]["runReconciliation"]["userErrors"] == [
        {
            "code": "BAD_USER_INPUT",
            "message": "'2026-9' is not an accounting period: write YYYY-MM (2026-11)",
        }
    ]
    empty = graphql(client, RUN, key="b2", scope={"periodFrom": "2026-11", "periodTo": "2026-09"})
    assert empty["data"]["runReconciliation"]["userErrors"][0]["message"] == (
        "the period range 2026-11 to 2026-09 is empty"
    )


def test_an_entity_limited_principal_runs_and_sees_its_entity_only(
    boxes: Sandboxes, client: TestClient
) -> None:
    everything = ran(client, "all-1")["reconciliationRun"]["id"]
    finished(client, everything)
    (missing,) = [d for d in boxes.world.discrepancies if d.kind == "missing_posting"]
    entity = next(c for c in boxes.world.customers if c.id == missing.customer_id).legal_entity
    entity_of = {c.id: c.legal_entity for c in boxes.world.customers}
    own = identity().headers(Role.FINANCE_APPROVER, entities=[entity], expires_in=3600)

    def ask(query: str, **variables: Any) -> dict[str, Any]:
        body = {"query": query, "variables": variables}
        answer: dict[str, Any] = client.post("/graphql", json=body, headers=own).json()
        return answer

    seen = nodes(ask(BOOK)["data"]["reconciliationExceptions"])
    expected = {
        d.invoice_id
        for d in boxes.world.discrepancies
        if d.invoice_id and entity_of[d.customer_id] == entity
    }
    assert {n["invoiceId"] for n in seen} == expected and missing.invoice_id in expected
    assert {n["entity"] for n in seen} == {entity}

    # Another entity's exception and the all-entity run are not there for it.
    all_book = nodes(graphql(client, BOOK)["data"]["reconciliationExceptions"])
    other = next(n for n in all_book if n["entity"] != entity)
    ack = ask(
        """mutation($id: ID!) { acknowledgeReconciliationException(id: $id, idempotencyKey: "o1")
           { userErrors { code message } } }""",
        id=other["id"],
    )["data"]["acknowledgeReconciliationException"]
    assert ack["userErrors"] == [
        {
            "code": "RECONCILIATION_EXCEPTION_NOT_FOUND",
            "message": f"no reconciliation exception {other['id']}",
        }
    ]
    hidden = ask("query($id: ID!) { reconciliationRun(id: $id) { id } }", id=everything)
    assert hidden["errors"][0]["extensions"]["code"] == "RECONCILIATION_RUN_NOT_FOUND"
    runs = ask("{ reconciliationRuns { edges { node { id } } } }")["data"]["reconciliationRuns"]
    assert nodes(runs) == []

    started = ask(RUN, key="e1", scope=QUARTER)["data"]["runReconciliation"]["reconciliationRun"]
    assert started["entities"] == [entity]
    finished(client, started["id"])
    runs = ask("{ reconciliationRuns { edges { node { id } } } }")["data"]["reconciliationRuns"]
    assert nodes(runs) == [{"id": started["id"]}]
    elsewhere = ask(RUN, key="e2", scope=QUARTER | {"entities": ["Elsewhere"]})
    assert elsewhere["errors"][0]["extensions"]["code"] == "FORBIDDEN"


FIX = """mutation($id: ID!, $key: String!, $posting: String!) {
  voidDuplicatePosting(exceptionId: $id, postingId: $posting, idempotencyKey: $key) {
    postingId reconciliationException { status note } userErrors { code message field } } }"""
REPOST = """mutation($id: ID!, $key: String!) {
  repostInvoice(exceptionId: $id, idempotencyKey: $key) {
    postingId reconciliationException { status note } userErrors { code message field } } }"""


@pytest.fixture
def own_boxes() -> Iterator[Sandboxes]:
    """Sandboxes of the test's own: it posts and voids in the ERP."""
    with sandboxes() as running:
        yield running


def test_a_repost_and_a_void_fix_the_ledger_and_the_next_run_auto_resolves(
    own_boxes: Sandboxes, tmp_path: Path
) -> None:
    url = migrated_database(tmp_path / "opsgraph.db", own_boxes.world)
    with TestClient(create_app(own_boxes.settings(url)), headers=FINANCE) as client:
        finished(client, ran(client, "run-1")["reconciliationRun"]["id"])
        query = """query($f: ReconciliationExceptionFilter) { reconciliationExceptions(filter: $f) {
          edges { node { id kind postingIds invoiceId } } } }"""

        def one(kind: str) -> dict[str, Any]:
            (node,) = nodes(
                graphql(client, query, f={"kind": kind})["data"]["reconciliationExceptions"]
            )
            return node  # type: ignore[no-any-return]

        missing, duplicate, amount = (
            one("MISSING_IN_TARGET"),
            one("DUPLICATE_IN_TARGET"),
            one("AMOUNT_MISMATCH"),
        )
        kept, extra = duplicate["postingIds"]

        wrong = graphql(client, REPOST, id=amount["id"], key="x1")["data"]["repostInvoice"]
        assert wrong["userErrors"] == [{
            "code": "BAD_USER_INPUT", "field": "exceptionId",
            "message": f"{amount['id']} is amount_mismatch: only missing_in_target can repost it",
        }]  # fmt: skip
        reposted = graphql(client, REPOST, id=missing["id"], key="r1")["data"]["repostInvoice"]
        assert reposted["userErrors"] == [] and reposted["postingId"]
        assert reposted["reconciliationException"] == {
            "status": "ACKNOWLEDGED", "note": f"reposted as ERP posting {reposted['postingId']}",
        }  # fmt: skip
        again = graphql(client, REPOST, id=missing["id"], key="r1")["data"]["repostInvoice"]
        assert again["postingId"] == reposted["postingId"]  # the same key: posted once

        keep = graphql(client, FIX, id=duplicate["id"], key="v0", posting=kept)
        assert keep["data"]["voidDuplicatePosting"]["userErrors"] == [{
            "code": "BAD_USER_INPUT", "field": "postingId",
            "message": f"{kept} is the posting kept; void one of {extra}",
        }]  # fmt: skip
        voided = graphql(client, FIX, id=duplicate["id"], key="v1", posting=extra)
        assert voided["data"]["voidDuplicatePosting"]["userErrors"] == []
        assert voided["data"]["voidDuplicatePosting"]["postingId"] == extra

        erp = client.app.state.services.registry.get(SystemName.ERP)  # type: ignore[attr-defined]
        by_invoice = {"external_id": missing["invoiceId"]}
        listed = client.portal.call(  # type: ignore[union-attr]
            partial(erp.inner.list_all, ObjectKind.POSTING, filters=by_invoice)
        )
        postings = {p.id: p for p in listed}
        assert list(postings) == [reposted["postingId"]]

        done = finished(client, ran(client, "run-2")["reconciliationRun"]["id"])
        assert done["stats"]["autoResolved"] == 2
        left = graphql(client, BOOK, filter={"status": "OPEN"})["data"]["reconciliationExceptions"]
        assert sorted(n["kind"] for n in nodes(left)) == [
            "AMOUNT_MISMATCH", "PERIOD_MISMATCH", "TAX_MISMATCH",
        ]  # fmt: skip
