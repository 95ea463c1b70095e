"""Governed writes against the seeded sandboxes over real HTTP, with real RS256 tokens: each
mutation reaches the system that owns what it changes, exactly once per idempotency key,
answers with the changed object and its provenance, refuses what it cannot do in
``userErrors``, is audited, and leaves no stale copy in the cache."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from connectors.models import (
    Account,
    Case,
    CasePriority,
    CaseStatus,
    Plan,
    Subscription,
    SubscriptionStatus,
    SystemName,
)
from connectors.sandbox import fleet
from gateway.auth.scopes import Role
from gateway.storage.database import create_engine, sessions
from gateway.storage.tables import AuditEntry
from tests.gateways import Gateway, Served
from tests.identity import identity
from tests.world import Sandboxes

CRM = SystemName.CRM
LEAD = identity().headers(Role.SUPPORT_LEAD, subject="lead-1")
ADMIN = identity().headers(Role.INTEGRATION_ADMIN, subject="admin-1")

HEALTH = """mutation($input: AccountHealthInput!, $key: String!) {
  updateAccountHealth(input: $input, idempotencyKey: $key) {
    account { id healthScore source { system externalId } }
    userErrors { code message field system }
  }
}"""
LINK = """mutation($input: ExternalIdInput!, $key: String!) {
  linkExternalId(input: $input, idempotencyKey: $key) {
    customer { id externalIds { system id } }
    userErrors { code message field system }
  }
}"""
UNLINK = """mutation($input: UnlinkExternalIdInput!, $key: String!) {
  unlinkExternalId(input: $input, idempotencyKey: $key) {
    customer { id externalIds { system id } }
    userErrors { code message field system }
  }
}"""
SCORE = "query($id: ID!) { customer(id: $id) { account { healthScore } } }"


def ask(client: TestClient, query: str, headers: dict[str, str], **variables: Any) -> Any:
    response = client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def seeded_score(boxes: Sandboxes, account: str) -> int | None:
    found = next(r for r in boxes.world.slice(CRM) if isinstance(r, Account) and r.id == account)
    return found.health_score


@pytest.fixture
def crm_customer(boxes: Sandboxes, gateway: Gateway) -> Iterator[tuple[str, str]]:
    """A seeded customer's id and CRM account id; its seeded health score is written back
    afterwards, for the tests that compare whole 360s with the seed."""
    found = next(
        c
        for c in boxes.world.customers
        if CRM in c.external_ids and seeded_score(boxes, c.external_ids[CRM]) is not None
    )
    account = found.external_ids[CRM]
    yield found.id, account
    boxes.reset()
    score = seeded_score(boxes, account)
    restored = ask(gateway(), HEALTH, LEAD, **health(found.id, score or 0, uuid.uuid4().hex))
    assert restored["data"]["updateAccountHealth"]["account"]["healthScore"] == score


def crm_writes(boxes: Sandboxes) -> dict[str, int]:
    return {k: n for k, n in boxes.requests()[CRM].items() if not k.startswith("GET")}


def health(customer: str, score: int, key: str) -> dict[str, Any]:
    return {"input": {"customerId": customer, "score": score}, "key": key}


def test_a_health_update_reaches_the_crm_once_and_the_next_read_sees_it(
    boxes: Sandboxes, gateway: Gateway, crm_customer: tuple[str, str]
) -> None:
    client = gateway()
    customer, account = crm_customer
    before = ask(client, SCORE, LEAD, id=customer)["data"]["customer"]["account"]["healthScore"]
    score = 7 if before != 7 else 8
    boxes.reset_stats()
    body = ask(client, HEALTH, LEAD, **health(customer, score, "health-1"))
    assert body == {
        "data": {
            "updateAccountHealth": {
                "account": {
                    "id": account,
                    "healthScore": score,
                    "source": {"system": "CRM", "externalId": account},
                },
                "userErrors": [],
            }
        }
    }
    (patch,) = crm_writes(boxes).values()
    assert patch == 1
    # The cached account (read before the write) is gone: no TTL to wait for.
    assert ask(client, SCORE, LEAD, id=customer)["data"]["customer"]["account"] == {
        "healthScore": score
    }


def test_the_same_key_and_input_replay_the_answer_without_writing_again(
    boxes: Sandboxes, gateway: Gateway, crm_customer: tuple[str, str]
) -> None:
    client = gateway()
    customer, _ = crm_customer
    first = ask(client, HEALTH, LEAD, **health(customer, 55, "replay-1"))
    writes = crm_writes(boxes)
    again = ask(client, HEALTH, LEAD, **health(customer, 55, "replay-1"))
    assert again["data"] == first["data"]
    assert again["extensions"]["idempotency"] == [
        {"path": ["updateAccountHealth"], "key": "replay-1", "replayed": True}
    ]
    assert "idempotency" not in first.get("extensions", {})
    assert crm_writes(boxes) == writes


def test_the_same_key_with_other_input_is_refused(
    boxes: Sandboxes, gateway: Gateway, crm_customer: tuple[str, str]
) -> None:
    client = gateway()
    customer, _ = crm_customer
    ask(client, HEALTH, LEAD, **health(customer, 60, "reuse-1"))
    writes = crm_writes(boxes)
    body = ask(client, HEALTH, LEAD, **health(customer, 61, "reuse-1"))
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["IDEMPOTENCY_KEY_REUSED"]
    assert crm_writes(boxes) == writes


def test_keys_are_each_principals_own(
    boxes: Sandboxes, gateway: Gateway, crm_customer: tuple[str, str]
) -> None:
    client = gateway()
    customer, _ = crm_customer
    other = identity().headers(Role.SUPPORT_LEAD, subject="lead-2")
    ask(client, HEALTH, LEAD, **health(customer, 30, "shared-key"))
    body = ask(client, HEALTH, other, **health(customer, 31, "shared-key"))
    assert body["data"]["updateAccountHealth"]["account"]["healthScore"] == 31
    assert sum(crm_writes(boxes).values()) == 2


def test_bad_input_is_a_user_error_and_calls_nothing(
    boxes: Sandboxes, gateway: Gateway, crm_customer: tuple[str, str]
) -> None:
    client = gateway()
    customer, _ = crm_customer
    body = ask(client, HEALTH, LEAD, **health(customer, 101, "bad-1"))
    assert body == {
        "data": {
            "updateAccountHealth": {
                "account": None,
                "userErrors": [
                    {
                        "code": "BAD_USER_INPUT",
                        "message": "a health score is 0 to 100, not 101",
                        "field": "score",
                        "system": None,
                    }
                ],
            }
        }
    }
    unknown = ask(client, HEALTH, LEAD, **health("cust_nope", 10, "bad-2"))
    assert unknown["data"]["updateAccountHealth"]["userErrors"] == [
        {
            "code": "BAD_USER_INPUT",
            "message": "no customer with id 'cust_nope'",
            "field": "customerId",
            "system": None,
        }
    ]
    assert boxes.totals() == dict.fromkeys(boxes.totals(), 0)


def test_a_write_to_a_system_that_does_not_own_the_object_is_refused_before_it_is_sent(
    boxes: Sandboxes, gateway: Gateway, crm_customer: tuple[str, str], tmp_path: Path
) -> None:
    owners = Path("gateway/ownership.toml").read_text()
    owners = owners.replace('crm = ["account"]', "crm = []").replace(
        'billing = ["plan",', 'billing = ["account", "plan",'
    )
    (tmp_path / "ownership.toml").write_text(owners)
    client = gateway(ownership_file=tmp_path / "ownership.toml")
    customer, _ = crm_customer
    body = ask(client, HEALTH, LEAD, **health(customer, 20, "owner-1"))
    assert body["data"]["updateAccountHealth"] == {
        "account": None,
        "userErrors": [
            {
                "code": "OWNERSHIP_VIOLATION",
                "message": "account is owned by billing; crm may not write it",
                "field": None,
                "system": "CRM",
            }
        ],
    }
    assert boxes.totals() == dict.fromkeys(boxes.totals(), 0)


@pytest.mark.parametrize("role", [Role.VIEWER, Role.SUPPORT_AGENT, Role.FINANCE_APPROVER])
def test_only_a_role_with_accounts_write_updates_health(
    role: Role, boxes: Sandboxes, gateway: Gateway, crm_customer: tuple[str, str]
) -> None:
    client = gateway()
    customer, _ = crm_customer
    body = ask(client, HEALTH, identity().headers(role), **health(customer, 5, "role-1"))
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert boxes.totals() == dict.fromkeys(boxes.totals(), 0)


def test_no_mutation_runs_over_get(
    boxes: Sandboxes, gateway: Gateway, crm_customer: tuple[str, str]
) -> None:
    client = gateway()
    customer, _ = crm_customer
    variables = json.dumps(health(customer, 9, "get-1"))
    response = client.get(
        "/graphql",
        params={"query": HEALTH, "variables": variables},
        headers={**LEAD, "apollo-require-preflight": "true"},
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert boxes.totals() == dict.fromkeys(boxes.totals(), 0)


def test_a_write_is_audited_before_it_is_answered(
    boxes: Sandboxes, gateway: Gateway, crm_customer: tuple[str, str], linked_db: str
) -> None:
    client = gateway()
    customer, _ = crm_customer
    ask(client, HEALTH, LEAD, **health(customer, 44, "audit-1"))

    async def rows() -> list[AuditEntry]:
        engine = create_engine(linked_db)
        try:
            async with sessions(engine)() as session:
                found = await session.scalars(
                    select(AuditEntry).where(AuditEntry.action == "write.updateAccountHealth")
                )
                return list(found)
        finally:
            await engine.dispose()

    (row,) = [
        r for r in asyncio.run(rows()) if r.detail["variables"]["idempotencyKey"] == "audit-1"
    ]
    assert row.actor == "lead-1"
    assert row.detail["result"] == {"outcome": "done"}
    assert row.detail["variables"]["input"] == {"customerId": customer, "score": 44}


async def _concurrently(url: str, customer: str, count: int) -> list[Any]:
    async with httpx.AsyncClient(base_url=url, headers=LEAD, timeout=30) as client:
        body = {"query": HEALTH, "variables": health(customer, 77, "together-1")}
        answers = await asyncio.gather(*(client.post("/graphql", json=body) for _ in range(count)))
    return [a.json() for a in answers]


def test_ten_identical_writes_at_once_write_once(
    boxes: Sandboxes, served: Served, crm_customer: tuple[str, str]
) -> None:
    url = served()
    customer, _ = crm_customer
    answers = asyncio.run(_concurrently(url, customer, 10))
    assert sum(crm_writes(boxes).values()) == 1
    done = [a for a in answers if a.get("data")]
    busy = [a for a in answers if not a.get("data")]
    assert done and all(
        a["data"]["updateAccountHealth"]["account"]["healthScore"] == 77 for a in done
    )
    assert all(
        [e["extensions"]["code"] for e in a["errors"]] == ["IDEMPOTENCY_IN_PROGRESS"] for a in busy
    )


def test_a_write_whose_outcome_is_unknown_may_be_sent_again_with_its_key(
    boxes: Sandboxes, gateway: Gateway, crm_customer: tuple[str, str]
) -> None:
    client = gateway(connector={"timeout_s": 0.3}, request_deadline_s=2)
    customer, _ = crm_customer
    boxes.faults(CRM, hang_next=100, hang_s=60)
    body = ask(client, HEALTH, LEAD, **health(customer, 12, "unknown-1"))
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] in ("UPSTREAM_TIMEOUT", "CIRCUIT_OPEN")
    boxes.reset()
    client = gateway()  # a fresh breaker
    again = ask(client, HEALTH, LEAD, **health(customer, 12, "unknown-1"))
    assert again["data"]["updateAccountHealth"]["account"]["healthScore"] == 12
    assert "idempotency" not in again.get("extensions", {})


def test_linking_and_unlinking_an_external_id(boxes: Sandboxes, gateway: Gateway) -> None:
    client = gateway()
    first, second = boxes.world.customers[0], boxes.world.customers[1]
    unlinked = ask(
        client, UNLINK, ADMIN, input={"customerId": first.id, "system": "CRM"}, key="unlink-1"
    )["data"]["unlinkExternalId"]
    assert unlinked["userErrors"] == []
    assert "CRM" not in [x["system"] for x in unlinked["customer"]["externalIds"]]
    taken = second.external_ids[CRM]
    conflict = ask(
        client, LINK, ADMIN,
        input={"customerId": first.id, "system": "CRM", "externalId": taken}, key="link-1",
    )["data"]["linkExternalId"]  # fmt: skip
    assert conflict["userErrors"] == [
        {
            "code": "CONFLICT",
            "message": f"'{taken}' in crm is customer {second.id}",
            "field": None,
            "system": None,
        }
    ]
    linked = ask(
        client, LINK, ADMIN,
        input={"customerId": first.id, "system": "CRM", "externalId": first.external_ids[CRM]},
        key="link-2",
    )["data"]["linkExternalId"]  # fmt: skip
    assert linked["userErrors"] == []
    assert {"system": "CRM", "id": first.external_ids[CRM]} in linked["customer"]["externalIds"]
    # Twice: the second time there is nothing to forget.
    unlink = {"customerId": second.id, "system": "SUPPORT"}
    ask(client, UNLINK, ADMIN, input=unlink, key="unlink-2")
    missing = ask(client, UNLINK, ADMIN, input=unlink, key="unlink-3")["data"]["unlinkExternalId"]
    assert missing == {
        "customer": None,
        "userErrors": [
            {
                "code": "NOT_FOUND",
                "message": f"{second.id} has no id in support",
                "field": None,
                "system": None,
            }
        ],
    }
    relink = {**unlink, "externalId": second.external_ids[SystemName.SUPPORT]}
    assert (
        ask(client, LINK, ADMIN, input=relink, key="link-3")["data"]["linkExternalId"]["userErrors"]
        == []
    )
    assert boxes.totals() == dict.fromkeys(boxes.totals(), 0)


ESCALATE = """mutation($input: EscalateCaseInput!, $key: String!) {
  escalateCase(input: $input, idempotencyKey: $key) {
    case { id priority status source { system externalId } }
    userErrors { code message field system }
  }
}"""
CASES = (
    "query($id: ID!) { customer(id: $id) { cases(first: 50) { edges { node { id priority } } } } }"
)
AGENT = identity().headers(Role.SUPPORT_AGENT, subject="agent-1")


@pytest.fixture
def open_case(boxes: Sandboxes) -> Iterator[tuple[str, Case]]:
    """A seeded customer's id and one of its open cases of normal or low priority; the
    case is seeded again afterwards, as it was."""
    customer, case = next(
        (c.id, x)
        for c in boxes.world.customers
        for x in boxes.world.slice(SystemName.SUPPORT)
        if isinstance(x, Case)
        and x.organization_id == c.external_ids.get(SystemName.SUPPORT)
        and x.status in (CaseStatus.NEW, CaseStatus.OPEN)
        and x.priority in (CasePriority.LOW, CasePriority.NORMAL)
    )
    yield customer, case
    fleet.seed(boxes.admin[SystemName.SUPPORT], [case])


def escalation(customer: str, case: str, priority: str, key: str) -> dict[str, Any]:
    return {
        "input": {"customerId": customer, "caseId": case, "priority": priority, "reason": "VIP"},
        "key": key,
    }


def test_an_agent_escalates_a_case_and_the_next_read_sees_it(
    boxes: Sandboxes, gateway: Gateway, open_case: tuple[str, Case]
) -> None:
    client = gateway()
    customer, case = open_case
    ask(client, CASES, AGENT, id=customer)  # the cases are cached now
    body = ask(client, ESCALATE, AGENT, **escalation(customer, case.id, "URGENT", "esc-1"))
    assert body == {
        "data": {
            "escalateCase": {
                "case": {
                    "id": case.id,
                    "priority": "URGENT",
                    "status": case.status.name,
                    "source": {"system": "SUPPORT", "externalId": case.id},
                },
                "userErrors": [],
            }
        }
    }
    writes = {k: n for k, n in boxes.requests()[SystemName.SUPPORT].items() if k.startswith("PUT")}
    assert list(writes.values()) == [1]
    cases = ask(client, CASES, AGENT, id=customer)["data"]["customer"]["cases"]["edges"]
    assert {"id": case.id, "priority": "URGENT"} in [e["node"] for e in cases]
    # Escalated already: the same priority again is no escalation.
    again = ask(client, ESCALATE, AGENT, **escalation(customer, case.id, "URGENT", "esc-2"))
    assert again["data"]["escalateCase"]["userErrors"] == [
        {
            "code": "BAD_USER_INPUT",
            "message": f"case {case.id} is URGENT already",
            "field": "priority",
            "system": None,
        }
    ]


def test_a_case_of_another_customer_is_not_escalated(
    boxes: Sandboxes, gateway: Gateway, open_case: tuple[str, Case]
) -> None:
    client = gateway()
    customer, case = open_case
    other = next(c.id for c in boxes.world.customers if c.id != customer)
    body = ask(client, ESCALATE, AGENT, **escalation(other, case.id, "HIGH", "esc-3"))
    assert body["data"]["escalateCase"] == {
        "case": None,
        "userErrors": [
            {
                "code": "BAD_USER_INPUT",
                "message": f"{other} has no case '{case.id}'",
                "field": "caseId",
                "system": None,
            }
        ],
    }
    assert not [k for k in boxes.requests()[SystemName.SUPPORT] if not k.startswith("GET")]


def test_a_viewer_escalates_nothing(
    boxes: Sandboxes, gateway: Gateway, open_case: tuple[str, Case]
) -> None:
    customer, case = open_case
    body = ask(gateway(), ESCALATE, LEAD | identity().headers(Role.VIEWER),
               **escalation(customer, case.id, "HIGH", "esc-4"))  # fmt: skip
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert boxes.totals() == dict.fromkeys(boxes.totals(), 0)


CHANGE = """mutation($input: ChangeSubscriptionPlanInput!, $key: String!) {
  changeSubscriptionPlan(input: $input, idempotencyKey: $key) {
    subscription { id status plan { id } source { system externalId } }
    userErrors { code message field system }
  }
}"""
CANCEL = """mutation($input: CancelSubscriptionInput!, $key: String!) {
  cancelSubscription(input: $input, idempotencyKey: $key) {
    subscription { id status plan { id } }
    userErrors { code message field system }
  }
}"""
PLANS = "query($id: ID!) { customer(id: $id) { subscriptions { id status plan { id } } } }"
FINANCE = identity().headers(Role.FINANCE_APPROVER, subject="finance-1")
BILLING = SystemName.BILLING


@pytest.fixture
def subscribed(boxes: Sandboxes) -> Iterator[tuple[str, Subscription, str]]:
    """A seeded customer's id, one of its active subscriptions and another plan's id; the
    subscription is seeded again afterwards, as it was."""
    plans = [r.id for r in boxes.world.slice(BILLING) if isinstance(r, Plan)]
    customer, subscription = next(
        (c.id, s)
        for c in boxes.world.customers
        for s in boxes.world.slice(BILLING)
        if isinstance(s, Subscription)
        and s.customer_id == c.external_ids.get(BILLING)
        and s.status is SubscriptionStatus.ACTIVE
    )
    other = next(p for p in plans if p != subscription.plan_id)
    yield customer, subscription, other
    fleet.seed(boxes.admin[BILLING], [subscription])


def billing_writes(boxes: Sandboxes) -> dict[str, int]:
    return {k: n for k, n in boxes.requests()[BILLING].items() if not k.startswith("GET")}


def test_finance_moves_a_subscription_to_another_plan_once(
    boxes: Sandboxes, gateway: Gateway, subscribed: tuple[str, Subscription, str]
) -> None:
    client = gateway()
    customer, subscription, plan = subscribed
    ask(client, PLANS, FINANCE, id=customer)  # cached now
    change = {
        "input": {"customerId": customer, "subscriptionId": subscription.id, "planId": plan,
                  "proration": "NONE"},
        "key": "plan-1",
    }  # fmt: skip
    body = ask(client, CHANGE, FINANCE, **change)
    assert body == {
        "data": {
            "changeSubscriptionPlan": {
                "subscription": {
                    "id": subscription.id,
                    "status": "ACTIVE",
                    "plan": {"id": plan},
                    "source": {"system": "BILLING", "externalId": subscription.id},
                },
                "userErrors": [],
            }
        }
    }
    assert billing_writes(boxes) == {f"POST /v1/subscriptions/{subscription.id}": 1}
    again = ask(client, CHANGE, FINANCE, **change)
    assert again["data"] == body["data"]
    assert billing_writes(boxes) == {f"POST /v1/subscriptions/{subscription.id}": 1}
    seen = ask(client, PLANS, FINANCE, id=customer)["data"]["customer"]["subscriptions"]
    assert {"id": subscription.id, "status": "ACTIVE", "plan": {"id": plan}} in seen
    same = {**change, "key": "plan-2"}
    assert ask(client, CHANGE, FINANCE, **same)["data"]["changeSubscriptionPlan"]["userErrors"] == [
        {
            "code": "BAD_USER_INPUT",
            "message": f"{subscription.id} is on {plan} already",
            "field": "planId",
            "system": None,
        }
    ]


def test_a_plan_the_catalog_lacks_is_refused_before_billing_is_written(
    boxes: Sandboxes, gateway: Gateway, subscribed: tuple[str, Subscription, str]
) -> None:
    client = gateway()
    customer, subscription, _ = subscribed
    change = {"customerId": customer, "subscriptionId": subscription.id, "planId": "price_x"}
    body = ask(client, CHANGE, FINANCE, input=change, key="plan-3")
    assert body["data"]["changeSubscriptionPlan"]["userErrors"] == [
        {
            "code": "BAD_USER_INPUT",
            "message": "no plan 'price_x' in the catalog",
            "field": "planId",
            "system": None,
        }
    ]
    assert billing_writes(boxes) == {}


def test_a_subscription_is_cancelled_at_period_end_then_refused_once_cancelled_now(
    boxes: Sandboxes, gateway: Gateway, subscribed: tuple[str, Subscription, str]
) -> None:
    client = gateway()
    customer, subscription, _ = subscribed
    cancel = {"customerId": customer, "subscriptionId": subscription.id}
    later = ask(client, CANCEL, FINANCE, input={**cancel, "atPeriodEnd": True}, key="c-1")
    assert later["data"]["cancelSubscription"]["subscription"]["status"] == "ACTIVE"
    now = ask(client, CANCEL, FINANCE, input={**cancel, "atPeriodEnd": False}, key="c-2")
    assert now["data"]["cancelSubscription"]["subscription"]["status"] == "CANCELED"
    again = ask(client, CANCEL, FINANCE, input={**cancel, "atPeriodEnd": False}, key="c-3")
    assert again["data"]["cancelSubscription"]["userErrors"] == [
        {
            "code": "BAD_USER_INPUT",
            "message": f"{subscription.id} is canceled already",
            "field": "subscriptionId",
            "system": None,
        }
    ]
    assert sum(billing_writes(boxes).values()) == 2


def test_support_cannot_change_plans(
    boxes: Sandboxes, gateway: Gateway, subscribed: tuple[str, Subscription, str]
) -> None:
    customer, subscription, plan = subscribed
    change = {"customerId": customer, "subscriptionId": subscription.id, "planId": plan}
    body = ask(gateway(), CHANGE, LEAD, input=change, key="plan-4")
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert boxes.totals() == dict.fromkeys(boxes.totals(), 0)
