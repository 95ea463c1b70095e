"""The outbox relay on SQLite and PostgreSQL with a real Redis: events reach the stream
oldest first and once, wait in the outbox while Redis is away and go when it is back, two
relays at once send each row once, and published rows are purged after a week."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, update

from gateway.data.redis_guard import RedisGuard
from gateway.events.intake import OUTBOX_TOPIC
from gateway.events.relay import KEEP, Relay
from gateway.storage.database import create_engine, sessions
from gateway.storage.migrate import upgrade
from gateway.storage.tables import OutboxMessage


@pytest.fixture
async def outbox(migrated_url: str) -> AsyncIterator[Any]:
    engine = create_engine(migrated_url)
    yield sessions(engine)
    await engine.dispose()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[RedisGuard]:
    guard = RedisGuard(Redis.from_url(redis_url), timeout_s=2, retry_s=0.01)
    yield guard
    await guard.redis.aclose()


@pytest.fixture
def stream() -> str:
    return f"opsgraph:test-events:{uuid.uuid4().hex}"


async def queue(outbox: Any, *ids: str) -> None:
    async with outbox.begin() as session:
        session.add_all(
            OutboxMessage(topic=OUTBOX_TOPIC, key=f"billing:{i}", payload={"id": i, "type": "t"})
            for i in ids
        )
        # Another topic (a notification) is not the relay's.
        session.add(OutboxMessage(topic="notify.crm.activity", key=f"n:{ids[0]}", payload={}))


async def streamed(redis: RedisGuard, stream: str) -> list[tuple[str, dict[str, Any]]]:
    entries = await redis.redis.xrange(stream)
    return [(fields[b"id"].decode(), json.loads(fields[b"event"])) for _, fields in entries]


async def unpublished(outbox: Any) -> int:
    async with outbox() as session:
        count = await session.scalar(
            select(func.count()).where(
                OutboxMessage.topic == OUTBOX_TOPIC, OutboxMessage.published_at.is_(None)
            )
        )
    return int(count or 0)


async def test_events_reach_the_stream_oldest_first_and_once(
    outbox: Any, redis: RedisGuard, stream: str
) -> None:
    await queue(outbox, "evt_1", "evt_2", "evt_3")
    relay = Relay(outbox, redis, stream)
    assert await relay.relay_once() == 3
    assert await relay.relay_once() == 0  # nothing left to send
    assert await streamed(redis, stream) == [
        (f"billing:evt_{n}", {"id": f"evt_{n}", "type": "t"}) for n in (1, 2, 3)
    ]
    assert await unpublished(outbox) == 0


async def test_while_redis_is_away_the_outbox_holds_the_events(
    outbox: Any, redis: RedisGuard, stream: str
) -> None:
    await queue(outbox, "evt_a", "evt_b")
    gone = RedisGuard(Redis.from_url("redis://127.0.0.1:1/0"), timeout_s=0.2, retry_s=0.01)
    try:
        assert await Relay(outbox, gone, stream).relay_once() == 0
    finally:
        await gone.redis.aclose()
    assert await unpublished(outbox) == 2
    assert await Relay(outbox, redis, stream).relay_once() == 2  # back: nothing lost
    assert [i for i, _ in await streamed(redis, stream)] == ["billing:evt_a", "billing:evt_b"]


async def test_without_redis_the_events_are_only_marked(outbox: Any) -> None:
    await queue(outbox, "evt_x")
    assert await Relay(outbox, None).relay_once() == 1
    assert await unpublished(outbox) == 0


@pytest.fixture
def shared_database(postgres_database: str) -> str:
    """Replicas share PostgreSQL (the embedded SQLite default runs one process, one relay)."""
    upgrade(postgres_database)
    return postgres_database


@pytest.fixture
async def shared_outbox(shared_database: str) -> AsyncIterator[Any]:
    engine = create_engine(shared_database)
    yield sessions(engine)
    await engine.dispose()


async def test_two_relays_at_once_send_each_event_once(
    shared_outbox: Any, redis: RedisGuard, stream: str
) -> None:
    outbox = shared_outbox
    await queue(outbox, *(f"evt_{n}" for n in range(200)))
    relays = [Relay(outbox, redis, stream) for _ in range(2)]

    async def drain(relay: Relay) -> int:
        sent = 0
        for _ in range(100):
            sent_now = await relay.relay_once()
            if not sent_now:
                return sent
            sent += sent_now
        return sent

    counts = await asyncio.gather(*(drain(r) for r in relays))
    assert sum(counts) == 200
    ids = [i for i, _ in await streamed(redis, stream)]
    assert sorted(ids) == sorted(f"billing:evt_{n}" for n in range(200))  # each once


async def test_published_rows_are_purged_after_a_week(outbox: Any) -> None:
    await queue(outbox, "evt_old", "evt_new")
    await Relay(outbox, None).relay_once()
    async with outbox.begin() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.key == "billing:evt_old")
            .values(published_at=datetime.now(UTC) - KEEP - timedelta(minutes=1))
        )
    assert await Relay(outbox, None).purge() == 1
    async with outbox() as session:
        keys = set(await session.scalars(select(OutboxMessage.key)))
    assert keys == {"billing:evt_new", "n:evt_old"}  # the notification waits for its sender
