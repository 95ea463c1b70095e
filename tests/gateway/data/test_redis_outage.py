"""Redis accelerates and never gates: killed, frozen or restarted, a redis-server of the test's
own costs the gateway no field, at most one Redis timeout per retry window, and one warning
per outage; breaker state and the entity cache carry on in process and go back to Redis."""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
from purgatory.domain.model import Context
from redis.asyncio import Redis
from starlette.testclient import TestClient

from connectors.models import SystemName
from gateway.data.breakers import FallbackRepository
from gateway.data.redis_guard import RedisGuard, RedisUnavailable
from gateway.data.services import Services
from tests.conftest import unavailable
from tests.gateways import Gateway, graphql, nodes
from tests.resolvers.test_partial import QUERY, first_with_cases
from tests.world import Sandboxes, free_port, until

ALL_CLOSED = [
    {"name": name, "healthy": True, "breaker": "CLOSED"}
    for name in ("BILLING", "ERP", "CRM", "SUPPORT")
]


class RedisServer:
    """A redis-server of the test's own, to kill, freeze and restart on one port."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        with redis.Redis(port=self.port, socket_connect_timeout=1) as probe:
            while True:
                try:
                    probe.ping()
                    return
                except redis.ConnectionError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("redis-server did not start") from None
                    time.sleep(0.02)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no goodbye to the clients
        self.process.wait()

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def keys(self) -> list[str]:
        with redis.Redis(port=self.port) as fresh:
            return sorted(k.decode() for k in fresh.keys("*"))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.kill()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server", FileNotFoundError("no redis-server binary on PATH"))
        raise AssertionError("unreachable")  # unavailable() skips or fails
    server = RedisServer(binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def on(gateway: Gateway, server: RedisServer, **overrides: Any) -> TestClient:
    overrides.setdefault("connector", {"timeout_s": 2, "cache_ttl_s": 0})
    return gateway(redis_url=server.url, **overrides)


def guard_of(client: TestClient) -> RedisGuard:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    assert services.redis is not None
    return services.redis


# The gateway over real sandboxes and a real redis-server.


def test_a_killed_redis_costs_no_field(
    boxes: Sandboxes, gateway: Gateway, redis_server: RedisServer
) -> None:
    client = on(gateway, redis_server)
    customer = first_with_cases(boxes)
    expected = graphql(client, QUERY, id=customer)
    assert "errors" not in expected and nodes(expected["data"]["customer"]["cases"])
    redis_server.kill()
    assert graphql(client, QUERY, id=customer) == expected
    systems = graphql(client, "{ systems { name healthy breaker } }")
    assert systems == {"data": {"systems": ALL_CLOSED}}


def test_a_frozen_redis_costs_one_timeout_per_window(
    boxes: Sandboxes, gateway: Gateway, redis_server: RedisServer
) -> None:
    client = on(gateway, redis_server, redis_retry_s=300)
    customer = first_with_cases(boxes)
    expected = graphql(client, QUERY, id=customer)
    guard = guard_of(client)
    redis_server.freeze()
    answers = [graphql(client, QUERY, id=customer)]
    calls = guard.calls
    answers += [graphql(client, QUERY, id=customer) for _ in range(3)]
    ready = client.get("/readyz")
    assert answers == [expected] * 4
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"] == "unreachable: TimeoutError"
    # One timed-out call began the window; after it, no request called Redis at all.
    assert (guard.failures, guard.calls) == (1, calls)


def test_after_a_restart_the_entity_cache_is_in_redis_again(
    boxes: Sandboxes, gateway: Gateway, redis_server: RedisServer
) -> None:
    # Whatever the gateway saw of the restart, its retry window is long past by the next query.
    client = on(
        gateway, redis_server, redis_retry_s=0.01, connector={"timeout_s": 2, "cache_ttl_s": 300}
    )
    customer = first_with_cases(boxes)
    graphql(client, QUERY, id=customer)  # the pool now holds connections to the first Redis
    redis_server.kill()
    redis_server.start()
    first = graphql(client, QUERY, id=customer)
    boxes.reset()
    second = graphql(client, QUERY, id=customer)["data"]["customer"]
    assert "errors" not in first
    assert second["account"]["source"] == {"system": "CRM", "stale": False, "cached": True}
    assert {(c["source"]["cached"], c["source"]["stale"]) for c in nodes(second["cases"])} == {
        (True, False)
    }
    assert boxes.totals() == {s: 0 for s in boxes.totals()}
    crm_id = next(c for c in boxes.world.customers if c.id == customer).external_ids[SystemName.CRM]
    assert f"opsgraph:cache:crm:account:{crm_id}" in redis_server.keys()


def test_with_redis_down_stale_if_error_serves_what_was_read_during_the_outage(
    boxes: Sandboxes, gateway: Gateway, redis_server: RedisServer
) -> None:
    client = on(gateway, redis_server)
    customer = first_with_cases(boxes)
    redis_server.kill()
    fresh = nodes(graphql(client, QUERY, id=customer)["data"]["customer"]["cases"])
    boxes.faults(SystemName.SUPPORT, error_rate=1.0, error_status=500)
    body = graphql(client, QUERY, id=customer)
    assert "errors" not in body
    stale = nodes(body["data"]["customer"]["cases"])
    assert [c["id"] for c in stale] == [c["id"] for c in fresh]
    assert {(c["source"]["stale"], c["source"]["cached"]) for c in stale} == {(True, True)}


def test_an_outage_logs_one_warning_and_one_line_when_redis_is_back(
    boxes: Sandboxes,
    gateway: Gateway,
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="opsgraph.redis")
    client = on(gateway, redis_server, redis_retry_s=0.01)  # many windows, one outage
    customer = first_with_cases(boxes)
    redis_server.kill()
    for _ in range(5):
        assert "errors" not in graphql(client, QUERY, id=customer)
    redis_server.start()
    # Past the last window, whichever caller probes first (the stream consumer, the relay
    # and the broadcast call Redis in the background too) finds it back.
    assert until(lambda: client.get("/readyz").json()["checks"]["redis"] == "ok", within_s=5)
    records = [r for r in caplog.records if r.name == "opsgraph.redis"]
    assert [r.levelname for r in records] == ["WARNING", "INFO"]
    assert records[0].getMessage().startswith("Redis is unavailable (ConnectionError: ")
    assert records[1].getMessage().startswith("Redis is back after ")


def test_with_redis_down_a_failing_system_still_opens_its_breaker(
    boxes: Sandboxes, gateway: Gateway, redis_server: RedisServer
) -> None:
    client = on(gateway, redis_server)
    redis_server.kill()
    boxes.faults(SystemName.ERP, error_rate=1.0, error_status=502)
    errors = [graphql(client, QUERY, id=boxes.world.customers[2].id)["errors"] for _ in range(3)]
    assert [[e["extensions"] for e in each] for each in errors] == [
        [{"code": "UPSTREAM_UNAVAILABLE", "system": "erp"}],
        [{"code": "CIRCUIT_OPEN", "system": "erp"}],
        [{"code": "CIRCUIT_OPEN", "system": "erp"}],
    ]
    systems = graphql(client, "{ systems { name breaker } }")["data"]["systems"]
    assert {"name": "ERP", "breaker": "OPEN"} in systems


def test_readyz_says_redis_is_unreachable_without_waiting_on_it(
    gateway: Gateway, redis_server: RedisServer
) -> None:
    client = on(gateway, redis_server)
    redis_server.kill()
    calls = guard_of(client).calls
    first, again = client.get("/readyz"), client.get("/readyz")
    assert first.status_code == again.status_code == 503
    # The connection is refused, or (on a loaded machine) the 250 ms timeout comes first.
    said = first.json()["checks"]["redis"]
    assert said in ("unreachable: ConnectionError", "unreachable: TimeoutError")
    assert (
        first.json()
        == again.json()
        == {
            "status": "not ready",
            "checks": {"database": "ok", "redis": said},
        }
    )
    assert (guard_of(client).failures, guard_of(client).calls) == (1, calls + 1)  # again: no call


# The guard on its own, with a clock the test turns.


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def refused() -> None:
    raise redis.ConnectionError("Connection refused.")


async def pong() -> str:
    return "pong"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def guard(clock: Clock) -> AsyncIterator[RedisGuard]:
    # Never connected: the calls below stand in for Redis calls.
    guard = RedisGuard(Redis(port=1), timeout_s=0.05, retry_s=5, clock=clock)
    yield guard
    await guard.aclose()


async def test_after_a_failure_the_guard_calls_nothing_until_the_window_is_past(
    guard: RedisGuard, clock: Clock
) -> None:
    with pytest.raises(RedisUnavailable):
        await guard.run(refused)
    clock.now = 4.9
    with pytest.raises(RedisUnavailable) as down:
        await guard.run(pong)
    assert down.value.error == "ConnectionError"
    clock.now = 5.0
    assert await guard.run(pong) == "pong"
    assert (guard.failures, guard.calls, guard.up) == (1, 2, True)


async def test_after_the_window_exactly_one_caller_probes(guard: RedisGuard, clock: Clock) -> None:
    with pytest.raises(RedisUnavailable):
        await guard.run(refused)
    clock.now = 5.0
    answered = asyncio.Event()

    async def slow_pong() -> str:
        await answered.wait()
        return "pong"

    probe = asyncio.create_task(guard.run(slow_pong))
    await asyncio.sleep(0)
    with pytest.raises(RedisUnavailable):
        await guard.run(pong)  # falls back while the probe is out
    answered.set()
    assert await probe == "pong"
    assert await guard.run(pong) == "pong"
    assert guard.calls == 3


async def test_calls_that_fail_together_are_one_failure_and_a_failed_probe_no_new_warning(
    guard: RedisGuard, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="opsgraph.redis")
    redis_goes = asyncio.Event()

    async def refused_in_flight() -> None:
        await redis_goes.wait()
        await refused()

    failing = [asyncio.create_task(guard.run(refused_in_flight)) for _ in range(3)]
    await asyncio.sleep(0)
    redis_goes.set()
    results = await asyncio.gather(*failing, return_exceptions=True)
    assert [type(r) for r in results] == [RedisUnavailable] * 3
    clock.now = 5.0
    with pytest.raises(RedisUnavailable):
        await guard.run(refused)  # the probe fails: a new window, the same outage
    assert (guard.failures, guard.calls) == (2, 4)
    assert [r.levelname for r in caplog.records if r.name == "opsgraph.redis"] == ["WARNING"]


async def test_a_call_that_hangs_is_cut_at_the_timeout(guard: RedisGuard) -> None:
    with pytest.raises(RedisUnavailable) as down:
        await guard.run(asyncio.Event().wait)
    assert (down.value.error, guard.failures) == ("TimeoutError", 1)


# The guard's client and the breaker repository on a real redis-server.


async def test_a_pooled_connection_killed_with_redis_is_replaced_transparently(
    redis_server: RedisServer,
) -> None:
    guard = RedisGuard.from_url(redis_server.url, timeout_s=0.5, retry_s=60)
    try:
        await guard.ping()
        redis_server.kill()
        redis_server.start()
        await guard.ping()
        assert (guard.failures, guard.calls) == (0, 2)
    finally:
        await guard.aclose()


async def test_a_breaker_registered_while_redis_was_down_is_never_half_written_to_it(
    redis_server: RedisServer,
) -> None:
    clock = Clock()
    guard = RedisGuard(Redis.from_url(redis_server.url), timeout_s=0.5, retry_s=5, clock=clock)
    repository = FallbackRepository(guard)
    try:
        with pytest.raises(RedisUnavailable):
            await guard.run(refused)  # Redis is down
        await repository.register(Context("opsgraph:erp", threshold=5, ttl=30))
        clock.now = 5.0  # and back
        await repository.update_state("opsgraph:erp", "opened", 1.0)
        assert redis_server.keys() == []
        assert await repository.get("opsgraph:erp") is None  # purgatory registers it anew
    finally:
        await guard.aclose()
