"""Work that must not hold up the answer it follows (an audit row, a key's last-used time):
started at once in a task owned here, neither cancelled with the request that started it
nor lost to the garbage collector, its failure logged, awaited when the gateway stops.

Bounded: past ``limit`` tasks in flight, new work is dropped and said so in the log,
rather than a flood of requests piling up writes the database cannot keep up with."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from typing import Any

log = logging.getLogger("opsgraph.detached")


class Detached:
    def __init__(self, name: str, limit: int = 1000) -> None:
        self.name = name
        self.limit = limit
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, work: Coroutine[Any, Any, None]) -> bool:
        """Runs ``work`` in the background; False (and ``work`` closed) when too much is
        in flight already."""
        if len(self._tasks) >= self.limit:
            work.close()
            log.warning("%s: %d writes in flight, one dropped", self.name, len(self._tasks))
            return False
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return True

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("%s failed: %r", self.name, error, exc_info=error)

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Waits for the work in flight, at most ``timeout_s``; cancels what is left."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in late:
            task.cancel()
        if late:
            log.warning("%s: %d writes cancelled at shutdown", self.name, len(late))


# How long a task being stopped gets to end after its first cancellation before it is
# cancelled again, and again every as long.
RECANCEL_S = 0.5


async def stop(tasks: Iterable[asyncio.Task[Any]], name: str, within_s: float = 10.0) -> None:
    """Cancels ``tasks`` and waits, at most ``within_s``, for them to end; what has not ended
    by then is logged and left behind. A task still running after ``RECANCEL_S`` is
    cancelled again: a library can swallow a cancellation (redis-py does, while it takes a
    pooled connection) and would otherwise keep a loop going that only cancelling ends.
    An error a task ended with is logged."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    pending = {task for task in tasks if not task.done()}
    done = {task for task in tasks if task.done()}
    while pending:
        left = deadline - loop.time()
        if left <= 0:
            log.warning("%s: %d tasks did not stop within %gs", name, len(pending), within_s)
            break
        for task in pending:
            task.cancel()
        ended, pending = await asyncio.wait(pending, timeout=min(RECANCEL_S, left))
        done |= ended
    for task in done:
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("%s: a task ended with %r", name, error, exc_info=error)
