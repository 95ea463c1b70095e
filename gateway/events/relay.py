"""The outbox relay: the canonical events the intake wrote to the outbox (topic ``events``)
are appended, oldest first, to the Redis stream ``opsgraph:events`` (one entry per event:
``id`` = ``<system>:<event id>``, ``event`` = the CloudEvent as JSON), then marked published.

- While Redis is down (or slow: the guard's timeout) the rows stay in the outbox and the
  next round sends them; nothing is lost. A round that appended and died before marking
  appends those entries again: routing them twice starts nothing twice (a run per event and
  route), and a consumer skips an event already routed.
- Replicas share the outbox: on PostgreSQL each round takes its rows with ``FOR UPDATE SKIP
  LOCKED``, so two relays never send the same rows at once.
- Without Redis there is no stream to feed: the relay routes each event itself
  (``gateway.events.routing``, given as ``route``) and then marks it published. Routing is
  idempotent, so a round that dies before marking costs a second look, not a second effect.
- Published rows of every topic are deleted ``KEEP`` after they were published.

The stream is capped near ``MAX_LEN`` entries (Redis's approximate trimming).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from cloudevents.http import CloudEvent
from sqlalchemy import Text, cast, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.data.redis_guard import RedisGuard, RedisUnavailable
from gateway.events.canonical import restored
from gateway.events.intake import OUTBOX_TOPIC
from gateway.storage.tables import OutboxMessage

log = logging.getLogger("opsgraph.events")

STREAM = "opsgraph:events"
MAX_LEN = 100_000
BATCH = 500
KEEP = timedelta(days=7)


class Relay:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        redis: RedisGuard | None,
        stream: str = STREAM,
        route: Callable[[CloudEvent], Awaitable[object]] | None = None,
    ) -> None:
        self.sessions = sessions
        self.redis = redis
        self.stream = stream
        self.route = route

    async def relay_once(self) -> int:
        """Sends one batch of unpublished events; answers how many were published (0 while
        Redis is down: they wait)."""
        if self.redis is None:
            return await self._route_here()
        async with self.sessions.begin() as session:
            connection = await session.connection()  # Core statements: no ORM objects here
            # The payload as the database holds it, text the stream takes as it is: not
            # decoded here to be encoded again.
            text = cast(OutboxMessage.payload, Text)
            taken = select(OutboxMessage.id, OutboxMessage.key, text).where(
                OutboxMessage.topic == OUTBOX_TOPIC, OutboxMessage.published_at.is_(None)
            )
            if connection.dialect.name == "postgresql":
                taken = taken.with_for_update(skip_locked=True)
            taken = taken.order_by(OutboxMessage.id).limit(BATCH)
            rows = [(id_, key, payload) for id_, key, payload in await connection.execute(taken)]
            if not rows:
                return 0
            try:
                await self.redis.run(lambda: self._append(rows))
            except RedisUnavailable:
                return 0  # the rows stay unpublished; the transaction ends with nothing
            await _published(session, [id_ for id_, _, _ in rows])
        return len(rows)

    async def _route_here(self) -> int:
        """Without Redis: routes a batch in this process, then marks it published (outside
        any transaction of the outbox's: routing writes, and SQLite has one writer)."""
        async with self.sessions() as session:
            rows = list(
                await session.execute(
                    select(OutboxMessage.id, OutboxMessage.payload)
                    .where(
                        OutboxMessage.topic == OUTBOX_TOPIC, OutboxMessage.published_at.is_(None)
                    )
                    .order_by(OutboxMessage.id)
                    .limit(BATCH)
                )
            )
        if not rows:
            return 0
        routed = []
        for id_, payload in rows:
            if self.route is not None:
                try:
                    await self.route(restored(payload))
                except Exception:  # left unpublished: the next round tries it again
                    log.exception("routing outbox event %s failed", id_)
                    continue
            routed.append(id_)
        async with self.sessions.begin() as session:
            await _published(session, routed)
        return len(routed)

    async def _append(self, rows: list[tuple[int, str, str]]) -> None:
        assert self.redis is not None
        async with self.redis.redis.pipeline(transaction=False) as pipe:
            for _, key, payload in rows:
                fields = {"id": key, "event": payload}
                pipe.xadd(self.stream, fields, maxlen=MAX_LEN, approximate=True)  # type: ignore[arg-type]
            await pipe.execute()

    async def purge(self) -> int:
        """Deletes the rows published more than ``KEEP`` ago; how many."""
        async with self.sessions.begin() as session:
            done = await session.execute(
                delete(OutboxMessage).where(
                    OutboxMessage.published_at.is_not(None),
                    OutboxMessage.published_at < datetime.now(UTC) - KEEP,
                )
            )
        return int(getattr(done, "rowcount", 0) or 0)

    async def run_forever(self, interval_s: float, purge_every_s: float = 3600.0) -> None:
        """Relays every ``interval_s`` (at once again while a round finds a full batch),
        and purges every ``purge_every_s``."""
        purge_at = time.monotonic()
        while True:
            sent = 0
            try:
                sent = await self.relay_once()
                if time.monotonic() >= purge_at:
                    await self.purge()
                    purge_at = time.monotonic() + purge_every_s
            except Exception:  # a round that fails is the next one's to retry
                log.exception("relaying the outbox failed")
            if sent < BATCH:
                await asyncio.sleep(interval_s)


async def _published(session: AsyncSession, ids: list[int]) -> None:
    if ids:
        # On the connection: a Core update, not the ORM's, which would look for the rows in
        # the session.
        await (await session.connection()).execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(published_at=datetime.now(UTC))
        )
