"""Abuse limits: every refusal has its status, its code and its message, comes before the
work it guards (no system is called, nothing is resolved), and leaves the dashboards'
documents alone: the customer 360 page of 50 customers passes every default."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query, parse
from starlette.testclient import TestClient

from gateway.auth.scopes import Role
from gateway.extensions import operation_limits
from gateway.extensions.operation_limits import Checked
from gateway.limits.cost import estimate
from gateway.limits.document import check_document
from gateway.limits.errors import CostLimit
from gateway.persisted.manifest import operations
from gateway.schema import build_schema
from gateway.settings import LimitSettings
from tests.gateway.conftest import Bare
from tests.gateways import Gateway, nodes
from tests.identity import identity
from tests.world import Sandboxes

BODIES = {operation.name: operation.body for operation in operations()}
PAGE = BODIES["CustomersPage"]
GRAPHQL_RESPONSE = {"accept": "application/graphql-response+json"}


def nested(levels: int) -> str:
    return "{ " + "a { " * (levels - 1) + "a" + " }" * levels


def aliases(count: int) -> str:
    return "{ " + " ".join(f"a{n}: __typename" for n in range(count)) + " }"


CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    "1,001 tokens": (
        {"query": "{ " + "__typename " * 999 + "}"},
        "TOKEN_LIMIT", "The document has more than 1000 tokens, the limit.",
    ),
    "1,000 tokens of comments": (
        {"query": "{ __typename }" + "\n#" * 1000},
        "TOKEN_LIMIT", "The document has more than 1000 tokens, the limit.",
    ),
    "16 aliases": (
        {"query": aliases(16)},
        "ALIAS_LIMIT", "The document has 16 aliases; the limit is 15.",
    ),
    "8 aliases in a fragment spread twice": (
        {"query": "{ ...F ... on Query { ...F } } fragment F on Query " + aliases(8)},
        "ALIAS_LIMIT", "The document has 16 aliases; the limit is 15.",
    ),
    "4 directives on a field": (
        {"query": "{ __typename" + " @skip(if: false)" * 4 + " }"},
        "DIRECTIVE_LIMIT",
        "'__typename' has 4 directives; the limit is 3 on one field or fragment.",
    ),
    "51 directives in the document": (
        {"query": "{ " + " ".join(f"a{n}: __typename @skip(if: false)" for n in range(51)) + " }"},
        "DIRECTIVE_LIMIT", "The document has more than 50 directives, the limit.",
    ),
    "one field 4 times in a selection set": (
        {"query": "{ __typename __typename __typename __typename }"},
        "DUPLICATE_FIELD_LIMIT",
        "'__typename' is selected 4 times in one selection set; the limit is 3.",
    ),
    "fields 11 deep": (
        {"query": nested(11)},
        "DEPTH_LIMIT", "The document nests fields more than 10 deep, the limit.",
    ),
    "fields 11 deep through a fragment": (
        {"query": "{ a { a { a { a { a { ...F } } } } } } fragment F on T " + nested(6)},
        "DEPTH_LIMIT", "The document nests fields more than 10 deep, the limit.",
    ),
    "201 _entities representations": (
        {
            "query": "query($r: [_Any!]!) { _entities(representations: $r) { __typename } }",
            "variables": {"r": [{"__typename": "Customer", "id": f"c{n}"} for n in range(201)]},
        },
        "ENTITIES_LIMIT", "_entities is given 201 representations; the limit is 200 a request.",
    ),
    "a page of 200 customer 360s": (
        {"query": PAGE, "variables": {"first": 200}},
        "COST_LIMIT", "The operation's estimated cost is 95802; the limit is 30000.",
    ),
}  # fmt: skip


@pytest.mark.parametrize(("body", "code", "message"), CASES.values(), ids=CASES)
def test_a_document_over_a_limit_is_refused_before_validation(
    bare: Bare, body: dict[str, Any], code: str, message: str
) -> None:
    client = bare()
    for headers, status in (({}, 200), (GRAPHQL_RESPONSE, 400)):
        response = client.post("/graphql", json=body, headers=headers)
        assert response.status_code == status
        assert response.json() == {"errors": [{"message": message, "extensions": {"code": code}}]}


def test_the_customer_360_page_of_50_passes_every_limit(boxes: Sandboxes, gateway: Gateway) -> None:
    client = gateway()
    response = client.post("/graphql", json={"query": PAGE, "variables": {"first": 50}})
    body = response.json()
    assert response.status_code == 200 and "errors" not in body
    customers = nodes(body["data"]["customers"])
    assert [c["id"] for c in customers] == sorted(c.id for c in boxes.world.customers)


def test_the_customer_360_page_is_9_deep_and_costs_23952_at_50() -> None:
    document, schema = parse(PAGE), build_schema()._schema
    assert estimate(schema, document, {"first": 50}, default_list_size=10) == 23_952
    assert estimate(schema, document, {"first": 10}, default_list_size=10) == 4_792
    check_document(document, {"first": 50}, LimitSettings(max_depth=9))
    with pytest.raises(Exception, match="more than 8 deep"):
        check_document(document, {"first": 50}, LimitSettings(max_depth=8))


def test_the_cost_follows_first_and_the_list_size_default() -> None:
    schema = build_schema()._schema
    one_level = "{ customers(first: 7) { edges { node { id externalIds { id } } } } }"
    # customers 1 + 7 edges x (edge 1 + node 1 + 10 externalIds x 1)
    assert estimate(schema, parse(one_level), None, default_list_size=10) == 1 + 7 * 12
    assert estimate(schema, parse(one_level), None, default_list_size=3) == 1 + 7 * 5
    by_default = "{ customers { edges { node { id } } } }"  # first: 20 by default
    assert estimate(schema, parse(by_default), None, default_list_size=10) == 1 + 20 * 2
    variable = "query($n: Int!) { customers(first: $n) { totalCount } }"
    assert estimate(schema, parse(variable), {"n": 3}, default_list_size=10) == 1
    # Introspection and __typename cost nothing.
    assert estimate(schema, parse("{ __typename __schema { types { name } } }"), None, 10) == 0


def test_a_document_that_passed_is_not_walked_again_with_the_same_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    schema = build_schema()._schema
    walks: list[object] = []
    monkeypatch.setattr(operation_limits, "check_document", lambda d, v, limits: walks.append(v))
    checked = Checked(LimitSettings(max_cost=1_000), size=2)
    query = "query($n: Int!) { customers(first: $n) { edges { node { id } } } }"
    costs = [checked.cost(schema, query, parse(query), {"n": n}) for n in (3, 3, 4, 3, 4)]
    assert costs == [7, 7, 9, 7, 9]
    assert walks == [{"n": 3}, {"n": 4}]  # each pair of text and variables once
    for n in (5, 6):  # two more, in a memory of two: n=3 is walked again
        checked.cost(schema, query, parse(query), {"n": n})
    checked.cost(schema, query, parse(query), {"n": 3})
    assert walks == [{"n": 3}, {"n": 4}, {"n": 5}, {"n": 6}, {"n": 3}]


def test_a_document_over_a_limit_is_refused_every_time() -> None:
    schema = build_schema()._schema
    checked = Checked(LimitSettings(max_cost=10))
    query = "{ customers(first: 50) { edges { node { id } } } }"
    for _ in range(2):
        with pytest.raises(CostLimit, match="estimated cost is 101; the limit is 10"):
            checked.cost(schema, query, parse(query), None)


def test_refused_entities_resolve_none(boxes: Sandboxes, gateway: Gateway) -> None:
    client = gateway()
    query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Customer { name } } }"
    customer = {"__typename": "Customer", "id": boxes.world.customers[0].id}
    refused = client.post("/graphql", json={"query": query, "variables": {"r": [customer] * 201}})
    assert refused.json()["errors"][0]["extensions"] == {"code": "ENTITIES_LIMIT"}
    assert boxes.totals() == dict.fromkeys(boxes.admin, 0)
    answered = client.post("/graphql", json={"query": query, "variables": {"r": [customer] * 200}})
    assert answered.json()["data"]["_entities"] == [{"name": boxes.world.customers[0].name}] * 200


def test_introspection_for_schema_read_is_not_held_to_the_depth_limit(bare: Bare) -> None:
    """GraphiQL's introspection query nests fields deeper than the limit; graphql-core's
    introspection depth rule bounds introspection instead."""
    client = bare()
    admin = identity().headers(Role.INTEGRATION_ADMIN)
    response = client.post("/graphql", json={"query": get_introspection_query()}, headers=admin)
    assert response.status_code == 200
    assert "errors" not in response.json()
    assert response.json()["data"]["__schema"]["queryType"]["name"] == "Query"


def test_a_body_over_2_mb_is_refused_before_it_is_read(bare: Bare) -> None:
    client = bare()
    query = "{ __typename }" + " " * 2_000_000
    for content in (
        json.dumps({"query": query}).encode(),
        iter([b'{"query": "', b" " * 2_000_000]),
    ):
        response = client.post(
            "/graphql", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert response.headers["connection"] == "close"
        assert response.json() == {
            "errors": [
                {
                    "message": "The request body is larger than 2000000 bytes, the limit.",
                    "extensions": {"code": "REQUEST_TOO_LARGE"},
                }
            ]
        }


def test_a_body_of_2_mb_is_read(bare: Bare) -> None:
    padding = 2_000_000 - len(json.dumps({"query": "{ __typename }"}))
    body = json.dumps({"query": "{ __typename }" + " " * padding}).encode()
    assert len(body) == 2_000_000
    response = bare().post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.json() == {"data": {"__typename": "Query"}}


def rate_limited(response: httpx.Response, message: str) -> None:
    wait = response.headers["retry-after"]
    assert response.status_code == 429 and 1 <= int(wait) <= 60
    assert response.json() == {
        "errors": [
            {"message": f"{message}; retry after {wait}s.", "extensions": {"code": "RATE_LIMITED"}}
        ]
    }


def test_a_principal_over_its_request_rate_is_answered_429(bare: Bare) -> None:
    client = bare(limits={"rate_limit": "3/minute"})
    typename = {"query": "{ __typename }"}
    assert [client.post("/graphql", json=typename).status_code for _ in range(3)] == [200] * 3
    rate_limited(client.post("/graphql", json=typename), "Too many requests: the limit is 3/minute")
    # Another principal has windows of its own.
    other = identity().headers(Role.VIEWER, subject="another-user")
    assert client.post("/graphql", json=typename, headers=other).status_code == 200


def test_a_principal_over_its_cost_budget_is_answered_429(bare: Bare) -> None:
    client = bare(limits={"cost_budget": "30000/minute"})
    page = {"query": PAGE, "variables": {"first": 50}}  # 23,952
    assert client.post("/graphql", json=page).json()["data"]["customers"]["totalCount"] == 0
    rate_limited(
        client.post("/graphql", json=page), "The cost budget is spent: the limit is 30000/minute"
    )
    # What is left of the budget still runs cheaper operations.
    assert client.post("/graphql", json={"query": "{ systems { name } }"}).status_code == 200


def test_a_cost_budget_smaller_than_an_operation_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="must allow one operation of max_cost"):
        LimitSettings(cost_budget="100/minute", max_cost=200)


def test_replicas_share_the_windows_in_redis(bare: Bare, redis_url: str) -> None:
    replicas = [bare(redis_url=redis_url, limits={"rate_limit": "3/minute"}) for _ in range(2)]
    typename = {"query": "{ __typename }"}
    statuses = [replicas[n % 2].post("/graphql", json=typename).status_code for n in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_without_redis_the_windows_are_kept_in_process(bare: Bare) -> None:
    client = bare(redis_url="redis://127.0.0.1:1/0", limits={"rate_limit": "2/minute"})
    typename = {"query": "{ __typename }"}
    statuses = [client.post("/graphql", json=typename).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_limits_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, bare: Bare) -> None:
    monkeypatch.setenv("OPSGRAPH_LIMITS__MAX_ALIASES", "2")
    client: TestClient = bare()
    refused = client.post("/graphql", json={"query": aliases(3)})
    assert refused.json()["errors"][0]["message"] == "The document has 3 aliases; the limit is 2."
