"""graphql-cop's checks (dolevf/graphql-cop, lib/tests/), restated against the production
profile, since graphql-cop is not on the registries this project reaches. graphql-cop flags
the gateway when an attack is answered with data (or, for directives, with one error per
directive; for suggestions, with "Did you mean"; for GraphiQL, with its page; for trace
and debug modes, with tracing, an exception or a stack trace). Here each is refused, once,
with a typed code, and asks as an authenticated viewer: what an anonymous attacker gets is
401 before any of this (tests/gateway/auth)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.auth.scopes import Role
from gateway.http.csrf import MESSAGE as CSRF
from tests.gateway.conftest import Bare
from tests.identity import identity

ADMIN = identity().headers(Role.INTEGRATION_ADMIN)  # holds schema:read
CIRCULAR = (
    "query { __schema { types { fields { type { fields { type { fields { type { fields "
    "{ type { name } } } } } } } } } } }"
)


@pytest.fixture
def client(bare: Bare) -> TestClient:
    return bare()


def refused(body: Any, code: str, message: str) -> None:
    """One error, nothing executed."""
    assert "data" not in body
    assert [(e["extensions"], e["message"]) for e in body["errors"]] == [({"code": code}, message)]


def test_alias_overloading(client: TestClient) -> None:
    aliases = "".join(f"alias{n}:__typename \n" for n in range(101))
    body = client.post("/graphql", json={"query": "query { " + aliases + " }"}).json()
    refused(body, "ALIAS_LIMIT", "The document has 101 aliases; the limit is 15.")


def test_batch_queries(client: TestClient) -> None:
    batch = [{"query": "query { __typename }"}] * 11
    response = client.post("/graphql", json=batch)
    assert response.status_code == 400
    refused(
        response.json(),
        "BATCHING_NOT_ENABLED",
        "Batches are not supported: send one operation per request.",
    )


def test_directive_overloading(client: TestClient) -> None:
    query = "query { __typename @aa@aa@aa@aa@aa@aa@aa@aa@aa@aa }"
    body = client.post("/graphql", json={"query": query}).json()
    refused(
        body,
        "DIRECTIVE_LIMIT",
        "'__typename' has 10 directives; the limit is 3 on one field or fragment.",
    )


def test_field_duplication(client: TestClient) -> None:
    query = "query { " + "__typename \n" * 500 + "} "
    body = client.post("/graphql", json={"query": query}).json()
    refused(
        body,
        "DUPLICATE_FIELD_LIMIT",
        "'__typename' is selected 500 times in one selection set; the limit is 3.",
    )


def test_circular_introspection(client: TestClient) -> None:
    viewer = client.post("/graphql", json={"query": CIRCULAR}).json()
    refused(
        viewer,
        "INTROSPECTION_DISABLED",
        "Introspection is disabled: it needs the schema:read scope.",
    )
    # Whoever may introspect is held to graphql-core's introspection depth rule.
    admin = client.post("/graphql", json={"query": CIRCULAR}, headers=ADMIN).json()
    refused(admin, "DEPTH_LIMIT", "Maximum introspection depth exceeded")


def test_introspection(client: TestClient) -> None:
    query = "query cop { __schema { types { name fields { name } } } }"
    body = client.post("/graphql", json={"query": query}).json()
    refused(
        body, "INTROSPECTION_DISABLED", "Introspection is disabled: it needs the schema:read scope."
    )


def test_field_suggestions(client: TestClient) -> None:
    query = "query { __schema { directive } }"
    viewer = client.post("/graphql", json={"query": query}).json()
    refused(
        viewer,
        "INTROSPECTION_DISABLED",
        "Introspection is disabled: it needs the schema:read scope.",
    )
    admin = client.post("/graphql", json={"query": query}, headers=ADMIN).json()
    refused(
        admin, "GRAPHQL_VALIDATION_FAILED", "Cannot query field 'directive' on type '__Schema'."
    )
    typo = client.post("/graphql", json={"query": "{ custmers { totalCount } }"}).json()
    refused(typo, "GRAPHQL_VALIDATION_FAILED", "Cannot query field 'custmers' on type 'Query'.")


def test_get_based_queries(client: TestClient) -> None:
    response = client.get("/graphql", params={"query": "{__typename}"})
    assert response.status_code == 400
    refused(response.json(), "CSRF_PREVENTED", CSRF)


def test_get_based_mutations(client: TestClient) -> None:
    params = {"query": "mutation {__typename}"}
    response = client.get("/graphql", params=params)
    assert response.status_code == 400
    refused(response.json(), "CSRF_PREVENTED", CSRF)
    # Preflighted, a mutation over GET is still refused.
    preflighted = client.get("/graphql", params=params, headers={"apollo-require-preflight": "1"})
    assert preflighted.status_code == 405
    refused(preflighted.json(), "BAD_REQUEST", "A mutation is only accepted over POST.")


def test_url_encoded_post(client: TestClient) -> None:
    response = client.post("/graphql", data={"query": "query {__typename}"})
    assert response.status_code == 415
    refused(response.json(), "BAD_REQUEST", "A POST body must be application/json.")


def test_graphql_ide(client: TestClient) -> None:
    heuristics = ("graphiql.min.css", "GraphQL Playground", "GraphiQL", "graphql-playground")
    for path in ("/graphiql", "/playground", "/console", "/graphql"):
        page = client.get(path, headers={"accept": "text/html"})
        assert page.status_code in (400, 404)
        assert not any(word in page.text for word in heuristics)


def test_trace_and_debug_modes(client: TestClient) -> None:
    """Nothing turns on tracing or debugging: errors carry their code and no exception or
    stack trace, whatever the request asks."""
    asks = {"extensions": {"tracing": True, "debug": True}}
    for query, code in (
        ("qwerty cop { abc }", "GRAPHQL_PARSE_FAILED"),
        ("query cop { abc }", "GRAPHQL_VALIDATION_FAILED"),
        ('query cop { customer(id: "x") { id } }', "NOT_FOUND"),
    ):
        response = client.post("/graphql?debug=1", json={"query": query, **asks})
        body = response.json()
        assert [e["extensions"] for e in body["errors"]] == [{"code": code}]
        assert "extensions" not in body
        text = json.dumps(body).lower()
        assert "stacktrace" not in text and "exception" not in text and "traceback" not in text
    answered = client.post("/graphql?debug=1", json={"query": "query cop { __typename }", **asks})
    assert answered.json() == {"data": {"__typename": "Query"}}
