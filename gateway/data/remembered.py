"""What opsgraph owns, kept in memory for the read path: the crosswalk's identities, each
customer's credit requests and open reconciliation exceptions (issue #14: three database
reads on every customer 360, a quarter of its CPU even when everything else was cached);
and for the event path, which customer each external id is.

Every write that changes one of them forgets it, here at once and on the other replicas
through the broadcast (``TOPIC``), so the next read goes to the database. Redis accelerates
and never gates: a replica that could have missed a message (its listener lost Redis, or
fell behind) forgets everything it holds, and nothing is kept longer than ``ttl_s`` in any
case (what another process, such as ``opsgraph reconcile``, writes is seen within it).

A read that started before a forget does not keep what it read: each forget moves the
generation on, and ``put`` keeps a value only under the generation its read began in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from connectors import inputs
from gateway.events.broadcast import Broadcast, Overflowed

log = logging.getLogger("opsgraph.remembered")

TOPIC = "owned"
# Entries kept per kind at most, least recently used dropped first.
MAX_ENTRIES = 20_000

T = TypeVar("T")


class Kind(StrEnum):
    IDENTITIES = "identities"  # a customer id's crosswalk identity (or that there is none)
    CREDITS = "credits"  # a customer's credit requests
    EXCEPTIONS = "exceptions"  # a customer's open reconciliation exceptions
    # Which customer an external id is ("<system>:<external id>"; or that it is none): what
    # each processed event asks, to tell the subscribers of the customers it names.
    LINKS = "links"


@dataclass(frozen=True, slots=True)
class Kept(Generic[T]):
    value: T
    read_at: datetime  # when it was read from the database


class Remembered:
    def __init__(self, ttl_s: float, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.generation = 0
        self._kept: dict[Kind, OrderedDict[str, tuple[float, Kept[Any]]]] = {
            kind: OrderedDict() for kind in Kind
        }
        self._publish: Callable[[str, dict[str, Any]], Any] | None = None

    @property
    def on(self) -> bool:
        return self.ttl_s > 0

    def get(self, kind: Kind, key: str) -> Kept[Any] | None:
        """What is kept for ``key``, if it is younger than ``ttl_s``. An answer built from
        it (``connectors.inputs``) holds while it is kept."""
        kept = self._get(kind, key)
        recording = inputs.current()
        if kept is not None and recording is not None:
            recording.check(lambda: self._get(kind, key) is kept)
        return kept

    def _get(self, kind: Kind, key: str) -> Kept[Any] | None:
        entries = self._kept[kind]
        found = entries.get(key)
        if found is None:
            return None
        if time.monotonic() - found[0] > self.ttl_s:
            del entries[key]
            return None
        entries.move_to_end(key)
        return found[1]

    def put(self, kind: Kind, key: str, value: object, read_at: datetime, generation: int) -> None:
        """Keeps ``value`` as read at ``read_at``, unless something was forgotten since the
        read began (``generation``, read from ``self.generation`` before it)."""
        if not self.on or generation != self.generation:
            return
        entries = self._kept[kind]
        entries[key] = (time.monotonic(), Kept(value, read_at))
        entries.move_to_end(key)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)

    def forget_here(self, kind: Kind | None = None, keys: Collection[str] | None = None) -> None:
        """Forgets ``keys`` of ``kind`` (every key: None; every kind: None) in this process."""
        self.generation += 1
        for each in Kind if kind is None else (kind,):
            if keys is None:
                self._kept[each].clear()
            else:
                for key in keys:
                    self._kept[each].pop(key, None)

    async def forget(self, kind: Kind, keys: Sequence[str] | None = None) -> None:
        """Forgets here at once, and tells the other replicas (a failure to tell them is
        logged: ``ttl_s`` bounds what they keep)."""
        self.forget_here(kind, keys)
        if self._publish is None or not self.on:
            return
        message = {"kind": kind.value, "keys": None if keys is None else list(keys)}
        try:
            await self._publish(TOPIC, message)
        except Exception:
            log.exception("telling the replicas to forget %s failed", kind.value)

    async def listen(self, broadcast: Broadcast) -> None:
        """Applies what the other replicas forget, until cancelled; after a gap in what it
        heard (it fell behind, or the broadcast lost Redis), forgets everything."""
        self._publish = broadcast.publish
        broadcast.on_reconnect.append(self.forget_here)
        while True:
            try:
                async for message in broadcast.subscribe(TOPIC):
                    self._heard(message)
            except Overflowed:
                log.warning("fell behind what the replicas forget: forgetting everything")
                self.forget_here()
            await asyncio.sleep(0)

    def _heard(self, message: dict[str, Any]) -> None:
        try:
            kind = Kind(message["kind"])
            keys = message["keys"]
        except (KeyError, ValueError):
            log.warning("not understood, forgetting everything: %r", message)
            self.forget_here()
            return
        self.forget_here(kind, None if keys is None else [str(k) for k in keys])
