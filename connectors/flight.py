"""Single flight: identical calls in flight share one execution.

When many callers want the same upstream answer at once (a page of customers asking for
invoices and subscriptions through one search, 32 dashboards opening the same customer on
a cold cache), one call goes out and every caller waits for it.

The call runs in a task of its own, outside any caller's deadline, so that no caller's
cancellation reaches it while others still wait: a caller that gives up (its deadline
passed, its client went away) only stops waiting. When the last waiter has left, the call
is cancelled, so abandoned work does not run on. A call cancelled from outside (the event
loop shutting down) reaches its waiters as ``FlightCancelled``, an ``Exception``, never as
a bare ``CancelledError`` that would look like their own cancellation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Generic, TypeVar

from connectors import deadline

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class FlightCancelled(Exception):
    """The shared call was cancelled by something other than its waiters leaving."""


class Flight(Generic[V]):
    def __init__(
        self, task: asyncio.Task[V], on_abandon: Callable[[], None], as_of: object = None
    ) -> None:
        self._task = task
        self._waiters = 0
        self._on_abandon = on_abandon
        self.as_of = as_of  # what its starter says the call's answer is as of, if anything

    def done(self) -> bool:
        return self._task.done()

    async def wait(self) -> V:
        """The call's answer (or its exception). Cancelling the wait (``asyncio.timeout``
        around it) leaves the call running for the other waiters."""
        self._waiters += 1
        try:
            await asyncio.wait((self._task,))
        finally:
            self._waiters -= 1
            if self._waiters == 0 and not self._task.done():
                self._on_abandon()
                self._task.cancel()
        if self._task.cancelled():
            raise FlightCancelled("the shared call was cancelled")
        return self._task.result()


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._flights: dict[K, Flight[V]] = {}

    def __len__(self) -> int:
        """Calls in flight."""
        return len({id(f) for f in self._flights.values()})

    def get(self, key: K) -> Flight[V] | None:
        return self._flights.get(key)

    def start(
        self, keys: Iterable[K], call: Callable[[], Awaitable[V]], as_of: object = None
    ) -> Flight[V]:
        """Run ``call`` for every key in ``keys`` (one call may answer several keys); a
        caller that asks ``get`` for any of them joins it until it ends."""
        keys = list(keys)

        def forget() -> None:
            for key in keys:
                if self._flights.get(key) is flight:
                    del self._flights[key]

        async def run() -> V:
            with deadline.within(None):  # the starting caller's deadline is not the call's
                return await call()

        def finished(task: asyncio.Task[V]) -> None:
            if not task.cancelled():
                task.exception()  # seen: every waiter that is left gets it from wait()
            forget()

        task = asyncio.get_running_loop().create_task(run())
        task.add_done_callback(finished)
        flight = Flight(task, forget, as_of)
        for key in keys:
            self._flights[key] = flight
        return flight

    def detach(self, keys: Iterable[K]) -> None:
        """Callers of ``keys`` from now on start a call of their own instead of joining the
        one in flight, whose answer may be older than they accept (an event said the
        record changed since it started); those waiting on it keep it."""
        for key in keys:
            self._flights.pop(key, None)

    async def run(self, key: K, call: Callable[[], Awaitable[V]]) -> V:
        """``call``'s answer, shared with every caller of the same ``key`` meanwhile."""
        flight = self._flights.get(key) or self.start((key,), call)
        return await flight.wait()
