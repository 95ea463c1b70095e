"""Circuit-breaker state for purgatory: shared between replicas through Redis while Redis is
up, kept in this process while it is down, so that no breaker call ever fails because of
Redis (a system the replicas found down stays paused; a Redis outage pauses nothing).

Redis is the truth while the guard lets calls through; every context read from it is also
kept in memory, so an outage continues from the last state this process saw. State learned
during an outage stays in this process: once Redis is back, its state wins again.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from purgatory import AsyncAbstractUnitOfWork
from purgatory.domain.messages.base import Message
from purgatory.domain.model import Context
from purgatory.service._async.repository import (
    AsyncAbstractRepository,
    AsyncInMemoryRepository,
    AsyncRedisRepository,
)
from redis.asyncio import Redis

from gateway.data.redis_guard import RedisGuard, RedisUnavailable


class _SharedRepository(AsyncRedisRepository):
    """purgatory's Redis repository (its keys and format, so every replica agrees) on the
    gateway's guarded client: its own constructor builds a second client from the URL, with
    redis-py's default 5 s timeouts and retries."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.messages = []
        self.prefix = "cbr::"

    async def update_state(self, name: str, state: str, opened_at: float | None) -> None:
        # purgatory's writes a breaker Redis does not know (registered here while Redis was
        # down) as a state without name, threshold or ttl, which no replica can read back.
        # Unknown, it is left to the next get() to register.
        key = f"{self.prefix}{name}"
        raw = await self.redis.get(key)
        if raw is None:
            return
        breaker = json.loads(raw) | {"state": state, "opened_at": opened_at}
        await self.redis.set(key, json.dumps(breaker), xx=True)


class FallbackRepository(AsyncAbstractRepository):
    def __init__(self, guard: RedisGuard) -> None:
        self.messages: list[Message] = []
        self._guard = guard
        self._shared = _SharedRepository(guard.redis)
        self._local = AsyncInMemoryRepository()

    async def get(self, name: str) -> Context | None:
        try:
            context = await self._guard.run(lambda: self._shared.get(name))
        except RedisUnavailable:
            return await self._local.get(name)
        if context is not None:
            await self._local.register(context)
        return context

    async def register(self, context: Context) -> None:
        await self._local.register(context)
        await self._shared_too(lambda: self._shared.register(context))

    # The in-memory repository holds the very context purgatory mutates, so it has nothing to
    # write for the three below; Redis has.
    async def update_state(self, name: str, state: str, opened_at: float | None) -> None:
        await self._shared_too(lambda: self._shared.update_state(name, state, opened_at))

    async def inc_failures(self, name: str, failure_count: int) -> None:
        await self._shared_too(lambda: self._shared.inc_failures(name, failure_count))

    async def reset_failure(self, name: str) -> None:
        await self._shared_too(lambda: self._shared.reset_failure(name))

    async def _shared_too(self, write: Callable[[], Awaitable[None]]) -> None:
        try:
            await self._guard.run(write)
        except RedisUnavailable:
            pass  # this process's state is already up to date


class FallbackUnitOfWork(AsyncAbstractUnitOfWork):
    def __init__(self, guard: RedisGuard) -> None:
        self.contexts = FallbackRepository(guard)

    async def commit(self) -> None:
        """Nothing to do: every write is applied as it is made, as in purgatory's own."""

    async def rollback(self) -> None:
        """Nothing to undo, as in purgatory's own."""
