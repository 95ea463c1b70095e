"""The broadcast behind subscriptions: in process, across two replicas through a real Redis,
and with Redis gone (a replica still tells its own subscribers); a subscriber that falls
behind is dropped rather than waited for."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.data.redis_guard import RedisGuard
from gateway.events.broadcast import QUEUE, Broadcast, Overflowed


async def _take(broadcast: Broadcast, topic: str, count: int) -> list[dict[str, Any]]:
    taken: list[dict[str, Any]] = []
    async with aclosing(broadcast.subscribe(topic)) as messages:
        async for message in messages:
            taken.append(message)
            if len(taken) == count:
                break
    return taken


async def _listening(broadcast: Broadcast, topic: str, count: int = 1) -> None:
    for _ in range(200):
        if broadcast.subscribers(topic) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"nobody subscribed to {topic!r}")


async def test_subscribers_hear_what_is_published_on_their_topic_from_then_on() -> None:
    broadcast = Broadcast()
    await broadcast.publish("events", {"n": 0})  # before anyone listens: nobody hears it
    first = asyncio.create_task(_take(broadcast, "events", 2))
    second = asyncio.create_task(_take(broadcast, "events", 2))
    other = asyncio.create_task(_take(broadcast, "workflow_runs", 1))
    await _listening(broadcast, "events", 2)
    await _listening(broadcast, "workflow_runs")
    for n in (1, 2):
        await broadcast.publish("events", {"n": n})
    await broadcast.publish("workflow_runs", {"run": "wr_1"})
    assert await first == await second == [{"n": 1}, {"n": 2}]
    assert await other == [{"run": "wr_1"}]
    assert broadcast.subscribers("events") == 0  # they left when they stopped


async def test_a_subscriber_that_falls_behind_is_dropped() -> None:
    broadcast = Broadcast()
    slow = broadcast.subscribe("events")
    first = asyncio.ensure_future(slow.__anext__())
    await _listening(broadcast, "events")
    for n in range(QUEUE + 2):
        await broadcast.publish("events", {"n": n})
    assert await first == {"n": 0}
    with pytest.raises(Overflowed):
        async for _ in slow:
            pass
    assert broadcast.subscribers("events") == 0


async def _on_channel(probe: Redis, count: int) -> None:
    """Until ``count`` clients are subscribed to the broadcast's channel."""
    for _ in range(200):
        if (await probe.pubsub_numsub("opsgraph:broadcast"))[0][1] >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"fewer than {count} subscribed to the broadcast's channel")


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[tuple[Broadcast, Broadcast]]:
    clients = [Redis.from_url(redis_url) for _ in range(2)]
    a, b = (Broadcast(RedisGuard(client, timeout_s=2, retry_s=0.01)) for client in clients)
    for broadcast in (a, b):
        broadcast.start()
    yield a, b
    for broadcast in (a, b):
        await broadcast.aclose()
    for client in clients:
        await client.aclose()


async def test_a_subscriber_on_one_replica_hears_what_another_published(
    replicas: tuple[Broadcast, Broadcast], redis_url: str
) -> None:
    a, b = replicas
    on_a = asyncio.create_task(_take(a, "events", 2))
    on_b = asyncio.create_task(_take(b, "events", 2))
    await _listening(a, "events")
    await _listening(b, "events")
    probe = Redis.from_url(redis_url)
    try:
        await _on_channel(probe, 2)  # both replicas' listeners
    finally:
        await probe.aclose()
    await b.publish("events", {"n": 1})
    await a.publish("events", {"n": 2})
    # Each hears both, once: its own from itself, the other's through Redis.
    assert sorted(m["n"] for m in await asyncio.wait_for(on_a, 5)) == [1, 2]
    assert sorted(m["n"] for m in await asyncio.wait_for(on_b, 5)) == [1, 2]


async def test_what_is_published_together_is_one_message_heard_in_order_elsewhere(
    replicas: tuple[Broadcast, Broadcast], redis_url: str
) -> None:
    a, b = replicas
    on_a = asyncio.create_task(_take(a, "events", 2))
    runs_on_a = asyncio.create_task(_take(a, "workflow_runs", 1))
    await _listening(a, "events")
    await _listening(a, "workflow_runs")
    probe = Redis.from_url(redis_url)
    channel = probe.pubsub(ignore_subscribe_messages=True)
    try:
        await channel.subscribe("opsgraph:broadcast")
        await _on_channel(probe, 3)  # both replicas' listeners and the probe
        notices = [("events", {"n": 1}), ("workflow_runs", {"run": "wr_1"}), ("events", {"n": 2})]
        await b.publish_many(notices)
        assert await asyncio.wait_for(on_a, 5) == [{"n": 1}, {"n": 2}]
        assert await asyncio.wait_for(runs_on_a, 5) == [{"run": "wr_1"}]
        # The subscription's own confirmation reads as None: three reads, a second apart.
        heard = [await channel.get_message(timeout=1.0) for _ in range(3)]
        assert [m["data"] for m in heard if m] == [  # one message for the three
            json.dumps(
                {"origin": b.origin, "messages": [list(n) for n in notices]},
                separators=(",", ":"),
            ).encode()
        ]
    finally:
        await channel.aclose()
        await probe.aclose()


async def test_without_redis_a_replica_still_tells_its_own_subscribers() -> None:
    gone = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    broadcast = Broadcast(RedisGuard(gone, timeout_s=0.2, retry_s=0.01))
    broadcast.start()
    try:
        heard = asyncio.create_task(_take(broadcast, "events", 1))
        await _listening(broadcast, "events")
        await broadcast.publish("events", {"n": 1})
        assert await asyncio.wait_for(heard, 5) == [{"n": 1}]
    finally:
        await broadcast.aclose()
        await gone.aclose()


async def test_a_broadcast_closed_as_soon_as_it_started_stops(redis_url: str) -> None:
    """Closed while its listener still connects to Redis (redis-py swallowed the cancel
    there, and shutting a gateway down hung): it stops, over and over."""
    client = Redis.from_url(redis_url)
    try:
        for _ in range(20):
            broadcast = Broadcast(RedisGuard(client, timeout_s=2, retry_s=0.01))
            broadcast.start()
            await asyncio.sleep(0)
            await asyncio.wait_for(broadcast.aclose(), 10)  # a bound on a hang, not a timing
    finally:
        await client.aclose()
