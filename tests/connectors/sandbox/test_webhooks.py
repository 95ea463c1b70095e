"""Signed delivery: the body with the vendor's signature headers, made as it leaves, in the
background; a receiver that is down is a logged warning, never an error of the write."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.sandbox.serve import serve_in_thread
from connectors.sandbox.webhooks import Webhooks
from tests.world import free_port


@pytest.fixture
def received() -> Iterator[tuple[str, list[tuple[bytes, str]]]]:
    """A receiver's URL, and what it was sent: (body, signature header)."""
    got: list[tuple[bytes, str]] = []

    async def hook(request: Request) -> Response:
        got.append((await request.body(), request.headers["x-signature"]))
        return Response(status_code=204)

    running = serve_in_thread(Starlette(routes=[Route("/hook", hook, methods=["POST"])]))
    try:
        yield running.url + "/hook", got
    finally:
        running.stop()


async def eventually(done: Callable[[], bool]) -> None:
    for _ in range(500):
        if done():
            return
        await asyncio.sleep(0.01)


async def test_each_delivery_is_signed_when_it_leaves(
    received: tuple[str, list[tuple[bytes, str]]],
) -> None:
    url, got = received
    signed: list[bytes] = []

    def sign(body: bytes) -> dict[str, str]:
        signed.append(body)
        return {"X-Signature": "sig:" + body.decode()}

    hooks = Webhooks(url, sign)
    hooks.deliver(b'{"n": 1}')
    hooks.deliver(b'{"n": 2}')
    assert signed == []  # nothing has left yet: the write that delivers is not held up
    await eventually(lambda: len(got) == 2)
    assert sorted(got) == [(b'{"n": 1}', 'sig:{"n": 1}'), (b'{"n": 2}', 'sig:{"n": 2}')]


async def test_a_receiver_that_is_down_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    hooks = Webhooks(f"http://127.0.0.1:{free_port()}/hook", lambda body: {}, timeout_s=2)
    with caplog.at_level(logging.WARNING, logger="connectors.sandbox.webhooks"):
        hooks.deliver(b"{}")
        await eventually(lambda: bool(caplog.records))
    [record] = caplog.records
    assert record.getMessage().startswith("webhook to http://127.0.0.1:")
    assert "not delivered" in record.getMessage()


async def test_without_a_url_nothing_is_delivered() -> None:
    hooks = Webhooks(None, lambda body: pytest.fail("signed with nowhere to send"))
    hooks.deliver(b"{}")
    assert not hooks.enabled
