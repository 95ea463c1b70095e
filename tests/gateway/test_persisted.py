"""Persisted operations: Apollo's automatic persisted queries (an unknown hash, the text
registered with it once it validates, then the hash alone; a hash that is not the text's
refused), shared by replicas through Redis; the safelist, in which only the manifest's
operations run; and the manifest, built from dashboards/operations."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from graphql import parse

from gateway.auth.scopes import Role
from gateway.errors import ConfigurationError
from gateway.persisted.manifest import FORMAT, load, main, operations, sha256, write
from gateway.settings import load_settings
from tests.gateway.conftest import Bare
from tests.identity import identity

QUERY = "{ __typename }"
HASH = sha256(QUERY)
ANSWER = {"data": {"__typename": "Query"}}
BODIES = {operation.name: operation.body for operation in operations()}


def persisted(wanted: str = HASH, **fields: Any) -> dict[str, Any]:
    return {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": wanted}}, **fields}


def error(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def test_an_automatic_persisted_query_is_registered_then_sent_by_hash(bare: Bare) -> None:
    client = bare()
    unknown = client.post("/graphql", json=persisted())
    assert unknown.status_code == 200  # Apollo's clients then send the text with the hash
    assert unknown.json() == error("PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")
    assert unknown.headers["cache-control"] == "private, no-cache, must-revalidate"
    registered = client.post("/graphql", json=persisted(query=QUERY))
    assert registered.json() == ANSWER
    assert client.post("/graphql", json=persisted()).json() == ANSWER
    over_get = client.get(
        "/graphql",
        params={"extensions": json.dumps(persisted()["extensions"])},
        headers={"apollo-require-preflight": "true"},
    )
    assert over_get.json() == ANSWER


def test_a_query_that_does_not_validate_is_not_registered(bare: Bare) -> None:
    client = bare()
    invalid = "{ nothing }"
    answer = client.post("/graphql", json=persisted(sha256(invalid), query=invalid))
    assert answer.json()["errors"][0]["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}
    again = client.post("/graphql", json=persisted(sha256(invalid)))
    assert again.json() == error("PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")


@pytest.mark.parametrize(
    ("extensions", "code", "message"),
    [
        (
            {"persistedQuery": {"version": 1, "sha256Hash": sha256("{ other }")}},
            "PERSISTED_QUERY_HASH_MISMATCH",
            "The persisted query hash is not the query's SHA-256.",
        ),
        (
            {"persistedQuery": {"version": 2, "sha256Hash": HASH}},
            "BAD_REQUEST",
            "persistedQuery must be version 1.",
        ),
        (
            {"persistedQuery": {"version": 1, "sha256Hash": HASH.upper()}},
            "BAD_REQUEST",
            "persistedQuery.sha256Hash must be 64 lowercase hex digits.",
        ),
    ],
    ids=["a hash that is not the query's", "version 2", "an uppercase hash"],
)
def test_a_persisted_query_that_does_not_hold_is_refused(
    bare: Bare, extensions: dict[str, Any], code: str, message: str
) -> None:
    response = bare().post("/graphql", json={"query": QUERY, "extensions": extensions})
    assert response.status_code == 400
    assert response.json() == error(code, message)


def test_with_persisted_queries_off_a_hash_is_not_supported(bare: Bare) -> None:
    client = bare(persisted_queries={"mode": "off"})
    refused = client.post("/graphql", json=persisted(query=QUERY))
    assert refused.status_code == 200
    assert refused.json() == error("PERSISTED_QUERY_NOT_SUPPORTED", "PersistedQueryNotSupported")
    assert client.post("/graphql", json={"query": QUERY}).json() == {
        "data": {"__typename": "Query"}
    }


def test_replicas_share_persisted_queries_through_redis(bare: Bare, redis_url: str) -> None:
    # Sharing is under test, not the Redis timeout: a loaded machine may take longer than
    # the 250 ms default, and the replica would then keep the query to itself (correctly).
    one = bare(redis_url=redis_url, redis_timeout_s=5)
    other = bare(redis_url=redis_url, redis_timeout_s=5)
    assert one.post("/graphql", json=persisted(query=QUERY)).status_code == 200
    assert other.post("/graphql", json=persisted()).json() == ANSWER


@pytest.fixture
def safelist(bare: Bare, tmp_path: Path) -> Any:
    manifest = tmp_path / "manifest.json"
    write(manifest)
    return bare(persisted_queries={"mode": "safelist", "manifest": str(manifest)})


def test_the_safelist_runs_the_registered_operations_by_hash_or_text(safelist: Any) -> None:
    by_hash = persisted(sha256(BODIES["Customer360"]), variables={"id": "nope"})
    by_text = {"query": BODIES["Customer360"], "variables": {"id": "nope"}}
    for body in (by_hash, by_text):
        answer = safelist.post("/graphql", json=body).json()  # it ran: the customer is unknown
        assert answer["errors"][0]["message"] == "no customer with id 'nope'"


def test_the_safelist_refuses_anything_else(safelist: Any) -> None:
    unknown = safelist.post("/graphql", json=persisted())
    assert unknown.status_code == 400
    assert unknown.json() == error(
        "PERSISTED_QUERY_NOT_IN_LIST", f"No registered operation has the hash {HASH}."
    )
    free_form = safelist.post("/graphql", json={"query": QUERY})
    assert free_form.status_code == 400
    assert free_form.json() == error(
        "QUERY_NOT_IN_SAFELIST",
        "Only registered operations run here: send one of them, or its persisted query hash.",
    )
    registering = safelist.post("/graphql", json=persisted(query=QUERY))
    assert registering.json()["errors"][0]["extensions"] == {"code": "PERSISTED_QUERY_NOT_IN_LIST"}


def test_the_composing_router_sends_its_own_operations_past_the_safelist(safelist: Any) -> None:
    router = identity().headers(Role.INTEGRATION_ADMIN)  # holds schema:read
    answer = safelist.post("/graphql", json={"query": QUERY}, headers=router)
    assert answer.json() == ANSWER


def test_the_safelist_needs_its_manifest(tmp_path: Path) -> None:
    missing = tmp_path / "manifest.json"
    with pytest.raises(ConfigurationError) as refused:
        load_settings(persisted_queries={"mode": "safelist", "manifest": str(missing)})
    assert refused.value.message == (
        f"OPSGRAPH_PERSISTED_QUERIES: the safelist needs its manifest, and {missing} does not "
        "exist: build it with `make manifest` (python -m gateway.persisted.manifest)"
    )


# Every operation the dashboards send (dashboards/operations/*.graphql), by type.
DASHBOARD_OPERATIONS = {
    "query": [
        "ApprovalsQueue", "CheckEntitlement", "Customer360", "CustomerFinance", "CustomerPage",
        "CustomersPage", "DeadLetters", "FindCustomerByExternalId", "FindCustomersByName",
        "OperationsSystems", "ReconciliationExceptionCounts", "ReconciliationExceptions",
        "ReconciliationRuns", "SupportCustomer", "WorkflowRunCounts",
    ],
    "mutation": [
        "AcknowledgeReconciliationException", "ApproveCredit", "RejectCredit", "ReplayEvents",
        "RepostInvoice", "RequestCredit", "ResolveReconciliationException", "RetryDeadLetter",
        "StartReconciliationRun", "VoidDuplicatePosting",
    ],
    "subscription": [
        "ApprovalsUpdates", "CreditUpdates", "CustomerPageUpdated", "OperationsEvents",
        "OperationsWorkflowRuns", "ReconciliationExceptionRaised", "ReconciliationRunProgress",
    ],
}  # fmt: skip


def test_the_manifest_holds_every_dashboard_operation_whole(tmp_path: Path) -> None:
    out = tmp_path / "manifest.json"
    main(["--out", str(out)])
    manifest = json.loads(out.read_text())
    assert (manifest["format"], manifest["version"]) == (FORMAT, 1)
    found = {(o["name"], o["type"]) for o in manifest["operations"]}
    assert found == {(name, kind) for kind, names in DASHBOARD_OPERATIONS.items() for name in names}
    for operation in manifest["operations"]:
        assert operation["id"] == sha256(operation["body"])
        document = parse(operation["body"])
        operation_def, *fragments = document.definitions
        assert operation_def.name.value == operation["name"]  # type: ignore[attr-defined]
        # Whole: every fragment it spreads, each once, and nothing else.
        spread = set(re.findall(r"\.\.\.([A-Za-z_]\w*)", operation["body"]))
        names = [f.name.value for f in fragments]  # type: ignore[attr-defined]
        assert sorted(names) == sorted(spread)
    customer360 = next(o for o in manifest["operations"] if o["name"] == "Customer360")
    assert [d.name.value for d in parse(customer360["body"]).definitions] == [  # type: ignore[attr-defined]
        "Customer360",
        "C360",
    ]
    assert load(out) == {o["id"]: o["body"] for o in manifest["operations"]}


def test_a_manifest_whose_ids_are_not_their_bodies_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "manifest.json"
    write(out)
    manifest = json.loads(out.read_text())
    manifest["operations"][0]["body"] += " "
    out.write_text(json.dumps(manifest))
    with pytest.raises(ConfigurationError, match="is not its body"):
        load(out)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{ __typename }", "a registered operation needs a name"),
        ("query A { ...Missing }", "no file defines fragment 'Missing'"),
    ],
)
def test_the_manifest_refuses_an_operation_it_cannot_register(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "op.graphql").write_text(text)
    with pytest.raises(ConfigurationError) as refused:
        operations(tmp_path)
    assert refused.value.message == f"{tmp_path / 'op.graphql'}: {message}"
