"""What one GraphQL execution read, as the response cache (``gateway.data.responses``) needs
to know it: which entity-cache entries it was served, which remembered values it used, until
when its answer holds, or why it cannot be kept at all.

An answer may be served again only while every input it was built from is unchanged, and
only if every input was itself served from a cache: an answer that read from a system of
record (or from the gateway's database) says ``cached: false`` or holds what nothing here
can tell has changed, so it is spoiled. The reads mark it where they happen (the entity
cache reader, the connectors, the database pool, the remembered data), through the context
variable an execution sets; outside one, marking does nothing.

It lives among the connectors because a connector call spoils an answer, and connectors do
not import the gateway.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from datetime import UTC, date, datetime, time, timedelta


class Inputs:
    __slots__ = ("checks", "entries", "spoiled", "until")

    def __init__(self) -> None:
        # Entity-cache key -> the ``fetched_at`` of the entry served.
        self.entries: dict[str, float] = {}
        # Each answers whether an in-process input is still what was used.
        self.checks: list[Callable[[], bool]] = []
        self.until = float("inf")  # unix seconds: when the answer stops holding
        self.spoiled: str | None = None  # why it cannot be kept

    def entry(self, key: str, fetched_at: float, fresh_until: float) -> None:
        self.entries[key] = fetched_at
        self.until = min(self.until, fresh_until)

    def check(self, still: Callable[[], bool]) -> None:
        self.checks.append(still)

    def bound(self, until: float) -> None:
        """The answer depends on the clock: it holds until ``until`` at most."""
        self.until = min(self.until, until)

    def spoil(self, why: str) -> None:
        if self.spoiled is None:
            self.spoiled = why


_current: ContextVar[Inputs | None] = ContextVar("opsgraph_inputs", default=None)


def current() -> Inputs | None:
    """What the execution under way records, if one does."""
    return _current.get()


def begin(inputs: Inputs) -> Token[Inputs | None]:
    return _current.set(inputs)


def end(token: Token[Inputs | None]) -> None:
    _current.reset(token)


def spoil(why: str) -> None:
    """The execution under way (if any) read something no cache served."""
    inputs = _current.get()
    if inputs is not None:
        inputs.spoil(why)


def today() -> date:
    """Today's date (UTC), for an answer that depends on it: the execution under way (if
    any) holds until the day ends."""
    now = datetime.now(UTC)
    inputs = _current.get()
    if inputs is not None:
        midnight = datetime.combine(now.date() + timedelta(days=1), time(), UTC)
        inputs.bound(midnight.timestamp())
    return now.date()
