"""Every GraphQL request names its principal or is answered 401 before GraphQL runs;
liveness and readiness stay open."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.auth.keys import opened
from gateway.auth.scopes import Role, Scope
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


def _key(url: str, *scopes: Scope) -> str:
    async def create() -> str:
        async with opened(url) as keys:
            return (await keys.create("svc", scopes))[1]

    return asyncio.run(create())


def test_an_api_key_is_taken_as_a_bearer_token_or_in_x_api_key(
    client: TestClient, migrated_url: str
) -> None:
    key = _key(migrated_url, Scope.SYSTEMS_READ)
    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
        response = client.post("/graphql", json=QUERY, headers=headers)
        assert (response.status_code, response.json()) == (200, {"data": {"systems": []}})


def test_two_credentials_or_a_foreign_x_api_key_are_refused(
    client: TestClient, migrated_url: str
) -> None:
    key = _key(migrated_url, Scope.SYSTEMS_READ)
    both = client.post(
        "/graphql", json=QUERY, headers={"X-API-Key": key, **identity().headers(Role.VIEWER)}
    )
    foreign = client.post("/graphql", json=QUERY, headers={"X-API-Key": "sk_live_123"})
    assert [(r.status_code, r.json()["errors"][0]["message"]) for r in (both, foreign)] == [
        (401, "send one credential: Authorization or X-API-Key, not both"),
        (401, "X-API-Key takes an opsgraph API key (og_...)"),
    ]
    assert foreign.headers["www-authenticate"] == 'Bearer realm="opsgraph", error="invalid_token"'
