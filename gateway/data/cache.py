"""The entity cache: what a system of record answered, kept for a short TTL (fresh) and a
long one (stale), so that a read can be served from cache while fresh and, when the owner is
down, served stale and marked so (stale-if-error).

In-process in the embedded default; Redis when ``OPSGRAPH_REDIS_URL`` is set, so that every
replica shares it and an invalidation on one is seen by all. While Redis is down each process
caches in memory instead (``FallbackCache``): the gateway answers in full, only less shared.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from redis.asyncio import Redis

from gateway.data.redis_guard import RedisGuard, RedisUnavailable

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    value: Any  # JSON-able
    fetched_at: float  # unix seconds
    fresh_until: float

    def fresh(self, now: float) -> bool:
        return now < self.fresh_until

    def dumps(self) -> str:
        return json.dumps({"v": self.value, "f": self.fetched_at, "u": self.fresh_until})

    @classmethod
    def loads(cls, raw: str | bytes) -> Entry:
        data = json.loads(raw)
        return cls(data["v"], data["f"], data["u"])


class EntityCache(Protocol):
    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]: ...

    async def put_many(self, entries: Mapping[str, Entry], keep_s: float) -> None: ...

    async def invalidate(self, keys: Sequence[str]) -> int: ...


class MemoryCache:
    """A bounded LRU of entries with expiry; one per process."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._entries: OrderedDict[str, tuple[float, Entry]] = OrderedDict()
        self._max = max_entries

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        now = time.time()
        found: list[Entry | None] = []
        for key in keys:
            item = self._entries.get(key)
            if item is None or item[0] <= now:
                self._entries.pop(key, None)
                found.append(None)
            else:
                self._entries.move_to_end(key)
                found.append(item[1])
        return found

    async def put_many(self, entries: Mapping[str, Entry], keep_s: float) -> None:
        expires = time.time() + keep_s
        for key, entry in entries.items():
            self._entries[key] = (expires, entry)
            self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def invalidate(self, keys: Sequence[str]) -> int:
        return sum(self._entries.pop(key, None) is not None for key in keys)


class RedisCache:
    def __init__(self, redis: Redis, prefix: str = "opsgraph:cache:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        if not keys:
            return []
        raw = await self._redis.mget([self._prefix + k for k in keys])
        return [None if r is None else Entry.loads(r) for r in raw]

    async def put_many(self, entries: Mapping[str, Entry], keep_s: float) -> None:
        if not entries:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, entry in entries.items():
                pipe.set(self._prefix + key, entry.dumps(), ex=max(1, int(keep_s)))
            await pipe.execute()

    async def invalidate(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        return int(await self._redis.delete(*[self._prefix + k for k in keys]))


class FallbackCache:
    """Redis while the guard lets calls through, this process's ``MemoryCache`` otherwise.

    Invalidations always reach memory too, and those Redis missed while it was down are
    replayed to it when it is back, a chunk before each call (so that no call outgrows the
    Redis timeout), so that it does not serve, as fresh, an entity an event said had changed.
    """

    MAX_MISSED = 10_000  # beyond this, a missed invalidation is bounded by the fresh TTL only
    REPLAY_CHUNK = 1_000

    def __init__(self, guard: RedisGuard, memory: MemoryCache | None = None) -> None:
        self._guard = guard
        self._redis = RedisCache(guard.redis)
        self._memory = memory or MemoryCache()
        self._missed: set[str] = set()

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        try:
            return await self._in_redis(lambda: self._redis.get_many(keys))
        except RedisUnavailable:
            return await self._memory.get_many(keys)

    async def put_many(self, entries: Mapping[str, Entry], keep_s: float) -> None:
        try:
            await self._in_redis(lambda: self._redis.put_many(entries, keep_s))
        except RedisUnavailable:
            await self._memory.put_many(entries, keep_s)

    async def invalidate(self, keys: Sequence[str]) -> int:
        dropped = await self._memory.invalidate(keys)
        try:
            return await self._in_redis(lambda: self._redis.invalidate(keys))
        except RedisUnavailable:
            if len(self._missed) < self.MAX_MISSED:
                self._missed.update(keys)
            return dropped

    async def _in_redis(self, call: Callable[[], Awaitable[T]]) -> T:
        async def replay_then_call() -> T:
            if self._missed:
                missed = list(itertools.islice(self._missed, self.REPLAY_CHUNK))
                await self._redis.invalidate(missed)
                self._missed.difference_update(missed)
            return await call()

        return await self._guard.run(replay_then_call)
