"""Live status to subscribers: what happened (an event processed, a workflow run moved on),
told to every GraphQL subscription that listens, on every replica.

``publish(topic, message)`` reaches this process's subscribers at once and, with Redis, the
other replicas' through a Redis pub/sub channel; each replica relays what it hears there to
its own subscribers (not its own messages, which it delivered already). What is published
together (``publish_many``) is one message on the channel: ``{"origin", "messages":
[[topic, message], ...]}``. Redis accelerates
and never gates: while it is down, or slow, a message still reaches this replica's
subscribers, and the listener reconnects when Redis is back.

A subscriber that does not keep up is not waited for: its queue holds ``QUEUE`` messages,
and one more ends its subscription (``Overflowed``) rather than holding the others back.
Messages are notices (which run, which event), not the state itself: a subscriber reads the
state it shows, so a missed notice costs freshness, never correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import Any

from redis.asyncio import Redis

from gateway.data.redis_guard import RedisGuard, RedisUnavailable
from gateway.storage import codec

log = logging.getLogger("opsgraph.broadcast")

CHANNEL = "opsgraph:broadcast"
# The topics: events processed ({id, source, type, subject, time}), workflow runs that
# moved on ({run}), credit requests whose status changed ({credit}).
EVENTS, WORKFLOW_RUNS, CREDITS = "events", "workflow_runs", "credits"
CUSTOMERS = "customers"
QUEUE = 256
RECONNECT_S = 1.0
STOP_S = 2.0


class Overflowed(Exception):
    """The subscriber fell more than ``QUEUE`` messages behind."""


_END = object()


class Broadcast:
    def __init__(self, redis: RedisGuard | None = None) -> None:
        # Publishing goes through the guard (its timeout, and no call at all while Redis is
        # known to be down): a frozen Redis costs one timeout per outage, not one per event.
        self.redis = redis
        self.origin = uuid.uuid4().hex  # this replica, in what it publishes to Redis
        # How what this replica publishes begins, as ``codec`` writes it: its own messages
        # come back from the channel, and are passed over without being decoded.
        self._mine = codec.dumpb({"origin": self.origin})[:-1]
        self._subscribers: dict[str, set[asyncio.Queue[Any]]] = defaultdict(set)
        self._listener: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        # Called each time the listener (re)subscribes to Redis: what other replicas said
        # while it was away is lost, and whoever keeps state on the strength of their
        # messages must not trust it any more.
        self.on_reconnect: list[Callable[[], None]] = []

    def subscribers(self, topic: str) -> int:
        return len(self._subscribers[topic])

    async def publish(self, topic: str, message: Mapping[str, Any]) -> None:
        await self.publish_many([(topic, message)])

    async def publish_many(self, messages: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """Each (topic, message), in order; to Redis as one message (a batch of events'
        notices was a message each: publishing and hearing them were 3% of a delivery's
        CPU)."""
        for topic, message in messages:
            self._deliver(topic, dict(message))
        if self.redis is None or not messages:
            return
        raw = codec.dumpb({"origin": self.origin, "messages": messages})
        client = self.redis.redis

        async def send() -> None:
            await client.publish(CHANNEL, raw)

        try:
            await self.redis.run(send)
        except RedisUnavailable as failed:  # the other replicas miss these notices
            log.debug("broadcast not published to Redis: %r", failed)

    async def subscribe(self, topic: str) -> AsyncGenerator[dict[str, Any], None]:
        """The messages published on ``topic`` from now on, until the caller closes it
        (``contextlib.aclosing``: a generator left unclosed stays subscribed until it is
        collected)."""
        queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE + 1)
        self._subscribers[topic].add(queue)
        try:
            while True:
                message = await queue.get()
                if message is _END:
                    raise Overflowed(f"more than {QUEUE} messages behind on {topic!r}")
                yield message
        finally:
            self._subscribers[topic].discard(queue)

    def start(self) -> None:
        if self.redis is not None and self._listener is None:
            self._stopping.clear()
            self._listener = asyncio.create_task(self._listen(self.redis.redis))

    async def aclose(self) -> None:
        """Stops the listener. It is told to stop as well as cancelled, and waited for at
        most ``STOP_S``: redis-py can swallow a cancellation that comes while it connects,
        and shutting down must not hang on it."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        self._stopping.set()
        listener.cancel()
        done, _ = await asyncio.wait({listener}, timeout=STOP_S)
        if not done:
            log.warning("the broadcast listener did not stop within %ss", STOP_S)

    def _deliver(self, topic: str, message: dict[str, Any]) -> None:
        for queue in list(self._subscribers[topic]):
            if queue.qsize() >= QUEUE:
                self._subscribers[topic].discard(queue)
                queue.put_nowait(_END)
            else:
                queue.put_nowait(message)

    async def _listen(self, redis: Redis) -> None:
        """Relays what other replicas publish to this one's subscribers, reconnecting
        while Redis is away, until ``aclose`` (it looks up at least once a second)."""
        while not self._stopping.is_set():
            try:
                async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    for reconnected in self.on_reconnect:
                        reconnected()
                    while not self._stopping.is_set():
                        raw = await pubsub.get_message(timeout=1.0)
                        if raw is not None:
                            self._heard(raw.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception as failed:
                log.info("broadcast listener lost Redis (%r); again in %ss", failed, RECONNECT_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), RECONNECT_S)

    def _heard(self, data: object) -> None:
        if isinstance(data, bytes) and data.startswith(self._mine):
            return  # delivered here when it was published
        try:
            heard = codec.loads(data)  # type: ignore[arg-type]
            if heard["origin"] != self.origin:
                for topic, message in heard["messages"]:
                    self._deliver(str(topic), dict(message))
        except (TypeError, ValueError, KeyError) as bad:
            log.warning("broadcast message not understood: %r", bad)
