"""The production profile, the default outside the demo: introspection and ``_service`` only
for ``schema:read``, no "Did you mean", no GraphiQL, upstream failures told by kind and not
in the system's words; and a container that binds what the settings say, as a user that is
not root. The development profile (the demo) opens introspection, suggestions and GraphiQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from graphql import GraphQLError

from connectors.errors import (
    CircuitOpen,
    DeadlineExceeded,
    GatewayError,
    UpstreamAuthError,
    UpstreamConflict,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.auth.scopes import Role
from gateway.extensions.error_codes import coded
from gateway.settings import Profile, Settings
from tests.gateway.conftest import Bare
from tests.identity import identity

ROOT = Path(__file__).parent.parent.parent
ADMIN = identity().headers(Role.INTEGRATION_ADMIN)  # holds schema:read
INTROSPECTION = "{ __schema { queryType { name } } }"
DISABLED = {
    "errors": [
        {
            "message": "Introspection is disabled: it needs the schema:read scope.",
            "extensions": {"code": "INTROSPECTION_DISABLED"},
        }
    ]
}


def test_the_profile_is_production_unless_the_demo_says_otherwise() -> None:
    assert Settings().profile is Profile.PRODUCTION


@pytest.mark.parametrize(
    "query",
    [
        INTROSPECTION,
        '{ __type(name: "Customer") { name } }',
        '{ ...F } fragment F on Query { __type(name: "Customer") { name } }',
    ],
    ids=["__schema", "__type", "__type in a fragment"],
)
def test_introspection_is_refused_without_schema_read(bare: Bare, query: str) -> None:
    response = bare().post("/graphql", json={"query": query})
    assert (response.status_code, response.json()) == (200, DISABLED)


def test_introspection_is_answered_to_schema_read(bare: Bare) -> None:
    answer = bare().post("/graphql", json={"query": INTROSPECTION}, headers=ADMIN).json()
    assert answer == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


def test_service_sdl_is_only_for_schema_read(bare: Bare) -> None:
    client = bare()
    refused = client.post("/graphql", json={"query": "{ _service { sdl } }"}).json()
    assert "data" not in refused
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    answered = client.post("/graphql", json={"query": "{ _service { sdl } }"}, headers=ADMIN)
    assert "type Customer" in answered.json()["data"]["_service"]["sdl"]


def test_the_development_profile_opens_introspection(bare: Bare) -> None:
    client = bare(profile="development")
    assert client.post("/graphql", json={"query": INTROSPECTION}).json() == {
        "data": {"__schema": {"queryType": {"name": "Query"}}}
    }


CASES_OF = 'query($s: [CaseStatus!]) { customer(id: "x") { cases(status: $s) { totalCount } } }'
MISSPELT: dict[str, tuple[dict[str, Any], str]] = {
    "a field": (
        {"query": '{ customer(id: "x") { nam } }'},
        "Cannot query field 'nam' on type 'Customer'.",
    ),
    "an argument": (
        {"query": '{ customer(ids: "x") { name } }'},
        "Unknown argument 'ids' on field 'Query.customer'.",
    ),
    "an enum value in a variable": (
        {"query": CASES_OF, "variables": {"s": ["OPN"]}},
        "Variable '$s' has invalid value at [0]: Value 'OPN' does not exist in 'CaseStatus' enum.",
    ),
}  # fmt: skip


@pytest.mark.parametrize(("body", "message"), MISSPELT.values(), ids=MISSPELT)
def test_production_does_not_suggest_names(bare: Bare, body: dict[str, Any], message: str) -> None:
    production, development = bare(), bare(profile="development")
    errors = production.post("/graphql", json=body).json()["errors"]
    assert [e["message"] for e in errors][:1] == [message]
    suggested = development.post("/graphql", json=body).json()["errors"][0]["message"]
    assert suggested.startswith(message + " Did you mean ")


def test_production_serves_no_graphiql(bare: Bare) -> None:
    page = {"accept": "text/html", "apollo-require-preflight": "true"}
    response = bare().get("/graphql", headers=page)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json()["errors"][0]["message"] == "The request has no query."


def test_development_serves_graphiql_with_the_security_headers(bare: Bare) -> None:
    response = bare(profile="development").get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "GraphiQL" in response.text
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


UPSTREAM: dict[type[UpstreamError], str] = {
    DeadlineExceeded: "billing did not answer before the request's deadline",
    UpstreamTimeout: "billing did not answer in time",
    UpstreamUnavailable: "billing is unavailable",
    UpstreamRateLimited: "billing is rate limiting the gateway",
    CircuitOpen: "billing is failing: calls to it are paused",
    UpstreamAuthError: "billing refused the gateway's credentials",
    UpstreamNotFound: "billing has no such record",
    UpstreamConflict: "billing reported a conflict",
    UpstreamRejected: "billing rejected the request",
    UpstreamError: "billing failed",
}


@pytest.mark.parametrize(("kind", "message"), UPSTREAM.items(), ids=[k.__name__ for k in UPSTREAM])
def test_an_upstream_failure_is_told_by_system_and_kind(
    kind: type[UpstreamError], message: str
) -> None:
    said = kind(
        "billing: No such customer: 'cus_9'; request req_7Xk (api_key sk_live_…)",
        system="billing",
        internal='{"error": {"message": "No such customer"}}',
    )
    leaving = coded(GraphQLError(str(said), original_error=said))
    assert leaving.message == message
    assert leaving.extensions == {"code": kind.code, "system": "billing"}


def test_the_gateways_own_errors_keep_their_words_and_others_are_masked() -> None:
    own = GatewayError("no customer with id 'x'", code="NOT_FOUND")
    assert coded(GraphQLError("x", original_error=own)).message == "no customer with id 'x'"
    bug = RuntimeError("the database password is hunter2")
    masked = coded(GraphQLError("x", original_error=bug))
    assert (masked.message, masked.extensions) == ("Internal error.", {"code": "INTERNAL"})


def test_the_container_binds_what_the_settings_say_as_a_user_that_is_not_root() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    [command] = [line for line in lines if line.startswith("CMD ")]
    assert command == 'CMD ["opsgraph", "serve"]'
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for replica in ("gateway-1", "gateway-2"):
        assert compose["services"][replica]["environment"]["OPSGRAPH_HOST"] == "0.0.0.0"
    assert Settings().host == "127.0.0.1"
