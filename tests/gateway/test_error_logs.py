"""A client mistake is one INFO line on ``opsgraph.errors``; only an unexpected exception
is logged at ERROR with its traceback; values a client sent are cut short everywhere."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import strawberry
from graphql import GraphQLError
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.errors import BadUserInput, UpstreamRejected
from gateway.extensions.error_codes import ErrorCodes, coded
from gateway.graphql_view import GraphQLView
from gateway.schema import GatewaySchema, build_schema
from gateway.settings import load_settings
from gateway.storage.migrate import upgrade
from tests.gateway.test_request_errors import CASES
from tests.gateways import AUTH
from tests.identity import identity


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('gw') / 'opsgraph.db'}"
    upgrade(url)
    settings = load_settings(database_url=url, auth=identity().settings())
    with TestClient(create_app(settings), headers=AUTH) as client:
        yield client


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "opsgraph.errors"]


FIELD_ERRORS = [
    {"query": '{ customer(id: "nope") { id } }'},
    {"query": '{ node(id: "nope") { id } }'},
    {"query": '{ customerByExternalId(system: ERP, externalId: "nope") { id } }'},
    {"query": "{ customers(first: 0) { edges { cursor } } }"},
    {
        "query": "query($r: [_Any!]!) { _entities(representations: $r) { __typename } }",
        "variables": {"r": [{"__typename": "Customer"}]},
    },
]


def test_client_errors_are_one_info_line_each_without_traceback(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for request, _, _, _ in CASES.values():
        client.request(url="/graphql", **request)
    for body in FIELD_ERRORS:
        client.post("/graphql", json=body)
    records = error_records(caplog)
    assert len(records) == len(CASES) + len(FIELD_ERRORS) == 36
    assert {r.levelno for r in records} == {logging.INFO}
    assert [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()] == []
    assert [r for r in caplog.records if r.name.startswith("strawberry")] == []
    expected = [f'code="{code}"' for _, _, code, _ in CASES.values()]
    assert [r.getMessage().split(" ")[0] for r in records[: len(CASES)]] == expected
    assert [r.getMessage() for r in records[len(CASES) :]] == [
        'code="NOT_FOUND" path="customer" message="no customer with id \'nope\'"',
        'code="NOT_FOUND" path="node" message="no node with id \'nope\'"',
        'code="NOT_FOUND" path="customerByExternalId" message="no customer is \'nope\' in erp"',
        'code="BAD_USER_INPUT" path="customers" message="first must be between 1 and 200"',
        'code="BAD_USER_INPUT" path="_entities.0" '
        'message="representations[0] lacks id for Customer"',
    ]


def test_a_1_mb_id_is_cut_in_the_answer_and_the_log(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    query = "query($id: ID!) { customer(id: $id) { id } }"
    # (A body over 2 MB is refused before it is read: gateway.limits.)
    body = client.post("/graphql", json={"query": query, "variables": {"id": "x" * 1_000_000}})
    message = "no customer with id '" + "x" * 200 + "'… [1000000 characters]"
    assert body.json()["errors"][0]["message"] == message
    assert [r.getMessage() for r in error_records(caplog)] == [
        f'code="NOT_FOUND" path="customer" message="{message}"'
    ]


@strawberry.type
class Broken:
    @strawberry.field
    def fine(self) -> str:
        return "fine"

    @strawberry.field
    def broken(self) -> str:
        raise RuntimeError("the database password is hunter2")

    @strawberry.field
    def refused(self) -> str:
        raise UpstreamRejected("crm refused the id", system="crm", internal="400 {'id': 'bad'}")


def test_an_unexpected_exception_is_one_error_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    schema = GatewaySchema(query=Broken, extensions=[ErrorCodes])
    result = schema.execute_sync("{ fine broken }")
    assert result.errors is not None
    assert [e.formatted for e in result.errors] == [
        {
            "message": "Internal error.",
            "locations": [{"line": 1, "column": 8}],
            "path": ["broken"],
            "extensions": {"code": "INTERNAL"},
        }
    ]
    [record] = error_records(caplog)
    assert record.levelno == logging.ERROR
    assert record.getMessage() == (
        'code="INTERNAL" path="broken" message="RuntimeError: the database password is hunter2"'
    )
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    assert "Traceback" in caplog.text
    assert [r for r in caplog.records if r.name.startswith("strawberry")] == []


def test_an_upstream_refusal_logs_its_system_and_internal_detail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    result = GatewaySchema(query=Broken, extensions=[ErrorCodes]).execute_sync("{ refused }")
    assert result.errors is not None
    assert result.errors[0].message == "crm rejected the request"  # the log has its words
    assert result.errors[0].extensions == {"code": "UPSTREAM_REJECTED", "system": "crm"}
    assert [(r.levelno, r.getMessage(), r.exc_info) for r in error_records(caplog)] == [
        (
            logging.INFO,
            'code="UPSTREAM_REJECTED" path="refused" system="crm" message="crm refused the id" '
            "internal=\"400 {'id': 'bad'}\"",
            None,
        )
    ]


def test_an_exception_in_the_view_is_an_internal_json_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    # No services on the app: building the request's context fails.
    bare = Starlette(routes=[Route("/graphql", GraphQLView(build_schema()))])
    response = TestClient(bare).post("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "errors": [{"message": "Internal error.", "extensions": {"code": "INTERNAL"}}]
    }
    [record] = error_records(caplog)
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and record.exc_info[0] is AttributeError


@pytest.mark.parametrize(
    "error",
    [
        GraphQLError("y" * 5_000, extensions={"code": "BAD_USER_INPUT"}),
        GraphQLError("ignored", original_error=BadUserInput("y" * 5_000)),
    ],
    ids=["coded", "gateway error"],
)
def test_every_message_leaving_is_capped(error: GraphQLError) -> None:
    leaving: dict[str, Any] = coded(error).formatted
    assert leaving == {
        "message": "y" * 1_000 + "… [5000 characters]",
        "extensions": {"code": "BAD_USER_INPUT"},
    }
