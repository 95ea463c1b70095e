"""Every request ends: a system that hangs costs the request no more than its deadline,
and a stale copy, when there is one, is served as soon as the system has failed once."""

from __future__ import annotations

from typing import Any

import httpx

from connectors.models import Case, SystemName
from tests.gateways import AUTH, Served, nodes
from tests.world import Sandboxes

BILLING, SUPPORT = SystemName.BILLING, SystemName.SUPPORT

# Invoices and subscriptions share one billing search: the shape every dashboard asks for.
QUERY = """query($id: ID!) { customer(id: $id) {
  name
  account { name }
  subscriptions { id source { stale cached } }
  invoices(first: 5) { totalCount }
  cases { edges { node { id source { stale cached } } } }
} }"""


def post(url: str, query: str, **variables: Any) -> dict[str, Any]:
    # The client's own timeout only bounds the test: a gateway that hangs fails it.
    response = httpx.post(
        f"{url}/graphql", json={"query": query, "variables": variables}, timeout=15, headers=AUTH
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def with_cases(boxes: Sandboxes) -> str:
    orgs = {c.organization_id for c in boxes.world.slice(SUPPORT) if isinstance(c, Case)}
    return next(c.id for c in boxes.world.customers if c.external_ids[SUPPORT] in orgs)


def test_a_hanging_billing_ends_at_the_request_deadline(boxes: Sandboxes, served: Served) -> None:
    url = served(request_deadline_s=1.5, connector={"timeout_s": 8, "cache_ttl_s": 0})
    customer = boxes.world.customers[0]
    boxes.faults(BILLING, hang_next=100, hang_s=60)
    body = post(url, QUERY, id=customer.id)
    data = body["data"]["customer"]
    assert data["name"] == customer.name
    assert data["account"] is not None and data["cases"] is not None
    assert data["subscriptions"] is None and data["invoices"] is None
    assert sorted((e["path"][-1], e["message"], e["extensions"]) for e in body["errors"]) == [
        (
            field,
            "billing did not answer before the request's deadline",
            {"code": "UPSTREAM_TIMEOUT", "system": "billing"},
        )
        for field in ("invoices", "subscriptions")
    ]
    # One search for both fields, sent once: the deadline left no time for a retry.
    assert boxes.requests()[BILLING] == {"GET /v1/invoices/search": 1}


def test_a_hanging_billing_serves_the_stale_copy_marked(boxes: Sandboxes, served: Served) -> None:
    url = served(request_deadline_s=1.5, connector={"timeout_s": 8, "cache_ttl_s": 0})
    customer = boxes.world.customers[0]
    fresh = post(url, QUERY, id=customer.id)["data"]["customer"]
    boxes.faults(BILLING, hang_next=100, hang_s=60)
    body = post(url, QUERY, id=customer.id)
    assert "errors" not in body
    data = body["data"]["customer"]
    assert [s["id"] for s in data["subscriptions"]] == [s["id"] for s in fresh["subscriptions"]]
    assert {(s["source"]["stale"], s["source"]["cached"]) for s in data["subscriptions"]} == {
        (True, True)
    }
    assert data["invoices"] == fresh["invoices"]
    billing_id = customer.external_ids[BILLING]
    as_of = {w["fetchedAt"] for w in body["extensions"]["warnings"]}
    assert len(as_of) == 1  # both came from the one search of the first request
    assert sorted(body["extensions"]["warnings"], key=lambda w: w["subject"]) == [
        {
            "code": "STALE_DATA",
            "message": f"billing is degraded (UPSTREAM_TIMEOUT): {subject} as of {min(as_of)}",
            "system": "billing",
            "subject": subject,
            "reason": "UPSTREAM_TIMEOUT",
            "fetchedAt": min(as_of),
        }
        for subject in (f"invoice records of {billing_id}", f"subscription records of {billing_id}")
    ]


def test_a_hanging_support_desk_serves_stale_cases_after_one_attempt(
    boxes: Sandboxes, served: Served
) -> None:
    url = served(request_deadline_s=30, connector={"timeout_s": 0.5, "cache_ttl_s": 0})
    customer = with_cases(boxes)
    post(url, QUERY, id=customer)
    boxes.faults(SUPPORT, hang_next=100, hang_s=60)
    boxes.reset_stats()
    body = post(url, QUERY, id=customer)
    assert {c["source"]["stale"] for c in nodes(body["data"]["customer"]["cases"])} == {True}
    assert sum(boxes.requests()[SUPPORT].values()) == 1
    assert [(w["system"], w["reason"]) for w in body["extensions"]["warnings"]] == [
        ("support", "UPSTREAM_TIMEOUT")
    ]
