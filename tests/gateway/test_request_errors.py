"""Requests the gateway cannot run are answered as GraphQL errors: JSON, a code, the status
the GraphQL-over-HTTP spec asks for (for ``application/json`` and for
``application/graphql-response+json``), and never a 500 or a text body."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from connectors.sandbox.serve import serve_in_thread
from gateway.app import create_app
from gateway.auth.scopes import Role
from gateway.settings import load_settings
from gateway.storage.migrate import upgrade
from tests.conftest import unavailable
from tests.gateways import AUTH
from tests.identity import identity

JS = Path(__file__).parent.parent / "js"
TOO_DEEP = "The request nests JSON deeper than 64 levels."
ENTITIES = "query($r: [_Any!]!) { _entities(representations: $r) { __typename } }"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('gw') / 'opsgraph.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="module")
def client(database: str) -> Iterator[TestClient]:
    settings = load_settings(database_url=database, auth=identity().settings())
    with TestClient(create_app(settings), headers=AUTH) as client:
        yield client


def post(body: bytes, content_type: str | None = "application/json") -> dict[str, Any]:
    headers = {} if content_type is None else {"content-type": content_type}
    return {"method": "POST", "content": body, "headers": headers}


def post_json(body: object) -> dict[str, Any]:
    return post(json.dumps(body).encode())


# A GET that shows it was preflighted (gateway.http.csrf).
PREFLIGHT = {"apollo-require-preflight": "true"}


def get(**params: str) -> dict[str, Any]:
    headers = {"accept": "application/json", **PREFLIGHT}
    return {"method": "GET", "params": params, "headers": headers}


def nested(levels: int) -> list[Any]:
    """A list ``levels`` deep: ``[]`` is one level."""
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


TWO_OPERATIONS = "query A { __typename } query B { __typename }"
CUSTOMER = "query($id: ID!) { customer(id: $id) { id } }"
NOT_AN_OBJECT = "The request body must be a JSON object."
BAD_REQUEST, BAD_USER_INPUT = "BAD_REQUEST", "BAD_USER_INPUT"
UNRESOLVED = "OPERATION_RESOLUTION_FAILURE"
LONE_SURROGATE = "The request holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text."

# (request, status, code, message); each of these was a text/plain 400, a 500, or (the
# last ones) an answer with the wrong code, a data entry or the first operation's data.
CASES = {
    "malformed JSON": (post(b'{"query":'), 400, BAD_REQUEST, "The request body is not valid JSON."),
    "empty body": (post(b""), 400, BAD_REQUEST, "The request body is empty."),
    "text/plain body": (
        post(b'{"query": "{ __typename }"}', "text/plain"),
        415, BAD_REQUEST, "A POST body must be application/json.",
    ),
    "no content type": (
        post(b'{"query": "{ __typename }"}', None),
        415, BAD_REQUEST, "A POST body must be application/json.",
    ),
    "a batch": (
        post_json([{"query": "{ __typename }"}]),
        400, "BATCHING_NOT_ENABLED", "Batches are not supported: send one operation per request.",
    ),
    "a JSON string": (post(b'"hello"'), 400, BAD_REQUEST, NOT_AN_OBJECT),
    "JSON null": (post(b"null"), 400, BAD_REQUEST, NOT_AN_OBJECT),
    "a JSON number": (post(b"42"), 400, BAD_REQUEST, NOT_AN_OBJECT),
    "no query": (post_json({}), 400, BAD_REQUEST, "The request has no query."),
    "an empty query": (post_json({"query": ""}), 400, BAD_REQUEST, "The request has no query."),
    "a query that is not a string": (
        post_json({"query": 1}), 400, BAD_REQUEST, "query must be a string.",
    ),
    "an operationName that is not a string": (
        post_json({"query": "{ __typename }", "operationName": 1}),
        400, BAD_REQUEST, "operationName must be a string.",
    ),
    "variables that are a string": (
        post_json({"query": "{ __typename }", "variables": "x"}),
        400, BAD_REQUEST, "variables must be a JSON object.",
    ),
    "variables that are an array": (
        post_json({"query": "{ __typename }", "variables": [7]}),
        400, BAD_REQUEST, "variables must be a JSON object.",
    ),
    "extensions that are not an object": (
        post_json({"query": "{ __typename }", "extensions": "x"}),
        400, BAD_REQUEST, "extensions must be a JSON object.",
    ),
    "GET without a query": (get(), 400, BAD_REQUEST, "The request has no query."),
    "GET variables that are not JSON": (
        get(query="{ __typename }", variables="{"),
        400, BAD_REQUEST, "variables is not valid JSON.",
    ),
    "GET extensions that are not JSON": (
        get(query="{ __typename }", extensions="{"),
        400, BAD_REQUEST, "extensions is not valid JSON.",
    ),
    "GET variables that are not an object": (
        get(query="{ __typename }", variables="[1]"),
        400, BAD_REQUEST, "variables must be a JSON object.",
    ),
    "variables 5,000 deep": (
        post(b'{"query": "{ __typename }", "variables": {"v": %s}}' % (b"[" * 5000 + b"]" * 5000)),
        400, BAD_USER_INPUT, TOO_DEEP,
    ),
    "variables 65 deep": (
        post_json({"query": ENTITIES, "variables": {"r": nested(64)}}),
        400, BAD_USER_INPUT, TOO_DEEP,
    ),
    "extensions 65 deep": (
        post_json({"query": "{ __typename }", "extensions": {"e": nested(64)}}),
        400, BAD_USER_INPUT, TOO_DEEP,
    ),
    "a lone surrogate in a variable": (
        post(b'{"query": "%s", "variables": {"id": "\\ud800"}}' % CUSTOMER.encode()),
        400, BAD_USER_INPUT, LONE_SURROGATE,
    ),
    "a lone low surrogate in a GET variable's key": (
        get(query=CUSTOMER, variables='{"\\uDC00": "x"}'),
        400, BAD_USER_INPUT, LONE_SURROGATE,
    ),
    "two operations and no operationName": (
        post_json({"query": TWO_OPERATIONS}),
        400, UNRESOLVED, "Must provide operation name if query contains multiple operations.",
    ),
    "an unknown operationName": (
        post_json({"query": TWO_OPERATIONS, "operationName": "C"}),
        400, UNRESOLVED, "Unknown operation named 'C'.",
    ),
    "a document without an operation": (
        post_json({"query": "fragment F on Query { __typename }"}),
        400, UNRESOLVED, "Must provide an operation.",
    ),
    "a document that does not parse": (
        post_json({"query": "{"}),
        200, "GRAPHQL_PARSE_FAILED", "Syntax Error: Expected Name, found <EOF>.",
    ),
    "a document that is not valid": (
        post_json({"query": "{ zzz }"}),
        200, "GRAPHQL_VALIDATION_FAILED", "Cannot query field 'zzz' on type 'Query'.",
    ),
    "a variable of the wrong type": (
        post_json({"query": CUSTOMER, "variables": {"id": True}}),
        200, BAD_USER_INPUT, "Variable '$id' has invalid value: ID cannot represent value: True",
    ),
    "a required variable left out": (
        post_json({"query": CUSTOMER}),
        200, BAD_USER_INPUT,
        "Variable '$id' has invalid value: Expected a value of non-null type 'ID!' to be provided.",
    ),
}  # fmt: skip


@pytest.mark.parametrize(("request_", "status", "code", "message"), CASES.values(), ids=CASES)
def test_a_request_error_is_a_graphql_error_with_its_status(
    client: TestClient, request_: dict[str, Any], status: int, code: str, message: str
) -> None:
    response = client.request(url="/graphql", **request_)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert "data" not in body  # nothing was executed
    assert [(e["extensions"]["code"], e["message"]) for e in body["errors"]] == [(code, message)]


@pytest.mark.parametrize(("request_", "status", "code", "message"), CASES.values(), ids=CASES)
def test_with_graphql_response_json_a_request_that_ran_nothing_is_a_4xx(
    client: TestClient, request_: dict[str, Any], status: int, code: str, message: str
) -> None:
    accept = {"accept": "application/graphql-response+json"}
    request_ = {**request_, "headers": {**request_["headers"], **accept}}
    response = client.request(url="/graphql", **request_)
    assert response.status_code == (400 if status == 200 else status)
    assert response.headers["content-type"] == "application/graphql-response+json"
    body = response.json()
    assert [(e["extensions"]["code"], e["message"]) for e in body["errors"]] == [(code, message)]


def test_a_refused_request_carries_only_message_and_code(client: TestClient) -> None:
    response = client.post("/graphql", content=b"[]", headers={"content-type": "application/json"})
    assert response.json() == {
        "errors": [
            {
                "message": "Batches are not supported: send one operation per request.",
                "extensions": {"code": "BATCHING_NOT_ENABLED"},
            }
        ]
    }


def test_a_mutation_over_get_is_405_and_allows_post(client: TestClient) -> None:
    query = {"query": "mutation { __typename }"}
    response = client.get("/graphql", params=query, headers=PREFLIGHT)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["errors"][0] == {
        "message": "A mutation is only accepted over POST.",
        "extensions": {"code": "BAD_REQUEST"},
    }


def test_methods_other_than_get_and_post_are_refused_in_json(client: TestClient) -> None:
    response = client.put("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.json() == {
        "errors": [
            {"message": "Only GET and POST are accepted.", "extensions": {"code": "BAD_REQUEST"}}
        ]
    }


def test_variables_64_deep_reach_graphql(client: TestClient) -> None:
    query = 'query($s: [CaseStatus!]) { customer(id: "x") { cases(status: $s) { totalCount } } }'
    response = client.post("/graphql", json={"query": query, "variables": {"s": nested(63)}})
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT"}
    assert response.json()["errors"][0]["message"].startswith("Variable '$s' has invalid value")


def test_a_surrogate_pair_escaped_in_json_is_one_character(client: TestClient) -> None:
    body = b'{"query": "query($n: String!) { customers(first: 1, filter: {nameContains: $n})'
    body += b' { totalCount } }", "variables": {"n": "\\ud83d\\ude00"}}'
    response = client.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.json() == {"data": {"customers": {"totalCount": 0}}}


def test_a_named_operation_of_several_runs(client: TestClient) -> None:
    body = {"query": "query A { a: __typename } query B { b: __typename }", "operationName": "B"}
    assert client.post("/graphql", json=body).json() == {"data": {"b": "Query"}}


@pytest.fixture
def served(database: str) -> Iterator[str]:
    settings = load_settings(database_url=database, auth=identity().settings())
    running = serve_in_thread(create_app(settings), lifespan="on")
    try:
        yield f"{running.url}/graphql"
    finally:
        running.stop()


def test_every_must_and_should_of_the_graphql_over_http_audit_passes(served: str) -> None:
    """graphql-http's own audit, against the production profile with every limit on. It
    reads types by introspection (``__type``) in its MUSTs, so it asks as a principal
    holding ``schema:read``; and its GETs carry ``apollo-require-preflight``."""
    node = shutil.which("node")
    if node is None or not (JS / "node_modules" / "graphql-http").exists():
        unavailable("node and tests/js/node_modules (make test installs them)", FileNotFoundError())
    admin = identity().headers(Role.INTEGRATION_ADMIN)
    done = subprocess.run(
        [str(node), "http_audit.mjs", served],
        env={**os.environ, "OPSGRAPH_AUTHORIZATION": admin["Authorization"]},
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    musts = {r["id"]: r["status"] for r in results if r["name"].startswith("MUST")}
    shoulds = {r["id"]: r["status"] for r in results if r["name"].startswith("SHOULD")}
    assert (len(musts), len(shoulds)) == (13, 23)
    assert musts == dict.fromkeys(musts, "ok")
    assert shoulds == dict.fromkeys(shoulds, "ok"), [r for r in results if r["id"] in shoulds]
