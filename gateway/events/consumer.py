"""Stream consumers: the events the relay appended to ``opsgraph:events`` are routed
(``gateway.events.routing``) by a Redis consumer group, so that replicas share them.

Each replica reads as its own consumer (``<host>-<pid>-<random>``) in the group ``opsgraph``:
an entry it takes is pending under its name until it has routed the event and acknowledged
the entry. An entry left pending ``claim_after_s`` (its consumer died, or lost Redis before
acknowledging) is claimed by whichever consumer asks next (``XAUTOCLAIM``) and routed again;
routing is idempotent (one run per event and route), so nothing is done twice.

Redis accelerates and never gates: an event no consumer has routed ``claim_after_s`` after it
arrived (the stream was lost with a Redis restart, or Redis is down) is routed from the
database's inbox (``Router.route_pending``), on every replica, with or without Redis. Without
Redis the relay routes each event as it moves it out of the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from redis.exceptions import ResponseError

from gateway.data.redis_guard import RedisGuard, RedisUnavailable
from gateway.events.canonical import restored
from gateway.events.relay import STREAM
from gateway.events.routing import Router
from gateway.storage import codec

log = logging.getLogger("opsgraph.events")

GROUP = "opsgraph"
BATCH = 50
# A consumer that holds no entries and has not read for a day is a process long gone.
FORGET_AFTER_S = 86400.0

Entry = tuple[bytes, dict[bytes, bytes]]


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class StreamConsumer:
    def __init__(
        self,
        redis: RedisGuard,
        router: Router,
        *,
        claim_after_s: float,
        stream: str = STREAM,
        group: str = GROUP,
        name: str | None = None,
        forget_after_s: float = FORGET_AFTER_S,
    ) -> None:
        self.redis = redis
        self.router = router
        self.claim_after_ms = int(claim_after_s * 1000)
        self.forget_after_ms = int(forget_after_s * 1000)
        self.stream = stream
        self.group = group
        self.name = name or consumer_name()
        self._grouped = False
        self._claim_at = 0.0

    async def consume_once(self) -> int:
        """Routes one batch: entries a dead consumer left pending first, then new ones;
        answers how many were routed and acknowledged. ``RedisUnavailable`` while Redis is
        down (the entries wait in the stream, or the events in the inbox)."""
        await self._group()
        entries: Sequence[Entry] = []
        # What a dead consumer left is looked for now and then (it waits claim_after_s
        # anyway), not in every round of a busy stream.
        now = time.monotonic()
        if now >= self._claim_at:
            self._claim_at = now + self.claim_after_ms / 2000
            entries = await self._claimed()
            if not entries:
                await self.redis.run(self._forget_gone)
        entries = entries or await self._new()
        done = [entry_id for entry_id, _ in entries]
        events = []
        for entry_id, fields in entries:
            try:
                events.append(restored(codec.loads(fields[b"event"])))
            except (KeyError, ValueError, TypeError) as unreadable:  # acknowledged, dropped
                log.error("stream entry %s is no event: %r", entry_id.decode(), unreadable)
        try:
            await self.router.route_many(events)
        except Exception:
            # Left pending: claimed again after claim_after_s, by this consumer or another,
            # or routed from the inbox.
            log.exception("routing %d stream entries failed", len(events))
            return 0
        if done:
            await self.redis.run(lambda: self._ack(done))
        return len(done)

    async def _forget_gone(self) -> None:
        """Drops from the group the consumers that hold nothing and have been silent for
        ``forget_after_s``: each process joins under a name of its own, and without this
        the group's list of consumers would grow with every restart."""
        for consumer in await self.redis.redis.xinfo_consumers(self.stream, self.group):
            name = consumer["name"]
            name = name.decode() if isinstance(name, bytes) else str(name)
            idle = int(consumer["idle"])
            if name != self.name and int(consumer["pending"]) == 0 and idle >= self.forget_after_ms:
                await self.redis.redis.xgroup_delconsumer(self.stream, self.group, name)

    async def _ack(self, entry_ids: Sequence[bytes]) -> None:
        await self.redis.redis.xack(self.stream, self.group, *entry_ids)

    async def _group(self) -> None:
        if self._grouped:
            return

        async def create() -> None:
            try:
                # From the stream's start: what the relay appended before any consumer
                # existed is routed too (routing twice does nothing twice).
                await self.redis.redis.xgroup_create(self.stream, self.group, "0", mkstream=True)
            except ResponseError as exc:  # an answer, not a failure of Redis
                if not str(exc).startswith("BUSYGROUP"):
                    raise

        await self.redis.run(create)
        self._grouped = True

    async def _claimed(self) -> Sequence[Entry]:
        answer = await self._unless_lost(
            lambda: self.redis.redis.xautoclaim(
                self.stream, self.group, self.name, self.claim_after_ms, "0-0", count=BATCH
            )
        )
        return list(answer[1]) if answer else []

    async def _new(self) -> Sequence[Entry]:
        answer = await self._unless_lost(
            lambda: self.redis.redis.xreadgroup(
                self.group, self.name, {self.stream: ">"}, count=BATCH
            )
        )
        return list(answer[0][1]) if answer else []

    async def _unless_lost(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """``call``'s answer; None when the group is gone (Redis restarted without the
        stream), and the group is made again next round."""

        async def guarded() -> Any:
            try:
                return await call()
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self._grouped = False
                return None

        return await self.redis.run(guarded)

    async def run_forever(self, interval_s: float) -> None:
        """Consumes until cancelled: again at once after a full batch, else after
        ``interval_s``; a round that fails is logged and the next one tries again."""
        while True:
            routed = 0
            try:
                routed = await self.consume_once()
            except RedisUnavailable:
                pass  # the inbox sweep routes what waits meanwhile
            except Exception:
                log.exception("consuming the event stream failed")
            if routed < BATCH:
                await asyncio.sleep(interval_s)


async def sweep_forever(router: Router, older_than: timedelta, interval_s: float) -> None:
    """``Router.route_pending`` every ``interval_s`` until cancelled; a failed round is logged."""
    while True:
        try:
            await router.route_pending(older_than)
        except Exception:
            log.exception("routing events from the inbox failed")
        await asyncio.sleep(interval_s)
