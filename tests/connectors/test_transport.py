"""Cancelling upstream calls never costs a connection: after a thousand calls cancelled at
every stage (waiting for a connection, connecting, waiting for the answer), every slot of
the pool still serves a call. Plain httpx 0.28 / httpcore 1.0.9 loses slots here
(encode/httpcore#1093) until every call times out."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from datetime import date

import httpx
import pytest

from connectors import systems
from connectors.base import Connector
from connectors.models import ConnectorConfig, ObjectKind, SystemName
from connectors.sandbox import billing as billing_sandbox
from connectors.sandbox import support as support_sandbox
from connectors.sandbox.seed import generate
from connectors.transport import _abortable
from tests.connectors.conftest import running_sandbox

WORLD = generate(customers=4, seed=5, as_of=date(2026, 11, 1))
POOL = 4

SYSTEMS = {
    SystemName.SUPPORT: (support_sandbox.create_app, ObjectKind.CASE),
    SystemName.BILLING: (billing_sandbox.create_app, ObjectKind.CUSTOMER),
}


@pytest.fixture(scope="module", params=list(SYSTEMS), ids=lambda s: s.value)
def system(request: pytest.FixtureRequest) -> Iterator[tuple[SystemName, str, httpx.Client]]:
    create_app = SYSTEMS[request.param][0]
    with running_sandbox(create_app, WORLD.slice(request.param)) as (url, admin):
        yield request.param, url, admin


def _connector(system: SystemName, url: str) -> Connector:
    config = ConnectorConfig(base_url=url, secret="sandbox-secret", timeout=5, max_connections=POOL)
    return systems.connect(system, config)


async def _drained() -> None:
    for _ in range(200):
        if asyncio.all_tasks() == {asyncio.current_task()}:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("calls given up on 2 s ago are still running")


def _settled(admin: httpx.Client) -> None:
    for _ in range(200):
        if admin.get("/_sandbox/stats").json()["in_flight"] == 0:
            return
        time.sleep(0.01)
    raise AssertionError("the sandbox is still answering calls given up on 2 s ago")


async def test_a_thousand_cancelled_calls_leave_every_connection_usable(
    system: tuple[SystemName, str, httpx.Client],
) -> None:
    name, url, admin = system
    kind = SYSTEMS[name][1]
    admin.put("/_sandbox/faults", json={"latency_ms": 5, "jitter_ms": 10})
    connector = _connector(name, url)
    draw = random.Random(7)
    try:

        async def cancelled() -> None:
            # 0-30 ms: some give up while queued, some while connecting, some while the
            # sandbox is answering.
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(draw.uniform(0, 0.03)):
                    await connector.list_page(kind, limit=1)
                    await asyncio.sleep(1)  # answered in time: give up right after

        await asyncio.gather(*(cancelled() for _ in range(1000)))
        # The calls given up on end in the background (an abandoned request aborts at its
        # next step, a response nobody reads is closed), and the sandbox finishes answering
        # them; counted from a reset before that, they would take a share of max_in_flight.
        await _drained()
        _settled(admin)
        admin.put("/_sandbox/faults", json={"latency_ms": 200})
        admin.post("/_sandbox/stats/reset")
        # As many calls as the pool has slots, at once: each needs a slot of its own for
        # its 200 ms, so a single lost slot makes one of them wait out the pool timeout.
        pages = await asyncio.gather(*(connector.list_page(kind, limit=1) for _ in range(POOL)))
        assert [len(p.items) for p in pages] == [1] * POOL
        stats = admin.get("/_sandbox/stats").json()
        assert stats["total"] == POOL and stats["max_in_flight"] == POOL
    finally:
        admin.put("/_sandbox/faults", json={})
        await connector.aclose()


@pytest.mark.parametrize(
    ("event", "abortable"),
    [
        ("connection.connect_tcp.started", True),  # no socket yet
        ("connection.connect_tcp.complete", False),  # the socket would be dropped, open
        ("connection.start_tls.started", False),  # the TCP stream would be dropped, open
        ("connection.start_tls.complete", False),
        ("http11.send_request_headers.started", True),  # the exchange's clean-up closes it
        ("http11.send_request_headers.complete", False),
        ("http11.receive_response_headers.started", True),
        ("http11.response_closed.started", False),  # that clean-up itself
        ("http2.send_request_headers.started", True),
        ("http2.response_closed.started", False),
    ],
)
def test_an_abandoned_request_aborts_only_where_nothing_is_left_open(
    event: str, abortable: bool
) -> None:
    assert _abortable(event) is abortable
