"""Every GraphQL request names its principal or is answered 401 before GraphQL runs;
liveness and readiness stay open."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.auth.scopes import Role
from gateway.settings import load_settings
from tests.identity import identity

QUERY = {"query": "{ systems { name } }"}


@pytest.fixture
def client(migrated_url: str) -> Iterator[TestClient]:
    settings = load_settings(database_url=migrated_url, auth=identity().settings())
    with TestClient(create_app(settings)) as client:
        yield client


def test_an_anonymous_request_is_asked_for_a_bearer_token(client: TestClient) -> None:
    response = client.post("/graphql", json=QUERY)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="opsgraph"'
    assert response.json() == {
        "errors": [
            {"message": "a bearer token is required", "extensions": {"code": "UNAUTHENTICATED"}}
        ]
    }
    assert client.get("/graphql", params=QUERY).status_code == 401


def test_a_bad_token_is_an_invalid_token_challenge(client: TestClient) -> None:
    expired = identity().token(Role.VIEWER, expires_in=-120)
    response = client.post("/graphql", json=QUERY, headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="opsgraph", error="invalid_token"'
    assert response.json()["errors"][0] == {
        "message": "the token has expired",
        "extensions": {"code": "UNAUTHENTICATED"},
    }
    basic = client.post("/graphql", json=QUERY, headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert basic.status_code == 401


def test_a_valid_token_is_answered(client: TestClient) -> None:
    response = client.post("/graphql", json=QUERY, headers=identity().headers(Role.VIEWER))
    assert response.status_code == 200
    assert response.json() == {"data": {"systems": []}}


def test_liveness_and_readiness_need_no_token(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
