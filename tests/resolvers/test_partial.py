"""When a system fails, the fields it owns are null, the rest of the answer is intact, and
errors[] says which system and why. A cached answer is served stale instead, marked so."""

from __future__ import annotations

from connectors.models import Case, SystemName
from tests.gateways import Gateway, graphql, nodes
from tests.world import Sandboxes

QUERY = """query($id: ID!) { customer(id: $id) {
  id name
  account { name source { system stale cached } }
  balance { receivable { amount } }
  cases { edges { node { id source { stale cached } } } }
  subscriptions { id }
} }"""


def first_with_cases(boxes: Sandboxes) -> str:
    orgs = {c.organization_id for c in boxes.world.slice(SystemName.SUPPORT) if isinstance(c, Case)}
    return next(c.id for c in boxes.world.customers if c.external_ids[SystemName.SUPPORT] in orgs)


def test_a_failing_system_nulls_only_its_fields(boxes: Sandboxes, gateway: Gateway) -> None:
    client = gateway(connector={"timeout_s": 2, "cache_ttl_s": 0})
    customer = first_with_cases(boxes)
    boxes.faults(SystemName.SUPPORT, error_rate=1.0, error_status=503)
    body = graphql(client, QUERY, id=customer)
    data = body["data"]["customer"]
    assert data["cases"] is None
    assert data["account"]["source"] == {"system": "CRM", "stale": False, "cached": False}
    assert data["balance"] is not None and data["subscriptions"] is not None
    assert body["errors"] == [
        {
            # The system and the kind of failure; what the system said stays in the log.
            "message": "support is unavailable",
            "locations": [{"line": 5, "column": 3}],
            "path": ["customer", "cases"],
            "extensions": {"code": "UPSTREAM_UNAVAILABLE", "system": "support"},
        }
    ]


def test_a_hanging_system_is_a_timeout(boxes: Sandboxes, gateway: Gateway) -> None:
    client = gateway(connector={"timeout_s": 0.3, "cache_ttl_s": 0})
    boxes.faults(SystemName.CRM, hang_next=10)
    body = graphql(client, QUERY, id=boxes.world.customers[0].id)
    assert body["data"]["customer"]["account"] is None
    assert body["data"]["customer"]["name"] == boxes.world.customers[0].name
    assert [e["extensions"] for e in body["errors"]] == [
        {"code": "UPSTREAM_TIMEOUT", "system": "crm"}
    ]


def test_stale_if_error_serves_the_last_answer_marked_stale(
    boxes: Sandboxes, gateway: Gateway
) -> None:
    client = gateway(connector={"timeout_s": 2, "cache_ttl_s": 0})
    customer = first_with_cases(boxes)
    fresh = graphql(client, QUERY, id=customer)["data"]["customer"]
    assert {c["source"]["stale"] for c in nodes(fresh["cases"])} == {False}
    boxes.faults(SystemName.SUPPORT, error_rate=1.0, error_status=500)
    boxes.reset_stats()
    body = graphql(client, QUERY, id=customer)
    assert "errors" not in body
    stale = nodes(body["data"]["customer"]["cases"])
    assert [c["id"] for c in stale] == [c["id"] for c in nodes(fresh["cases"])]
    assert {(c["source"]["stale"], c["source"]["cached"]) for c in stale} == {(True, True)}
    # Served after the first failure: retrying would only have delayed the same answer.
    assert sum(boxes.requests()[SystemName.SUPPORT].values()) == 1
    assert [(w["code"], w["system"], w["reason"]) for w in body["extensions"]["warnings"]] == [
        ("STALE_DATA", "support", "UPSTREAM_UNAVAILABLE")
    ]


def test_a_fresh_cache_answers_without_calling_upstream(boxes: Sandboxes, gateway: Gateway) -> None:
    client = gateway(connector={"timeout_s": 2, "cache_ttl_s": 300})
    customer = boxes.world.customers[1].id
    graphql(client, QUERY, id=customer)
    boxes.reset()
    body = graphql(client, QUERY, id=customer)
    assert body["data"]["customer"]["account"]["source"]["cached"] is True
    assert boxes.totals() == {s: 0 for s in boxes.totals()}


def test_an_open_breaker_is_reported_as_such(boxes: Sandboxes, gateway: Gateway) -> None:
    client = gateway(connector={"timeout_s": 2, "cache_ttl_s": 0})
    boxes.faults(SystemName.ERP, error_rate=1.0, error_status=502)
    codes = []
    for _ in range(3):  # 3 attempts per read: the breaker (threshold 5) opens on the second
        body = graphql(client, QUERY, id=boxes.world.customers[2].id)
        codes.append(body["errors"][0]["extensions"]["code"])
    assert codes[0] == "UPSTREAM_UNAVAILABLE"
    assert codes[-1] == "CIRCUIT_OPEN"
    systems = graphql(client, "{ systems { name breaker } }")["data"]["systems"]
    assert {"name": "ERP", "breaker": "OPEN"} in systems
