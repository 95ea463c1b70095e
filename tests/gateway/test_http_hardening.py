"""The HTTP stage: the hosts the gateway answers to (DNS rebinding), the origins that may
call it from a browser (CORS) or open a WebSocket to it, CSRF prevention as Apollo Router
does it, security headers on HTML only, and the media type of answers."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.app import create_app
from gateway.http.csrf import MESSAGE as CSRF
from gateway.http.media import Media, negotiate
from gateway.http.websocket_origin import WebSocketOrigins
from gateway.settings import load_settings
from tests.gateway.conftest import Bare
from tests.identity import identity

TYPENAME = {"query": "{ __typename }"}
ANSWER = {"data": {"__typename": "Query"}}


def test_a_foreign_host_is_refused(bare: Bare) -> None:
    client = bare()
    for path in ("/graphql", "/healthz"):
        response = client.post(path, json=TYPENAME, headers={"host": "attacker.example"})
        assert response.status_code == 400
        assert response.json() == {
            "errors": [
                {
                    "message": "The host 'attacker.example' is not served here.",
                    "extensions": {"code": "HOST_NOT_ALLOWED"},
                }
            ]
        }
    assert client.post("/graphql", json=TYPENAME, headers={"host": "localhost:8000"}).json() == (
        ANSWER
    )


def test_the_allowed_hosts_come_from_settings(bare: Bare) -> None:
    client = bare(http={"allowed_hosts": ["*.opsgraph.example"]})
    assert client.post("/graphql", json=TYPENAME).status_code == 400  # Host: testserver
    ours = {"host": "eu.opsgraph.example"}
    assert client.post("/graphql", json=TYPENAME, headers=ours).json() == ANSWER


def test_an_allowed_origin_may_call_from_a_browser(bare: Bare) -> None:
    client = bare(http={"cors_origins": ["https://dash.example"]})
    preflight = {
        "origin": "https://dash.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    allowed = client.options("/graphql", headers=preflight)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://dash.example"
    assert "authorization" in allowed.headers["access-control-allow-headers"]
    answer = client.post("/graphql", json=TYPENAME, headers={"origin": "https://dash.example"})
    assert answer.headers["access-control-allow-origin"] == "https://dash.example"
    assert answer.headers["access-control-expose-headers"] == "Retry-After"


def test_another_origin_may_not(bare: Bare) -> None:
    client = bare(http={"cors_origins": ["https://dash.example"]})
    preflight = {"origin": "https://evil.example", "access-control-request-method": "POST"}
    refused = client.options("/graphql", headers=preflight)
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    answer = client.post("/graphql", json=TYPENAME, headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in answer.headers  # the browser hides it


@pytest.mark.parametrize(
    "headers",
    [{}, {"content-type": "text/plain"}, {"apollo-require-preflight": ""}],
    ids=["no header", "a simple content type", "an empty preflight header"],
)
def test_a_get_a_browser_sends_without_preflight_runs_nothing(
    bare: Bare, headers: dict[str, str]
) -> None:
    response = bare().get("/graphql", params=TYPENAME, headers=headers)
    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"message": CSRF, "extensions": {"code": "CSRF_PREVENTED"}}]
    }


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "application/json"},
        {"apollo-require-preflight": "true"},
        {"x-apollo-operation-name": "Typename"},
    ],
    ids=["Apollo Client's content type", "apollo-require-preflight", "x-apollo-operation-name"],
)
def test_a_get_that_was_preflighted_runs(bare: Bare, headers: dict[str, str]) -> None:
    assert bare().get("/graphql", params=TYPENAME, headers=headers).json() == ANSWER


def test_a_post_with_a_simple_content_type_is_refused_whatever_its_headers(bare: Bare) -> None:
    """The 415 covers POST: a simple content type never reaches GraphQL."""
    headers = {"content-type": "text/plain", "apollo-require-preflight": "true"}
    response = bare().post("/graphql", content=b'{"query": "{ __typename }"}', headers=headers)
    assert response.status_code == 415


def test_json_answers_carry_no_page_headers(bare: Bare) -> None:
    response = bare().post("/graphql", json=TYPENAME)
    assert "content-security-policy" not in response.headers


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, Media.JSON),
        ("*/*", Media.JSON),
        ("application/json", Media.JSON),
        ("application/graphql-response+json", Media.GRAPHQL_RESPONSE),
        ("application/graphql-response+json, application/json", Media.GRAPHQL_RESPONSE),
        ("application/json, application/graphql-response+json;q=0.9", Media.JSON),
        ("application/graphql-response+json;q=0.5, */*;q=0.1", Media.GRAPHQL_RESPONSE),
        ("application/graphql-response+json;q=0", Media.JSON),
        ("text/html", Media.JSON),
    ],
)
def test_the_media_type_follows_accept(accept: str | None, media: Media) -> None:
    assert negotiate(accept) is media


STATUSES: dict[str, tuple[dict[str, Any], int, int]] = {
    "data": (TYPENAME, 200, 200),
    "a field error beside data": ({"query": '{ customer(id: "x") { id } }'}, 200, 200),
    "a parse failure": ({"query": "{"}, 200, 400),
    "a validation failure": ({"query": "{ nothing }"}, 200, 400),
    "variables that do not fit": (
        {"query": "query($id: ID!) { customer(id: $id) { id } }", "variables": {"id": True}},
        200, 400,
    ),
    "a request that is not GraphQL": ({"query": 1}, 400, 400),
}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "as_json", "as_graphql_response"), STATUSES.values(), ids=STATUSES
)
def test_each_media_type_has_its_statuses(
    bare: Bare, body: dict[str, Any], as_json: int, as_graphql_response: int
) -> None:
    client = bare()
    for media, status in ((Media.JSON, as_json), (Media.GRAPHQL_RESPONSE, as_graphql_response)):
        response = client.post("/graphql", json=body, headers={"accept": media.value})
        assert (response.status_code, response.headers["content-type"]) == (status, media.value)


async def handshake(app: ASGIApp, **headers: str) -> list[Message]:
    """A WebSocket handshake to ``/graphql`` through the raw ASGI app: what it sent back."""
    scope: Scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
        "subprotocols": ["graphql-transport-ws"],
        "headers": [(k.encode(), v.encode()) for k, v in {"host": "testserver", **headers}.items()],
    }
    incoming = [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def accept(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "websocket.accept"})


REFUSED = [{"type": "websocket.close", "code": 1008, "reason": "ORIGIN_NOT_ALLOWED"}]
ACCEPTED = [{"type": "websocket.accept"}]


@pytest.mark.parametrize(
    ("headers", "sent"),
    [
        ({}, ACCEPTED),  # not a browser
        ({"origin": "http://testserver"}, ACCEPTED),  # the gateway's own pages
        ({"origin": "https://dash.example"}, ACCEPTED),
        ({"origin": "https://DASH.example:443"}, ACCEPTED),
        ({"origin": "https://evil.example"}, REFUSED),
        ({"origin": "null"}, REFUSED),
    ],
)
async def test_a_websocket_handshake_from_another_origin_is_refused(
    headers: dict[str, str], sent: list[Message]
) -> None:
    app = WebSocketOrigins(accept, ["https://dash.example"])
    assert await handshake(app, **headers) == sent


async def test_the_gateway_checks_websocket_origins_and_hosts(empty_db: str) -> None:
    settings = load_settings(database_url=empty_db, auth=identity().settings())
    app = create_app(settings)
    assert await handshake(app, origin="https://evil.example") == REFUSED
    foreign: Any = await handshake(app, host="attacker.example", origin="http://attacker.example")
    assert foreign == [{"type": "websocket.close", "code": 1008, "reason": "HOST_NOT_ALLOWED"}]
