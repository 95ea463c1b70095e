"""The request scope: the deadline reaches the app, work a request owns ends with it, and
a request that somehow outlives its deadline is still answered."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from connectors import deadline
from gateway import request_scope
from gateway.request_scope import RequestScopeMiddleware


async def answer(send: Send, body: dict[str, object]) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": payload})


async def call(app: RequestScopeMiddleware, body: bytes = b"{}") -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        return await client.post("/graphql", content=body)


async def test_the_app_sees_the_deadline_the_scope_and_the_whole_body() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        left = deadline.remaining()
        await answer(
            send,
            {
                "body": message["body"].decode(),
                "deadline": left is not None and 0 < left <= 2,
                "scope": request_scope.current() is not None,
            },
        )

    response = await call(RequestScopeMiddleware(app, deadline_s=2), b'{"query": "{ x }"}')
    assert response.json() == {"body": '{"query": "{ x }"}', "deadline": True, "scope": True}
    assert request_scope.current() is None and deadline.remaining() is None


async def test_work_a_request_owns_ends_with_it() -> None:
    owned: list[asyncio.Task[None]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        request = request_scope.current()
        assert request is not None
        owned.append(asyncio.ensure_future(asyncio.sleep(60)))
        request.own(owned[0])
        await answer(send, {})

    await call(RequestScopeMiddleware(app, deadline_s=2))
    await asyncio.sleep(0)
    assert owned[0].cancelled()


async def test_a_request_that_outlives_its_deadline_is_cut_off_with_a_graphql_error() -> None:
    cancelled = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    response = await call(RequestScopeMiddleware(app, deadline_s=0.1))
    assert response.status_code == 504
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "errors": [
            {
                "message": "the request did not finish within its 0.1s deadline",
                "extensions": {"code": "UPSTREAM_TIMEOUT"},
            }
        ],
    }
    assert cancelled.is_set()


async def test_a_client_that_goes_stops_the_work_its_request_owns_at_once() -> None:
    hung_up = asyncio.Event()
    owned: list[asyncio.Task[None]] = []
    seen: list[str] = []

    async def receive() -> dict[str, object]:
        if not seen:
            seen.append("body")
            return {"type": "http.request", "body": b"{}", "more_body": False}
        await hung_up.wait()
        return {"type": "http.disconnect"}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        request = request_scope.current()
        assert request is not None
        owned.append(asyncio.ensure_future(asyncio.sleep(60)))
        request.own(owned[0])
        hung_up.set()
        try:
            await owned[0]
        except asyncio.CancelledError:
            seen.append("upstream work stopped")
        await answer(send, {})  # to nobody

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/graphql", "headers": []}
    middleware = RequestScopeMiddleware(app, deadline_s=30)
    await asyncio.wait_for(middleware(scope, receive, send), timeout=5)  # type: ignore[arg-type]
    assert seen == ["body", "upstream work stopped"]
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]


async def test_a_timeout_the_app_raises_itself_is_its_error_not_the_deadline() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise TimeoutError("the app's own")

    with pytest.raises(TimeoutError, match="the app's own"):
        await call(RequestScopeMiddleware(app, deadline_s=2))


async def test_a_request_that_answers_at_once_never_watches_its_connection() -> None:
    """Only a request still running after ``WATCH_AFTER_S`` listens for its client going:
    one that answers sooner reads its body and nothing more."""
    received: list[str] = []

    async def receive() -> dict[str, object]:
        received.append("receive")
        if len(received) == 1:
            return {"type": "http.request", "body": b"{}", "more_body": False}
        await asyncio.Event().wait()  # the connection stays open
        raise AssertionError("unreachable")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await answer(send, {})

    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(request_scope.WATCH_AFTER_S * 2)
        await answer(send, {})

    async def send(message: dict[str, object]) -> None:
        pass

    scope = {"type": "http", "method": "POST", "path": "/graphql", "headers": []}
    await RequestScopeMiddleware(app, deadline_s=30)(scope, receive, send)  # type: ignore[arg-type]
    await asyncio.sleep(request_scope.WATCH_AFTER_S * 2)
    assert received == ["receive"]
    received.clear()
    await RequestScopeMiddleware(slow_app, deadline_s=30)(scope, receive, send)  # type: ignore[arg-type]
    assert received == ["receive", "receive"]  # the body, then watching
