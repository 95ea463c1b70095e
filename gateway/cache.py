"""The entity cache: what a system of record answered, kept for a short TTL (fresh) and a
long one (stale), so that a read can be served from cache while fresh and, when the owner is
down, served stale and marked so (stale-if-error).

In-process in the embedded default; Redis when ``OPSGRAPH_REDIS_URL`` is set, so that every
replica shares it and an invalidation on one is seen by all.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis


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
