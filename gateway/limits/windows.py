"""Per-principal allowances per time window (requests, estimated cost), kept by the
``limits`` library as sliding window counters: one counter per principal and rate, however
much a hit spends.

In process by default. ``share`` moves them to Redis, so that every replica spends from the
same windows; every Redis call goes through the process's ``RedisGuard`` and, when Redis
is slow or down, the window is kept in process instead (each replica then allows the whole
rate on its own until Redis is back): Redis accelerates, it never gates.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence

import limits
from limits import RateLimitItem
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from gateway.auth.principal import Principal
from gateway.data.redis_guard import RedisGuard, RedisUnavailable

PREFIX = "opsgraph:limits"
# The ``limits`` storage scheme for each Redis URL scheme the settings accept.
SCHEMES = {"redis://": "async+redis://", "rediss://": "async+rediss://"}
SCHEMES["unix://"] = "async+redis+unix://"


@functools.lru_cache(maxsize=64)
def rates(text: str) -> tuple[RateLimitItem, ...]:
    """``600/minute`` (or several, ``10/second;600/minute``) as the library's items."""
    return tuple(limits.parse_many(text))


def holder(principal: Principal) -> str:
    """Whose windows a request spends from."""
    return f"{principal.kind.value}:{principal.subject}"


class Windows:
    def __init__(self) -> None:
        self._memory = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._guard: RedisGuard | None = None
        self._redis: SlidingWindowCounterRateLimiter | None = None

    def share(self, guard: RedisGuard, url: str) -> None:
        """Keep the windows in the Redis at ``url``, on the guard's connections."""
        scheme = next(s for s in SCHEMES if url.startswith(s))
        storage = RedisStorage(
            SCHEMES[scheme] + url.removeprefix(scheme),
            implementation="redispy",
            key_prefix=PREFIX,
            connection_pool=guard.redis.connection_pool,  # type: ignore[arg-type]
        )
        self._guard, self._redis = guard, SlidingWindowCounterRateLimiter(storage)

    async def spend(
        self, items: Sequence[RateLimitItem], who: str, amount: int = 1
    ) -> float | None:
        """Takes ``amount`` from each of ``who``'s windows in turn; None if each had room,
        else the seconds until the first that had none has room again."""
        for item in items:
            limiter = await self._hit(item, who, amount)
            if limiter is None:
                continue
            stats = await self._stats(limiter, item, who)
            return max(0.0, stats - time.time())
        return None

    async def _hit(
        self, item: RateLimitItem, who: str, amount: int
    ) -> SlidingWindowCounterRateLimiter | None:
        """None if ``amount`` fitted; else the limiter whose window it did not fit."""
        redis, guard = self._redis, self._guard
        if redis is not None and guard is not None:
            try:
                fitted = await guard.run(lambda: redis.hit(item, who, cost=amount))
                return None if fitted else redis
            except RedisUnavailable:
                pass
        fitted = await self._memory.hit(item, who, cost=amount)
        return None if fitted else self._memory

    async def _stats(
        self, limiter: SlidingWindowCounterRateLimiter, item: RateLimitItem, who: str
    ) -> float:
        """When ``who``'s window of ``item`` has room again (unix seconds)."""
        guard = self._guard
        if limiter is self._redis and guard is not None:
            try:
                stats = await guard.run(lambda: limiter.get_window_stats(item, who))
                return stats.reset_time
            except RedisUnavailable:
                return time.time() + item.get_expiry()
        return (await limiter.get_window_stats(item, who)).reset_time
