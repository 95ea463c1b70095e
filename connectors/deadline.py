"""The deadline of the request a call is made for.

The gateway opens one per request (``within``); every call made on the request's behalf
sees it, including from tasks the request starts (they inherit context variables). The
kit gives each upstream attempt no more than what is left, and stops retrying when no
useful attempt fits. Work shared between requests (``connectors.flight``) runs outside any
one request's deadline: each request waits for it only as long as its own deadline allows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_at: ContextVar[float | None] = ContextVar("opsgraph_deadline", default=None)


def remaining() -> float | None:
    """Seconds left before the current deadline; None when there is none."""
    at = _at.get()
    return None if at is None else at - time.monotonic()


@contextmanager
def within(seconds: float | None) -> Iterator[None]:
    """Calls made inside end within ``seconds`` (None: no deadline, as for shared work)."""
    token = _at.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _at.reset(token)
