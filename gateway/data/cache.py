"""The entity cache: what a system of record answered, kept for a short TTL (fresh) and a
long one (stale), so that a read can be served from cache while fresh and, when the owner is
down, served stale and marked so (stale-if-error).

In-process in the embedded default; Redis when ``OPSGRAPH_REDIS_URL`` is set, so that every
replica shares it and an invalidation on one is seen by all. While Redis is down each process
caches in memory instead (``FallbackCache``): the gateway answers in full, only less shared.

An invalidation must not be undone by a read that was already on its way: one that asked the
owner before a change and answers after the event that announced it would otherwise put the
old record back for a whole TTL. Each key has a generation, which an invalidation moves on;
a reader takes the generations of the keys it is about to fetch (``generations``) and hands
them back with what it fetched (``put_many``), and an entry whose key moved on meanwhile is
not kept. In Redis the comparison and the write are one script, so no replica's
invalidation slips in between.
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

    async def generations(self, keys: Sequence[str]) -> list[int]: ...

    async def put_many(
        self,
        entries: Mapping[str, Entry],
        keep_s: float,
        generations: Mapping[str, int] | None = None,
    ) -> None:
        """Keeps each entry whose key is still at the generation given for it (all of them,
        with no generations)."""
        ...

    async def invalidate(self, keys: Sequence[str]) -> int: ...


class MemoryCache:
    """A bounded LRU of entries with expiry; one per process."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._entries: OrderedDict[str, tuple[float, Entry]] = OrderedDict()
        self._max = max_entries
        # Of the keys invalidated last; a key it forgot is at generation 0 again, which a
        # read that took a later one sees as moved on (it keeps nothing: never stale).
        self._generations: OrderedDict[str, int] = OrderedDict()

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

    async def generations(self, keys: Sequence[str]) -> list[int]:
        return [self._generations.get(key, 0) for key in keys]

    async def put_many(
        self,
        entries: Mapping[str, Entry],
        keep_s: float,
        generations: Mapping[str, int] | None = None,
    ) -> None:
        expires = time.time() + keep_s
        for key, entry in entries.items():
            if generations is not None and generations.get(key) != self._generations.get(key, 0):
                continue
            self._entries[key] = (expires, entry)
            self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def invalidate(self, keys: Sequence[str]) -> int:
        for key in keys:
            self._generations[key] = self._generations.get(key, 0) + 1
            self._generations.move_to_end(key)
        while len(self._generations) > self._max:
            self._generations.popitem(last=False)
        return sum(self._entries.pop(key, None) is not None for key in keys)


# Sets each entry whose generation key still holds the generation the reader took.
# KEYS: n entry keys, then their n generation keys; ARGV: keep_s, then value and
# generation for each entry. Answers how many it set.
_PUT_IF_CURRENT = """
local n = #KEYS / 2
local written = 0
for i = 1, n do
  local now = tonumber(redis.call('GET', KEYS[n + i]) or '0')
  if now == tonumber(ARGV[2 * i + 1]) then
    redis.call('SET', KEYS[i], ARGV[2 * i], 'EX', ARGV[1])
    written = written + 1
  end
end
return written
"""
# Drops each entry and moves its generation on, at once (one command, not two per key: the
# packing of a pipeline's commands costs a busy webhook intake more than Redis's work).
# KEYS: n entry keys, then their n generation keys; ARGV: how long a generation is kept.
# Answers how many entries it dropped.
_INVALIDATE = """
local n = #KEYS / 2
local dropped = 0
for i = 1, n do
  dropped = dropped + redis.call('DEL', KEYS[i])
  redis.call('INCR', KEYS[n + i])
  redis.call('EXPIRE', KEYS[n + i], ARGV[1])
end
return dropped
"""
# How long a key's generation is kept after its last invalidation: longer than any read
# can take (a read that took it later finds it gone: 0, moved on, and keeps nothing).
GENERATION_KEEP_S = 86_400


class RedisCache:
    def __init__(self, redis: Redis, prefix: str = "opsgraph:cache:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._put_if_current = redis.register_script(_PUT_IF_CURRENT)
        self._invalidate = redis.register_script(_INVALIDATE)

    def _generation_key(self, key: str) -> str:
        return f"{self._prefix}gen:{key}"

    async def generations(self, keys: Sequence[str]) -> list[int]:
        if not keys:
            return []
        raw = await self._redis.mget([self._generation_key(k) for k in keys])
        return [0 if r is None else int(r) for r in raw]

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        if not keys:
            return []
        raw = await self._redis.mget([self._prefix + k for k in keys])
        return [None if r is None else Entry.loads(r) for r in raw]

    async def put_many(
        self,
        entries: Mapping[str, Entry],
        keep_s: float,
        generations: Mapping[str, int] | None = None,
    ) -> None:
        if not entries:
            return
        keep = max(1, int(keep_s))
        if generations is None:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, entry in entries.items():
                    pipe.set(self._prefix + key, entry.dumps(), ex=keep)
                await pipe.execute()
            return
        keys = list(entries)
        args: list[str | int] = [keep]
        for key in keys:
            args += [entries[key].dumps(), generations.get(key, -1)]
        names = [self._prefix + k for k in keys] + [self._generation_key(k) for k in keys]
        await self._put_if_current(keys=names, args=args)

    async def invalidate(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        names = [self._prefix + k for k in keys] + [self._generation_key(k) for k in keys]
        return int(await self._invalidate(keys=names, args=[GENERATION_KEEP_S]))


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

    async def generations(self, keys: Sequence[str]) -> list[int]:
        try:
            return await self._in_redis(lambda: self._redis.generations(keys))
        except RedisUnavailable:
            return await self._memory.generations(keys)

    async def put_many(
        self,
        entries: Mapping[str, Entry],
        keep_s: float,
        generations: Mapping[str, int] | None = None,
    ) -> None:
        try:
            await self._in_redis(lambda: self._redis.put_many(entries, keep_s, generations))
        except RedisUnavailable:
            await self._memory.put_many(entries, keep_s, generations)

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
