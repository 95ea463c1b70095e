"""The resilience every connector gets without writing it: a deadline per attempt, retries
with exponential backoff and jitter for retryable errors only (a 429's Retry-After wins over
the backoff), a circuit breaker per connector and a concurrency limit per connector.

Retries come from tenacity and the breaker from purgatory (its Redis unit of work shares
breaker state between replicas); this module only composes them in the right order:

    bulkhead (semaphore) -> breaker -> deadline -> connector call,  all inside the retry loop

so a retry waits outside the bulkhead, every attempt the system answers or fails counts
towards the breaker, and an open breaker fails fast without being retried. Each attempt is
a span of its own (``connectors.tracing``), with its number and the breaker's state.

The request's deadline (``connectors.deadline``) caps every attempt: an attempt gets no more
than what the request has left, and no retry starts when no useful attempt fits. A call
cut short by the request's deadline, or cancelled because its request went away, says
nothing about the system and leaves its breaker alone.

A listing of several pages (``list_all``) is a call per page, walked by ``connectors.paging``:
each page gets the policy's deadline and retries, so a failure on page N retries page N
instead of starting the walk again from page 1.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import ExcludeType, OpenedState
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_any,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from connectors import deadline, inputs, paging, tracing
from connectors.base import Connector
from connectors.commands import WriteCommand, WriteResult
from connectors.errors import (
    CircuitOpen,
    DeadlineExceeded,
    GatewayError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from connectors.models import Booked, ChangeBatch, Health, ObjectKind, Page, Record, SystemName

T = TypeVar("T")


@dataclass(frozen=True)
class Policy:
    timeout_s: float = 10.0
    attempts: int = 3  # first try included
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 2.0
    max_retry_after_s: float = 10.0  # a longer Retry-After is surfaced, not waited for
    breaker_threshold: int = 5  # consecutive failures that open the breaker
    breaker_reset_s: float = 30.0  # open -> half-open after this long
    max_concurrency: int = 16


# Left for assembling the answer after the last attempt gives up at the request's deadline.
RESERVE_S = 0.1
# An attempt with less time than this is not worth starting.
MIN_ATTEMPT_S = 0.05

# Only the system's own failures count towards its breaker; a refusal, a 404 or a rate
# limit says nothing about whether it is up.
_NOT_THE_SYSTEMS_FAULT: ExcludeType = [
    (GatewayError, lambda e: not isinstance(e, UpstreamTimeout | UpstreamUnavailable))
]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


# purgatory's names for them
_BREAKER_STATES = {
    "closed": BreakerState.CLOSED,
    "opened": BreakerState.OPEN,
    "half-opened": BreakerState.HALF_OPEN,
}


class CallObserver:
    """Told of each attempt a ``Resilient`` makes and each retry it waits for (the
    gateway's metrics listen); this one ignores them. A cancelled attempt is not told."""

    def attempted(self, system: SystemName, seconds: float, error: BaseException | None) -> None:
        """An attempt ended after ``seconds``: answered (``error`` None) or failed."""

    def retrying(self, system: SystemName) -> None:
        """A failed attempt is to be tried again, after a wait."""


class _OutOfTime(stop_base):
    """Stop retrying when the next attempt could not start, after its wait, with time for
    a useful try before the request's deadline."""

    def __call__(self, state: RetryCallState) -> bool:
        left = deadline.remaining()
        return left is not None and left - RESERVE_S - state.upcoming_sleep < MIN_ATTEMPT_S


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, UpstreamRateLimited) and exc.retry_after is not None:
        return True
    return isinstance(exc, GatewayError) and exc.retryable


class Resilient:
    """Wraps a connector with ``Policy``. Exposes the connector's methods and attributes."""

    def __init__(
        self,
        inner: Connector,
        policy: Policy | None = None,
        breakers: AsyncCircuitBreakerFactory | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        observer: CallObserver | None = None,
    ) -> None:
        self.inner = inner
        self.policy = policy or Policy()
        self._sleep = sleep
        self.observer = observer or CallObserver()
        # initial * 2^n plus up to ``initial`` of jitter, capped: retries from many callers
        # spread out instead of arriving together.
        self._backoff = wait_exponential_jitter(
            multiplier=self.policy.backoff_initial_s,
            jitter=self.policy.backoff_initial_s,
            max=self.policy.backoff_max_s,
        )
        self.system: SystemName = inner.system
        self.reads = inner.reads
        self.writes = inner.writes
        self.batch_limit = inner.batch_limit
        self._breakers = breakers or AsyncCircuitBreakerFactory()
        self._bulkhead = asyncio.Semaphore(self.policy.max_concurrency)
        self._circuit = f"opsgraph:{inner.system.value}"

    @property
    def calls(self) -> int:
        return self.inner.calls

    async def breaker_state(self) -> BreakerState:
        async with self._breakers.uow as uow:
            context = await uow.contexts.get(self._circuit)
        return BreakerState.CLOSED if context is None else _BREAKER_STATES[context.state]

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, UpstreamRateLimited) and exc.retry_after is not None:
            return exc.retry_after
        return float(self._backoff(state))

    def _should_retry(self, exc: BaseException) -> bool:
        if isinstance(exc, UpstreamRateLimited):
            wait = exc.retry_after or 0.0
            return wait <= self.policy.max_retry_after_s
        return _retryable(exc)

    def _limit(self) -> tuple[float, bool]:
        """Seconds this attempt may take, and whether the request's deadline (rather than
        the policy's timeout) sets them."""
        left = deadline.remaining()
        if left is None or left - RESERVE_S >= self.policy.timeout_s:
            return self.policy.timeout_s, False
        return left - RESERVE_S, True

    def _timed_out(self, limit: float, by_deadline: bool) -> UpstreamTimeout:
        if by_deadline:
            return DeadlineExceeded(
                f"{self.system} did not answer before the request's deadline",
                system=self.system.value,
            )
        return UpstreamTimeout(
            f"{self.system} did not answer within {limit:g}s", system=self.system.value
        )

    async def _attempt(self, call: Callable[[], Awaitable[T]]) -> T:
        limit, by_deadline = self._limit()
        if limit <= 0:
            raise self._timed_out(limit, by_deadline)
        # One clock for the wait on the bulkhead and for the call itself.
        until = asyncio.get_running_loop().time() + limit
        try:
            async with asyncio.timeout_at(until):
                await self._bulkhead.acquire()
        except TimeoutError:
            busy = DeadlineExceeded if by_deadline else UpstreamTimeout
            raise busy(
                f"{self.system} is busy: no call slot came free within {limit:g}s",
                system=self.system.value,
            ) from None
        try:
            return await self._guarded(call, until, limit, by_deadline)
        finally:
            self._bulkhead.release()

    async def _guarded(
        self, call: Callable[[], Awaitable[T]], until: float, limit: float, by_deadline: bool
    ) -> T:
        """``call`` under the breaker. The breaker hears only verdicts on the system: a
        call cancelled (its request gone) or cut by the request's deadline gives none."""
        breaker = await self._breakers.get_breaker(
            self._circuit,
            threshold=self.policy.breaker_threshold,
            ttl=self.policy.breaker_reset_s,
            exclude=_NOT_THE_SYSTEMS_FAULT,
        )
        tracing.breaker_state(_BREAKER_STATES[breaker.context.state])
        try:
            await breaker.__aenter__()
        except OpenedState:
            raise CircuitOpen(
                f"{self.system} is failing; calls are paused for up to "
                f"{self.policy.breaker_reset_s:g}s",
                system=self.system.value,
            ) from None
        try:
            try:
                async with asyncio.timeout_at(until):
                    result = await call()
            except TimeoutError:
                raise self._timed_out(limit, by_deadline) from None
        except (asyncio.CancelledError, DeadlineExceeded):
            raise
        except BaseException as exc:
            await breaker.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        await breaker.__aexit__(None, None, None)
        return result

    async def run(
        self,
        call: Callable[[], Awaitable[T]],
        *,
        attempts: int | None = None,
        operation: str = "call",
        kind: ObjectKind | None = None,
        batch: int | None = None,
    ) -> T:
        """``call`` with the policy; ``attempts`` overrides the policy's count (1: when the
        caller has a stale answer to fall back on, it wants the first failure, not the
        last). ``operation``, ``kind`` and ``batch`` (ids asked for) describe each
        attempt's span (``connectors.tracing``)."""
        inputs.spoil(f"called {self.system}")
        retrying = AsyncRetrying(
            stop=stop_any(stop_after_attempt(attempts or self.policy.attempts), _OutOfTime()),
            wait=self._wait,
            retry=retry_if_exception(self._should_retry),
            reraise=True,
            sleep=self._sleep,
            before_sleep=self._retrying,
        )
        async for attempt in retrying:
            number = attempt.retry_state.attempt_number
            with attempt, tracing.attempt(self.system, operation, number, kind, batch):
                return await self._observed(call)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _observed(self, call: Callable[[], Awaitable[T]]) -> T:
        """One attempt, told to the observer with how long it took and how it ended."""
        started = time.perf_counter()
        try:
            result = await self._attempt(call)
        except Exception as exc:  # a cancelled attempt (BaseException) is not told
            self.observer.attempted(self.system, time.perf_counter() - started, exc)
            raise
        self.observer.attempted(self.system, time.perf_counter() - started, None)
        return result

    def _retrying(self, state: RetryCallState) -> None:
        self.observer.retrying(self.system)

    async def fetch_many(
        self, kind: ObjectKind, ids: Sequence[str], *, attempts: int | None = None
    ) -> list[Record | None]:
        return await self.run(
            lambda: self.inner.fetch_many(kind, ids),
            attempts=attempts,
            operation="fetch_many",
            kind=kind,
            batch=len(ids),
        )

    async def list_page(
        self,
        kind: ObjectKind,
        *,
        cursor: str | None = None,
        limit: int = 100,
        filters: Mapping[str, str] | None = None,
    ) -> Page[Record]:
        return await self.run(
            lambda: self.inner.list_page(kind, cursor=cursor, limit=limit, filters=filters),
            operation="list_page",
            kind=kind,
        )

    async def ledger_page(
        self,
        kind: ObjectKind,
        *,
        cursor: str | None = None,
        limit: int = 100,
        filters: Mapping[str, str] | None = None,
    ) -> Page[Booked]:
        return await self.run(
            lambda: self.inner.ledger_page(kind, cursor=cursor, limit=limit, filters=filters),
            operation="ledger_page",
            kind=kind,
        )

    async def list_all(
        self,
        kind: ObjectKind,
        *,
        filters: Mapping[str, str] | None = None,
        limit: int = 100,
        attempts: int | None = None,
    ) -> list[Record]:
        """Every record of ``kind``. Each page is a call of its own, with its own deadline
        and retries: a failure on page N retries page N, not the walk from page 1."""

        def page(cursor: str | None) -> Awaitable[Page[Record]]:
            return self.run(
                lambda: self.inner.list_page(kind, cursor=cursor, limit=limit, filters=filters),
                attempts=attempts,
                operation="list_page",
                kind=kind,
            )

        return await paging.collect(page)

    async def fetch_related(
        self, kind: ObjectKind, parent_ids: Sequence[str], *, attempts: int | None = None
    ) -> list[list[Record]]:
        return await self.run(
            lambda: self.inner.fetch_related(kind, parent_ids),
            attempts=attempts,
            operation="fetch_related",
            kind=kind,
            batch=len(parent_ids),
        )

    async def write(self, command: WriteCommand, idempotency_key: str) -> WriteResult:
        # Safe to retry: the idempotency key makes a repeated write a replay.
        return await self.run(lambda: self.inner.write(command, idempotency_key), operation="write")

    async def changes(self, since: str | None) -> ChangeBatch:
        return await self.run(lambda: self.inner.changes(since), operation="changes")

    async def health(self) -> Health:
        """One attempt, no breaker: health must say what the system does right now. It
        takes a bulkhead slot like any call, so probes can never crowd out the pool."""
        try:
            async with asyncio.timeout(self.policy.timeout_s), self._bulkhead:
                return await self.inner.health()
        except TimeoutError:
            return Health(
                system=self.system,
                healthy=False,
                latency_ms=0,
                detail=f"no answer within {self.policy.timeout_s:g}s",
            )

    async def aclose(self) -> None:
        await self.inner.aclose()
