"""Redis accelerates and never gates: every Redis call goes through the process's one
``RedisGuard``, and every caller has an in-process fallback for when the guard says no.

The guard bounds each call by ``redis_timeout_s``. After a failure it treats Redis as down for
``redis_retry_s``: no Redis call at all in that window, callers fall back at once. When the
window is over exactly one caller probes (the others keep falling back until it answers), and
its success ends the outage. So a frozen Redis costs at most one timeout per window however
many requests arrive, and the log says once per outage that Redis went down, with the reason,
and once that it is back.

Written here rather than on purgatory's breaker, which guards the connectors: purgatory keeps
its state in a store and the store replicas share is this Redis, so only its in-memory flavour
could guard it, and that one lets every concurrent caller through when half-open, where a
frozen Redis needs exactly one probe. What is left is a timestamp and a flag.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError

T = TypeVar("T")

log = logging.getLogger("opsgraph.redis")


class RedisUnavailable(Exception):
    """Redis is down, or this call to it failed: use the in-process fallback. Callers always
    catch it; it never reaches a client."""

    def __init__(self, error: str) -> None:
        super().__init__(f"Redis is unavailable: {error}")
        self.error = error  # the type of the last failure


def _unless_cancelled(
    task: asyncio.Task[Any] | None, cancels: int, cause: BaseException | None = None
) -> None:
    """Raises ``CancelledError`` if ``task`` was cancelled while it called Redis. redis-py
    (8.2) can swallow a cancellation that arrives while it takes or gives back a pooled
    connection: the call then answers, or fails, as if nothing had happened, and a loop that
    calls Redis until cancelled, or a request past its deadline, would go on."""
    if task is not None and task.cancelling() > cancels:
        raise asyncio.CancelledError() from cause


class RedisGuard:
    def __init__(
        self,
        redis: Redis,
        timeout_s: float,
        retry_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self._clock = clock
        self.calls = 0  # calls sent to Redis
        # Failed calls that began an outage window (or, as the probe, renewed it). Calls in
        # flight together when Redis goes away fail together and count once.
        self.failures = 0
        self._retry_at: float | None = None  # None while Redis is up
        self._down_since = 0.0
        self._error = ""
        self._epoch = 0  # bumped by every counted failure
        self._probing = False
        self._drops: set[asyncio.Task[None]] = set()

    @classmethod
    def from_url(cls, url: str, timeout_s: float, retry_s: float) -> RedisGuard:
        client = Redis.from_url(
            url,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            # A ConnectionError is retried once, at once, on a fresh connection: a pooled
            # connection that died with a restarted Redis is replaced transparently. A timeout
            # is never retried (redis-py's default retries it with backoff): a frozen Redis
            # then costs one timeout.
            retry=Retry(NoBackoff(), retries=1, supported_errors=(ConnectionError,)),
        )
        return cls(client, timeout_s, retry_s)

    @property
    def up(self) -> bool:
        return self._retry_at is None

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` (Redis I/O only), bounded by the timeout; ``RedisUnavailable`` without
        calling it while Redis is down or another caller is probing."""
        retry_at = self._retry_at
        probe = retry_at is not None
        if retry_at is not None:
            if self._probing or self._clock() < retry_at:
                raise RedisUnavailable(self._error)
            self._probing = True
        epoch = self._epoch
        self.calls += 1
        task = asyncio.current_task()
        cancels = task.cancelling() if task is not None else 0
        try:
            async with asyncio.timeout(self.timeout_s):
                result = await call()
            _unless_cancelled(task, cancels)
        except asyncio.CancelledError:
            raise
        # Anything a Redis call raises means Redis cannot serve it now: fall back, say so once.
        except Exception as exc:  # noqa: BLE001
            _unless_cancelled(task, cancels, exc)
            self._failed(epoch, exc)
            raise RedisUnavailable(self._error) from exc
        finally:
            if probe:
                self._probing = False
        if probe:
            log.info("Redis is back after %.1fs", self._clock() - self._down_since)
            self._retry_at = None
        return result

    async def ping(self) -> None:
        await self.run(self.redis.ping)

    def _failed(self, epoch: int, exc: Exception) -> None:
        if epoch != self._epoch:
            return  # in flight when another call already began this outage
        self._epoch += 1
        self.failures += 1
        now = self._clock()
        self._error = type(exc).__name__
        if self._retry_at is None:
            self._down_since = now
            log.warning(
                "Redis is unavailable (%s: %s); serving from in-process state, next try in %gs",
                self._error,
                str(exc) or f"no answer within {self.timeout_s:g}s",
                self.retry_s,
            )
            self._drop_connections()
        self._retry_at = now + self.retry_s

    def _drop_connections(self) -> None:
        """Close the idle pooled connections so that none is reused once Redis is back (those
        in use are closed by redis-py as their calls fail). In a task, so that the caller that
        found the outage pays nothing more than its one timeout."""

        async def drop() -> None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.timeout_s):
                    await self.redis.connection_pool.disconnect(inuse_connections=False)

        task = asyncio.create_task(drop())
        self._drops.add(task)
        task.add_done_callback(self._drops.discard)

    async def aclose(self) -> None:
        await asyncio.gather(*self._drops)
        await self.redis.aclose()
