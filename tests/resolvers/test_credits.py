"""The service-credit workflow against the seeded sandboxes over real HTTP: a support lead
requests a credit for a breached case, policy decides, a finance approver (never the
requester) approves, the ERP posts the credit memo before the answer, billing gets a credit
note, and the CRM and the case hear about it through the outbox."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from starlette.testclient import TestClient

from connectors.crm.wire import API
from connectors.models import Case, SystemName
from gateway.auth.keys import opened
from gateway.auth.scopes import Role, Scope
from tests.connectors.crm_helpers import SESSION
from tests.gateways import Gateway, Served
from tests.identity import identity
from tests.world import (
    SECRET,
    Sandboxes,
    cli_env,
    gateway_process,
    migrated_database,
    sandbox_variables,
    sandboxes,
    until,
)

LEAD = identity().headers(Role.SUPPORT_LEAD, subject="lead-7")
FINANCE = identity().headers(Role.FINANCE_APPROVER, subject="finance-7")
ERP, SUPPORT, CRM = SystemName.ERP, SystemName.SUPPORT, SystemName.CRM

REQUEST = """mutation($input: RequestCreditInput!, $key: String!) {
  requestCredit(input: $input, idempotencyKey: $key) {
    credit { id status amount { amount currency } requestedBy decidedBy postingId }
    workflowRun { id status steps { name status output } }
    userErrors { code message field }
  }
}"""
APPROVE = """mutation($id: ID!, $key: String!) {
  approveCredit(id: $id, idempotencyKey: $key) {
    credit { id status decidedBy postingId }
    workflowRun { status error steps { name status attempts output } }
    userErrors { code message field }
  }
}"""
REJECT = """mutation($id: ID!, $key: String!) {
  rejectCredit(id: $id, reason: "not covered", idempotencyKey: $key) {
    credit { id status decidedBy }
    userErrors { code message field }
  }
}"""


@pytest.fixture(scope="module")
def boxes() -> Iterator[Sandboxes]:
    """Sandboxes of this module's own: the memos, credit notes and notes it posts stay,
    and the other modules compare whole customer 360s with the seed."""
    with sandboxes() as running:
        yield running


@pytest.fixture(scope="module")
def linked_db(boxes: Sandboxes, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A gateway database of this module's own, for the same reason."""
    return migrated_database(tmp_path_factory.mktemp("credits") / "gateway.db", boxes.world)


def ask(client: TestClient, query: str, headers: dict[str, str], **variables: Any) -> Any:
    response = client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def breached(boxes: Sandboxes) -> tuple[str, Case]:
    """The seeded customer with an SLA-breached case (of Opsgraph B.V., billed in EUR:
    policy approves below 50.00 alone, refuses over 450.00), and that case."""
    return next(
        (c.id, x)
        for c in boxes.world.customers
        for x in boxes.world.slice(SUPPORT)
        if isinstance(x, Case)
        and x.sla_breached
        and x.organization_id == c.external_ids.get(SUPPORT)
    )


def credit(customer: str, case: str, amount: str, key: str) -> dict[str, Any]:
    return {
        "input": {
            "customerId": customer,
            "caseId": case,
            "amount": {"amount": amount, "currency": "EUR"},
            "reason": "SLA breached on a P1",
        },
        "key": key,
    }


def erp_posts(boxes: Sandboxes) -> int:
    """Credit memos sent to the ERP (its reads are POSTs too: SuiteQL)."""
    return sum(n for k, n in boxes.requests()[ERP].items() if k.endswith("/creditMemo"))


def test_a_credit_above_the_threshold_waits_for_finance_then_posts_once(
    boxes: Sandboxes, gateway: Gateway
) -> None:
    client = gateway(workflow_interval_s=0.2)
    customer, case = breached(boxes)
    asked = ask(client, REQUEST, LEAD, **credit(customer, case.id, "120.00", "cr-1"))
    requested = asked["data"]["requestCredit"]
    assert requested["userErrors"] == []
    assert requested["workflowRun"] is None
    assert requested["credit"]["status"] == "REQUESTED"
    assert requested["credit"]["requestedBy"] == "lead-7"
    assert erp_posts(boxes) == 0
    credit_id = requested["credit"]["id"]

    own = ask(client, APPROVE, identity().headers(Role.FINANCE_APPROVER, subject="lead-7"),
              id=credit_id, key="ap-0")  # fmt: skip
    assert own["data"]["approveCredit"]["userErrors"][0]["code"] == "FOUR_EYES"

    approved = ask(client, APPROVE, FINANCE, id=credit_id, key="ap-1")["data"]["approveCredit"]
    assert approved["userErrors"] == []
    run = approved["workflowRun"]
    assert run["status"] == "SUCCEEDED", run
    assert [s["name"] for s in run["steps"]] == [
        "erp_customer",
        "erp_credit_memo",
        "billing_credit_note",
        "notify",
    ]
    assert all(s["status"] == "SUCCEEDED" for s in run["steps"])
    memo = run["steps"][1]["output"]["reference"]
    assert approved["credit"] == {
        "id": credit_id,
        "status": "POSTED",
        "decidedBy": "finance-7",
        "postingId": memo,
    }
    assert erp_posts(boxes) == 1

    # The same approval again replays; another key finds it decided.
    again = ask(client, APPROVE, FINANCE, id=credit_id, key="ap-1")
    assert again["data"]["approveCredit"]["credit"]["status"] == "POSTED"
    late = ask(client, APPROVE, FINANCE, id=credit_id, key="ap-2")["data"]["approveCredit"]
    assert late["userErrors"][0]["code"] == "CONFLICT"
    assert erp_posts(boxes) == 1


def test_a_small_credit_is_approved_by_policy_and_posted_at_once(
    boxes: Sandboxes, gateway: Gateway
) -> None:
    client = gateway()
    customer, case = breached(boxes)
    asked = ask(client, REQUEST, LEAD, **credit(customer, case.id, "10.00", "cr-2"))
    requested = asked["data"]["requestCredit"]
    assert requested["credit"]["status"] == "POSTED"
    assert requested["credit"]["decidedBy"] == "policy"
    assert requested["workflowRun"]["status"] == "SUCCEEDED"


def test_policy_refuses_a_credit_over_the_per_request_limit(
    boxes: Sandboxes, gateway: Gateway
) -> None:
    client = gateway()
    customer, case = breached(boxes)
    asked = ask(client, REQUEST, LEAD, **credit(customer, case.id, "900.00", "cr-3"))
    errors = asked["data"]["requestCredit"]["userErrors"]
    assert [e["code"] for e in errors] == ["POLICY_REFUSED"]
    assert errors[0]["message"].startswith("900.00 EUR is over the 450.00 EUR")
    assert asked["data"]["requestCredit"]["credit"] is None


def test_a_rejected_credit_posts_nothing(boxes: Sandboxes, gateway: Gateway) -> None:
    client = gateway()
    customer, case = breached(boxes)
    asked = ask(client, REQUEST, LEAD, **credit(customer, case.id, "130.00", "cr-4"))
    credit_id = asked["data"]["requestCredit"]["credit"]["id"]
    boxes.reset_stats()
    rejected = ask(client, REJECT, FINANCE, id=credit_id, key="rj-1")["data"]["rejectCredit"]
    assert rejected == {
        "credit": {"id": credit_id, "status": "REJECTED", "decidedBy": "finance-7"},
        "userErrors": [],
    }
    assert erp_posts(boxes) == 0


def test_the_requester_role_cannot_approve(boxes: Sandboxes, gateway: Gateway) -> None:
    body = ask(gateway(), APPROVE, LEAD, id="cr_x", key="ap-9")
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


def test_the_outbox_tells_the_case_and_the_crm(boxes: Sandboxes, gateway: Gateway) -> None:
    client = gateway(workflow_interval_s=0.1)
    customer, case = breached(boxes)
    asked = ask(client, REQUEST, LEAD, **credit(customer, case.id, "140.00", "cr-5"))
    credit_id = asked["data"]["requestCredit"]["credit"]["id"]
    ask(client, APPROVE, FINANCE, id=credit_id, key="ap-5")

    def writes() -> dict[SystemName, dict[str, int]]:
        return {
            s: {k: n for k, n in boxes.requests()[s].items() if not k.startswith("GET")}
            for s in (SUPPORT, CRM)
        }

    # One internal comment on the case, one activity on the account and one follow-up for
    # the account's owner, each sent once.
    expected = {
        SUPPORT: {f"PUT /api/v2/tickets/{case.id}.json": 1},
        CRM: {
            f"PATCH {API}/sobjects/Task/Opsgraph_Ref__c/{credit_id}": 1,
            f"PATCH {API}/sobjects/Task/Opsgraph_Ref__c/{credit_id}:follow-up": 1,
        },
    }
    assert until(lambda: writes() == expected), writes()
    time.sleep(0.5)  # later rounds of the outbox send nothing again
    assert writes() == expected

    account = next(c for c in boxes.world.customers if c.id == customer).external_ids[CRM]
    with httpx.Client(base_url=boxes.urls[CRM], headers=SESSION) as crm:
        soql = (
            "SELECT Opsgraph_Ref__c, Status, Priority, ActivityDate, OwnerId, Subject "
            f"FROM Task WHERE WhatId = '{account}'"
        )
        tasks = {
            t["Opsgraph_Ref__c"]: t
            for t in crm.get(f"{API}/query", params={"q": soql}).json()["records"]
        }
        owner = crm.get(f"{API}/sobjects/Account/{account}").json()["OwnerId"]
    done, follow_up = tasks[credit_id], tasks[f"{credit_id}:follow-up"]
    assert (done["Status"], done["Subject"]) == ("Completed", "Service credit 140.00 EUR")
    due = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
    assert {k: follow_up[k] for k in ("Status", "Priority", "ActivityDate", "OwnerId")} == {
        "Status": "Not Started", "Priority": "High", "ActivityDate": due, "OwnerId": owner
    }  # fmt: skip
    assert follow_up["Subject"] == "Follow up: Service credit 140.00 EUR"


QUEUE = """query($status: CreditStatus) {
  creditRequests(status: $status, first: 50) { totalCount edges { node { id status } } }
}"""
RUN = "query($id: ID!) { workflowRun(id: $id) { id status subjectId steps { name status } } }"
CANCEL_RUN = """mutation($id: ID!, $key: String!) {
  cancelWorkflowRun(id: $id, reason: "by hand", idempotencyKey: $key) {
    workflowRun { id status }
    userErrors { code message }
  }
}"""


def test_the_approvals_queue_and_the_run_can_be_read(boxes: Sandboxes, gateway: Gateway) -> None:
    client = gateway()
    customer, case = breached(boxes)
    asked = ask(client, REQUEST, LEAD, **credit(customer, case.id, "60.00", "cr-6"))
    credit_id = asked["data"]["requestCredit"]["credit"]["id"]
    queue = ask(client, QUEUE, FINANCE, status="REQUESTED")["data"]["creditRequests"]
    assert {"id": credit_id, "status": "REQUESTED"} in [e["node"] for e in queue["edges"]]
    assert queue["totalCount"] == len(queue["edges"])
    ask(client, APPROVE, FINANCE, id=credit_id, key="ap-6")
    posted = ask(client, QUEUE, FINANCE, status="POSTED")["data"]["creditRequests"]["edges"]
    assert {"id": credit_id, "status": "POSTED"} in [e["node"] for e in posted]


def test_a_finished_run_cannot_be_cancelled(boxes: Sandboxes, gateway: Gateway) -> None:
    client = gateway()
    customer, case = breached(boxes)
    asked = ask(client, REQUEST, LEAD, **credit(customer, case.id, "5.00", "cr-7"))
    posted = asked["data"]["requestCredit"]
    run = ask(client, RUN, FINANCE, id=posted["workflowRun"]["id"])["data"]["workflowRun"]
    assert run["status"] == "SUCCEEDED"
    assert run["subjectId"] == posted["credit"]["id"]
    cancelled = ask(client, CANCEL_RUN, FINANCE, id=run["id"], key="cx-1")
    errors = cancelled["data"]["cancelWorkflowRun"]["userErrors"]
    assert [e["code"] for e in errors] == ["WORKFLOW_RUN_STATE"]


BALANCE = "query($id: ID!) { customer(id: $id) { balance { receivable { amount } } } }"
INVOICES = "query($id: ID!) { customer(id: $id) { invoices(first: 50) { totalCount } } }"
CREDIT = "query($id: ID!) { creditRequest(id: $id) { status postingId } }"


def memo_count(boxes: Sandboxes, credit_id: str) -> int:
    """The ERP's credit memos for a credit request, as the ERP holds them (not the requests
    it was sent: a retry under one key is one memo)."""
    query = (
        f"SELECT id FROM transaction WHERE recordtype = 'creditmemo' AND externalid = '{credit_id}'"
    )
    answer = httpx.post(
        f"{boxes.urls[ERP]}/services/rest/query/v1/suiteql",
        headers={"Authorization": f"Bearer {SECRET}", "Prefer": "transient"},
        json={"q": query},
        timeout=10,
    )
    answer.raise_for_status()
    return len(answer.json()["items"])


def post(url: str, query: str, headers: dict[str, str], **variables: Any) -> Any:
    body = {"query": query, "variables": variables}
    return httpx.post(f"{url}/graphql", json=body, headers=headers, timeout=30).json()


@pytest.mark.parametrize(
    ("step", "hung", "warm"),
    [
        ("erp_customer", ERP, None),
        ("erp_credit_memo", ERP, BALANCE),
        ("billing_credit_note", SystemName.BILLING, INVOICES),
    ],
    ids=["killed checking the ERP customer", "killed posting the memo", "killed crediting"],
)
def test_a_gateway_killed_mid_step_resumes_and_posts_one_memo(
    tmp_path: Path, step: str, hung: SystemName, warm: str | None
) -> None:
    # A world of its own: the gateway's database and the systems hold the same credits.
    with sandboxes() as boxes:
        _killed_mid_step(boxes, tmp_path, step, hung, warm)


def _killed_mid_step(
    boxes: Sandboxes, tmp_path: Path, step: str, hung: SystemName, warm: str | None
) -> None:
    """A credit approved while ``hung`` hangs in ``step`` (what ``warm`` reads is cached
    first, so the steps before it do not hang), the gateway killed there, then started
    again."""
    database = migrated_database(tmp_path / "gateway.db", boxes.world)
    env = cli_env(
        OPSGRAPH_DATABASE_URL=database,
        OPSGRAPH_WORKFLOW_INTERVAL_S="0.2",
        OPSGRAPH_WORKFLOW_LEASE_S="2",
        **sandbox_variables(boxes),
        **identity().variables(),
    )
    customer, case = breached(boxes)
    boxes.reset()
    with gateway_process(env) as (url, gateway):
        asked = post(url, REQUEST, LEAD, **credit(customer, case.id, "110.00", "crash-1"))
        credit_id = asked["data"]["requestCredit"]["credit"]["id"]
        if warm is not None:
            post(url, warm, FINANCE, id=customer)
        boxes.faults(hung, hang_next=100, hang_s=60)
        approving = ThreadPoolExecutor(1).submit(
            post, url, APPROVE, FINANCE, id=credit_id, key="crash-ap"
        )
        running = until(lambda: _step_status(tmp_path / "gateway.db", step) == "running")
        assert running, _steps(tmp_path / "gateway.db")
        # The call is out, held by the hung system.
        in_flight = until(lambda: boxes.admin[hung].get("/_sandbox/stats").json()["in_flight"] > 0)
        assert in_flight
        gateway.kill()  # SIGKILL, mid-step
        gateway.wait(timeout=10)
    # The approval's connection died with the process.
    assert isinstance(approving.exception(timeout=30), httpx.TransportError)
    boxes.reset()
    with gateway_process(env) as (url, _):
        posted = until(
            lambda: (
                post(url, CREDIT, FINANCE, id=credit_id)["data"]["creditRequest"]["status"]
                == "POSTED"
            ),
            within_s=60,
        )
        assert posted, _steps(tmp_path / "gateway.db")
    assert memo_count(boxes, credit_id) == 1


def _step_status(database: Path, step: str) -> str | None:
    """A step's status as the gateway's database has it (the gateway's own record)."""
    with closing(sqlite3.connect(database)) as db:
        row = db.execute("SELECT status FROM workflow_steps WHERE name = ?", (step,)).fetchone()
    return None if row is None else str(row[0])


def _steps(database: Path) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(database)) as db:
        return db.execute("SELECT name, status, attempts, error FROM workflow_steps").fetchall()


QUEUED = """query { creditRequests(status: REQUESTED, first: 200) { edges { node { id } } } }"""


def _queued(url: str) -> set[str]:
    edges = post(url, QUEUED, FINANCE)["data"]["creditRequests"]["edges"]
    return {e["node"]["id"] for e in edges}


async def _together(url: str, body: dict[str, Any], count: int) -> list[Any]:
    async with httpx.AsyncClient(base_url=url, headers=LEAD, timeout=30) as client:
        sent = [client.post("/graphql", json=body) for _ in range(count)]
        return [answer.json() for answer in await asyncio.gather(*sent)]


def test_ten_identical_credit_requests_at_once_make_one(boxes: Sandboxes, served: Served) -> None:
    url = served()
    customer, case = breached(boxes)
    before = {
        e["node"]["id"] for e in post(url, QUEUED, FINANCE)["data"]["creditRequests"]["edges"]
    }
    body = {"query": REQUEST, "variables": credit(customer, case.id, "70.00", "together-1")}
    answers = asyncio.run(_together(url, body, 10))
    made = {a["data"]["requestCredit"]["credit"]["id"] for a in answers if a.get("data")}
    busy = [e["extensions"]["code"] for a in answers if not a.get("data") for e in a["errors"]]
    after = _queued(url)
    assert len(made) == 1 and after - before == made
    assert set(busy) <= {"IDEMPOTENCY_IN_PROGRESS"}


RUNS = """query($status: WorkflowRunStatus) {
  workflowRuns(status: $status, first: 100) {
    totalCount edges { node { id status subjectId } }
  }
}"""
AUDIT = """query($filter: AuditFilter) {
  auditLog(filter: $filter, first: 5) {
    totalCount edges { node { actor action objectKind detail } }
  }
}"""
ADMIN = identity().headers(Role.INTEGRATION_ADMIN, subject="admin-7")


def test_runs_and_the_audit_log_can_be_listed(boxes: Sandboxes, gateway: Gateway) -> None:
    client = gateway()
    customer, case = breached(boxes)
    asked = ask(client, REQUEST, LEAD, **credit(customer, case.id, "4.00", "cr-8"))
    posted = asked["data"]["requestCredit"]
    runs = ask(client, RUNS, FINANCE, status="SUCCEEDED")["data"]["workflowRuns"]
    assert {
        "id": posted["workflowRun"]["id"],
        "status": "SUCCEEDED",
        "subjectId": posted["credit"]["id"],
    } in [e["node"] for e in runs["edges"]]
    assert runs["totalCount"] == len(runs["edges"])
    audit = ask(client, AUDIT, ADMIN, filter={"actor": "lead-7", "action": "write.requestCredit"})
    entries = audit["data"]["auditLog"]
    newest = entries["edges"][0]["node"]
    assert (newest["actor"], newest["action"]) == ("lead-7", "write.requestCredit")
    assert newest["detail"]["variables"]["idempotencyKey"] == "cr-8"
    assert newest["detail"]["result"] == {"outcome": "done"}
    assert entries["totalCount"] >= len(entries["edges"]) == min(5, entries["totalCount"])
    refused = ask(client, AUDIT, LEAD)
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["FORBIDDEN"]


POLICY = """query($status: CreditStatus) {
  creditRequests(status: $status, first: 100) {
    edges { node { id customerId customer { id name } policy {
      rule period approvers
      autoApproveBelow { amount currency } maxPerRequest { amount currency }
      maxPerCustomer { amount currency } creditedInPeriod { minorUnits currency }
    } } }
  }
}"""


def test_the_queue_shows_each_credit_s_policy_and_what_its_customer_was_credited(
    boxes: Sandboxes, gateway: Gateway
) -> None:
    """What the approvals page shows a finance approver beside each request: the rule that
    decides it and the customer's credits this period, pending ones included, rejected
    ones not."""
    client = gateway()
    customer, case = breached(boxes)
    name = next(c.name for c in boxes.world.customers if c.id == customer)

    def standing(credit_id: str) -> dict[str, Any]:
        edges = ask(client, POLICY, FINANCE)["data"]["creditRequests"]["edges"]
        return next(e["node"] for e in edges if e["node"]["id"] == credit_id)

    first = ask(client, REQUEST, LEAD, **credit(customer, case.id, "70.00", "cr-p1"))
    first_id = first["data"]["requestCredit"]["credit"]["id"]
    before = standing(first_id)
    assert before["customerId"] == customer
    assert before["customer"] == {"id": customer, "name": name}
    policy = before["policy"]
    credited = int(policy.pop("creditedInPeriod")["minorUnits"])
    assert policy == {
        "rule": 'EUR."Opsgraph B.V."',
        "period": "QUARTER",
        "approvers": ["finance_approver"],
        "autoApproveBelow": {"amount": "50.00", "currency": "EUR"},
        "maxPerRequest": {"amount": "450.00", "currency": "EUR"},
        "maxPerCustomer": {"amount": "1400.00", "currency": "EUR"},
    }
    second = ask(client, REQUEST, LEAD, **credit(customer, case.id, "80.00", "cr-p2"))
    second_id = second["data"]["requestCredit"]["credit"]["id"]
    assert standing(first_id)["policy"]["creditedInPeriod"] == {
        "minorUnits": str(credited + 8000),
        "currency": "EUR",
    }
    ask(client, REJECT, FINANCE, id=second_id, key="rj-p2")
    assert standing(first_id)["policy"]["creditedInPeriod"]["minorUnits"] == str(credited)
    ask(client, REJECT, FINANCE, id=first_id, key="rj-p1")


def test_the_queue_reads_every_credit_s_standing_in_one_query(
    boxes: Sandboxes, gateway: Gateway
) -> None:
    """The approvals page asks each credit's policy: one query for the whole queue, not
    one per credit."""
    client = gateway()
    customer, case = breached(boxes)
    made = [
        ask(client, REQUEST, LEAD, **credit(customer, case.id, amount, key))["data"]
        for amount, key in (("60.00", "cr-q1"), ("65.00", "cr-q2"), ("75.00", "cr-q3"))
    ]
    ids = {m["requestCredit"]["credit"]["id"] for m in made}
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    engine = client.app.state.services.engine.sync_engine  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", seen)
    try:
        edges = ask(client, POLICY, FINANCE, status="REQUESTED")["data"]["creditRequests"]["edges"]
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    queued = {e["node"]["id"]: e["node"]["policy"] for e in edges}
    assert ids <= set(queued)
    # What the three are counted in: each other, pending ones count (the same customer).
    totals = {queued[i]["creditedInPeriod"]["minorUnits"] for i in ids}
    assert len(totals) == 1 and int(totals.pop()) >= 6000 + 6500 + 7500
    # The standing reads credits' amounts, not credits: a query of their amounts, no ids.
    standing = [
        s for s in statements
        if "credit_requests.amount_minor" in (chosen := s.split("FROM")[0])
        and "credit_requests.id" not in chosen
    ]  # fmt: skip
    assert len(standing) == 1, standing
    for key, id_ in zip(("rj-q1", "rj-q2", "rj-q3"), sorted(ids), strict=True):
        ask(client, REJECT, FINANCE, id=id_, key=key)


def test_a_credit_is_decided_only_by_a_role_its_policy_rule_names(
    boxes: Sandboxes, gateway: Gateway, linked_db: str
) -> None:
    """The policy names the roles that decide a credit (finance approvers here): a service
    whose API key was given credits:approve holds no role, and may neither approve nor
    reject one."""
    client = gateway()
    customer, case = breached(boxes)
    asked = ask(client, REQUEST, LEAD, **credit(customer, case.id, "90.00", "cr-r1"))
    credit_id = asked["data"]["requestCredit"]["credit"]["id"]

    async def service_key() -> str:
        scopes = (Scope.CREDITS_APPROVE, Scope.CREDITS_READ, Scope.CUSTOMERS_READ)
        async with opened(linked_db) as keys:
            return (await keys.create("approval-bot", scopes))[1]

    service = {"Authorization": f"Bearer {asyncio.run(service_key())}"}
    for mutation, key in ((APPROVE, "ap-r1"), (REJECT, "rj-r1")):
        refused = ask(client, mutation, service, id=credit_id, key=key)["data"]
        [error] = next(iter(refused.values()))["userErrors"]
        assert error["code"] == "NOT_AN_APPROVER"
        assert error["message"] == (
            """a credit under the policy's EUR."Opsgraph B.V." rule is decided by a finance """
            "approver"
        )
    approved = ask(client, APPROVE, FINANCE, id=credit_id, key="ap-r2")["data"]["approveCredit"]
    assert approved["userErrors"] == []
    assert approved["credit"]["decidedBy"] == "finance-7"


PAGE = """query($first: Int!, $after: String) {
  creditRequests(status: REQUESTED, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id } }
  }
}"""


def test_the_queue_pages_in_the_database_newest_first(boxes: Sandboxes, gateway: Gateway) -> None:
    client = gateway()
    customer, case = breached(boxes)
    mine = [
        ask(client, REQUEST, LEAD, **credit(customer, case.id, amount, key))["data"][
            "requestCredit"
        ]["credit"]["id"]
        for amount, key in (("61.00", "cr-g1"), ("62.00", "cr-g2"), ("63.00", "cr-g3"))
    ]
    whole = ask(client, PAGE, FINANCE, first=200)["data"]["creditRequests"]
    everyone = [e["node"]["id"] for e in whole["edges"]]
    assert everyone[:3] == mine[::-1]  # the last requested first
    assert whole["totalCount"] == len(everyone) >= 3
    assert whole["pageInfo"] == {"hasNextPage": False, "endCursor": everyone[-1]}
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    engine = client.app.state.services.engine.sync_engine  # type: ignore[attr-defined]
    paged: list[str] = []
    after = None
    event.listen(engine, "before_cursor_execute", seen)
    try:
        while True:
            page = ask(client, PAGE, FINANCE, first=2, after=after)["data"]["creditRequests"]
            assert page["totalCount"] == len(everyone)
            paged += [e["node"]["id"] for e in page["edges"]]
            after = page["pageInfo"]["endCursor"]
            if not page["pageInfo"]["hasNextPage"]:
                break
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert paged == everyone  # the same order, each once
    listed = [s for s in statements if "FROM credit_requests" in s and "LIMIT" in s]
    assert len(listed) == -(-len(everyone) // 2)  # one LIMITed query a page
    unknown = ask(client, PAGE, FINANCE, first=2, after="cr_nothing")
    assert unknown["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert unknown["errors"][0]["message"] == "unknown cursor 'cr_nothing'"
    for id_, key in zip(mine, ("rj-g1", "rj-g2", "rj-g3"), strict=True):
        ask(client, REJECT, FINANCE, id=id_, key=key)
