"""Read-through access to the systems of record: the entity cache in front, the resilient
connector behind, provenance on every answer.

Every read names the kind it wants; the ownership map says which system answers for it.
Three shapes: ``records`` (one record or None per id), ``related`` (the records of a kind
that belong to each parent, a customer id in the owner), ``catalog`` (every record of a
kind, cached as one entry: the plan catalog).

One call reads many ids: fresh cache entries are served from cache; the rest go upstream
in chunks of the connector's batch limit, concurrently, joining reads of the same keys
already in flight (from any request). Each request waits no longer than its deadline.
When the owner fails, or the deadline comes first, ids that have a stale entry are served
from it marked ``stale`` (and the request gets a warning saying so); the others carry the
error, so the caller can answer partially.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Generic, TypeVar, cast

from connectors import codec, deadline, inputs
from connectors.errors import DeadlineExceeded, GatewayError, UpstreamUnavailable
from connectors.flight import Flight, FlightCancelled, SingleFlight
from connectors.models import ObjectKind, Record, SystemName
from connectors.resilience import RESERVE_S
from gateway import request_scope
from gateway.data.cache import EntityCache, Entry
from gateway.data.registry import Registry

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
R = TypeVar("R", bound=Record)


@dataclass(frozen=True)
class Sourced(Generic[T_co]):
    """A value and where it came from."""

    value: T_co
    system: SystemName
    external_id: str
    fetched_at: datetime
    cached: bool
    stale: bool


Outcome = Sourced[T] | GatewayError


def settled(outcome: Outcome[T]) -> Sourced[T]:
    """The read's value, or its error raised: for a caller that cannot go on without it
    (a write checking what it changes), where a field would be null instead."""
    if isinstance(outcome, GatewayError):
        raise outcome
    return outcome


# What one shared upstream read answers: each cache key's value and when it was fetched.
Answer = dict[str, tuple[Any, float]]


class Shape(Enum):
    RECORDS = "records"  # one record (or None) per id
    RELATED = "related"  # the list of records that belong to each parent id
    CATALOG = "catalog"  # every record of the kind, as one list


@dataclass(frozen=True)
class _Read:
    """One read's identity: which system, which kind, which shape. It names the cache
    keys, says what to call upstream, and how entries are stored."""

    system: SystemName
    kind: ObjectKind
    shape: Shape

    def key(self, id: str) -> str:
        if self.shape is Shape.RECORDS:
            return f"{self.system}:{self.kind}:{id}"
        if self.shape is Shape.RELATED:
            return f"{self.system}:{self.kind}:of:{id}"
        return f"{self.system}:{self.kind}:all"

    def subject(self, id: str) -> str:
        """The read as a person would say it, for warnings."""
        if self.shape is Shape.RECORDS:
            return f"{self.kind} {id}"
        if self.shape is Shape.RELATED:
            return f"{self.kind} records of {id}"
        return f"every {self.kind}"

    def encode(self, value: Any) -> Any:
        if self.shape is Shape.RECORDS:
            return None if value is None else codec.to_json(value)
        return [codec.to_json(r) for r in value]

    def decode(self, value: Any) -> Any:
        if self.shape is Shape.RECORDS:
            return None if value is None else codec.from_json(value)
        return [codec.from_json(v) for v in value]


class Reader:
    def __init__(
        self,
        registry: Registry,
        cache: EntityCache,
        fresh_s: Mapping[SystemName, float],
        keep_s: float,
        catalogs: Mapping[ObjectKind, float] | None = None,
    ) -> None:
        self.registry = registry
        self.cache = cache
        self.fresh_s = fresh_s
        self.keep_s = keep_s
        # Reference data (the plan catalog) is read whole and kept fresh for longer (kind ->
        # seconds): a customer view then never waits a round trip for a plan.
        self.catalogs = dict(catalogs or {})
        # Upstream reads in flight, by cache key, shared by every request that misses the
        # same key meanwhile (a cold cache under load makes one call, not one per request).
        self.flights: SingleFlight[str, Answer] = SingleFlight()

    def owner(self, kind: ObjectKind) -> SystemName:
        """The system that answers for ``kind``."""
        return self.registry.ownership.owner(kind)

    async def records(
        self, kind: ObjectKind, ids: Sequence[str], of: type[R]
    ) -> list[Outcome[R | None]]:
        """The record of ``kind`` for each id (value None where the owner has none)."""
        if kind in self.catalogs:
            return await self._from_catalog(kind, ids, of)
        read = _Read(self.owner(kind), kind, Shape.RECORDS)
        return cast(list[Outcome[R | None]], await self._read(read, ids))

    async def related(
        self, kind: ObjectKind, parents: Sequence[str], of: type[R]
    ) -> list[Outcome[list[R]]]:
        """The records of ``kind`` that belong to each parent (a customer id in the
        owner of ``kind``)."""
        read = _Read(self.owner(kind), kind, Shape.RELATED)
        return cast(list[Outcome[list[R]]], await self._read(read, parents))

    async def catalog(self, kind: ObjectKind, of: type[R]) -> Outcome[list[R]]:
        """Every record of ``kind``, cached as one entry (``catalogs`` says how long)."""
        read = _Read(self.owner(kind), kind, Shape.CATALOG)
        (outcome,) = await self._read(read, ["*"], fresh_s=self.catalogs.get(kind))
        return cast(Outcome[list[R]], outcome)

    async def _from_catalog(
        self, kind: ObjectKind, ids: Sequence[str], of: type[R]
    ) -> list[Outcome[R | None]]:
        catalog = await self.catalog(kind, of)
        if isinstance(catalog, GatewayError):
            return [catalog] * len(ids)
        by_id = {r.id: r for r in catalog.value}
        return [
            Sourced(
                by_id.get(i), catalog.system, i, catalog.fetched_at, catalog.cached, catalog.stale
            )
            for i in ids
        ]

    async def invalidate(self, kind: ObjectKind, id: str | None, parent: str | None = None) -> int:
        """Drop what the cache holds for an entity (and its parent's list of that kind)
        because a write or an event changed it; ``id`` None: the parent's list alone (a
        write that may have added to it)."""
        return await self.invalidate_many([(kind, id, parent)])

    async def invalidate_many(
        self, entities: Iterable[tuple[ObjectKind, str | None, str | None]]
    ) -> int:
        """``invalidate`` for each (kind, id, parent), in one call to the cache."""
        keys: list[str] = []
        for kind, id, parent in entities:
            system = self.owner(kind)
            if id is not None:
                keys.append(_Read(system, kind, Shape.RECORDS).key(id))
            if parent is not None:
                keys.append(_Read(system, kind, Shape.RELATED).key(parent))
        if not keys:
            return 0
        # A read from now on does not join one that asked before the change.
        self.flights.detach(keys)
        return await self.cache.invalidate(keys)

    async def _fetch(self, read: _Read, ids: list[str], attempts: int | None) -> Sequence[Any]:
        """What the owner answers for ``ids``: the one place a read becomes a call."""
        connector = self.registry.get(read.system)
        if read.shape is Shape.RECORDS:
            return await connector.fetch_many(read.kind, ids, attempts=attempts)
        if read.shape is Shape.RELATED:
            return await connector.fetch_related(read.kind, ids, attempts=attempts)
        return [await connector.list_all(read.kind, attempts=attempts)]

    def _chunk_size(self, read: _Read) -> int:
        return 1 if read.shape is Shape.CATALOG else self.registry.get(read.system).batch_limit

    async def _read(
        self, read: _Read, ids: Sequence[str], fresh_s: float | None = None
    ) -> list[Any]:
        """Fresh cache entries as they are; the rest from upstream, joining reads of the
        same keys already in flight, within the request's deadline. Where upstream fails
        or the deadline comes first, a stale entry is served (and a warning added to the
        request), else the error."""
        keys = [read.key(i) for i in ids]
        now = time.time()
        entries = await self.cache.get_many(keys)
        out: list[Any] = [None] * len(ids)
        missed = [n for n, e in enumerate(entries) if e is None or not e.fresh(now)]
        recording = inputs.current()
        for n, entry in enumerate(entries):
            if entry is not None and entry.fresh(now):
                out[n] = _cached(read, ids[n], entry, stale=False)
                if recording is not None:
                    recording.entry(keys[n], entry.fetched_at, entry.fresh_until)
        if not missed:
            return out
        if recording is not None:
            recording.spoil(f"read {read.subject(ids[missed[0]])} from {read.system}")
        # Each key's generation (``gateway.data.cache``) before the owner is asked: a call
        # already in flight from before an invalidation (on any replica) is not joined, and
        # what a call answers is not cached if an invalidation overtakes it.
        missed_keys = [keys[n] for n in missed]
        taken = dict(zip(missed_keys, await self.cache.generations(missed_keys), strict=True))
        wanted: dict[int, Flight[Answer]] = {}
        mine: dict[str, int] = {}  # key -> index, for keys no current call is reading
        for n in missed:
            flight = self.flights.get(keys[n])
            as_of = None if flight is None else flight.as_of
            if flight is not None and isinstance(as_of, Mapping):
                if as_of.get(keys[n]) == taken[keys[n]]:
                    wanted[n] = flight
                    continue
            mine.setdefault(keys[n], n)

        fresh = fresh_s if fresh_s is not None else self.fresh_s.get(read.system, 60.0)
        started: dict[str, Flight[Answer]] = {}
        indices = list(mine.values())
        size = self._chunk_size(read)
        for chunk in (indices[i : i + size] for i in range(0, len(indices), size)):
            # With a stale copy of everything in the chunk to fall back on, the first
            # failure is the answer: retries would only delay the stale one.
            attempts = 1 if all(entries[n] is not None for n in chunk) else None
            chunk_keys = [keys[n] for n in chunk]
            generations = {key: taken[key] for key in chunk_keys}
            call = self._fetch_and_cache(
                read, chunk_keys, [ids[n] for n in chunk], attempts, fresh, generations
            )
            flight = self.flights.start(chunk_keys, call, as_of=generations)
            started.update((key, flight) for key in chunk_keys)
        for n, key in enumerate(keys):
            if n not in wanted and key in started:
                wanted[n] = started[key]

        outcomes = await _settle(read.system, set(wanted.values()))
        for n, flight in wanted.items():
            outcome = outcomes[flight]
            if not isinstance(outcome, GatewayError):
                value, fetched_at = outcome[keys[n]]
                out[n] = Sourced(
                    value, read.system, ids[n], _at(fetched_at), cached=False, stale=False
                )
                continue
            stale = entries[n]
            if stale is None:
                out[n] = outcome
                continue
            out[n] = _cached(read, ids[n], stale, stale=True)
            _warn_stale(read, keys[n], ids[n], stale, outcome)
        return out

    def _fetch_and_cache(
        self,
        read: _Read,
        keys: list[str],
        ids: list[str],
        attempts: int | None,
        fresh_s: float,
        generations: Mapping[str, int],
    ) -> Callable[[], Awaitable[Answer]]:
        """The shared upstream read of ``ids``: it caches what it found, once, for all the
        requests that wait for it (unless an invalidation overtook it)."""

        async def call() -> Answer:
            values = await self._fetch(read, ids, attempts)
            fetched_at = time.time()
            entries = {
                key: Entry(read.encode(value), fetched_at, fetched_at + fresh_s)
                for key, value in zip(keys, values, strict=True)
                if value is not None
            }
            await self.cache.put_many(entries, self.keep_s, generations)
            return {key: (value, fetched_at) for key, value in zip(keys, values, strict=True)}

        return call


async def _settle(
    system: SystemName, flights: set[Flight[Answer]]
) -> dict[Flight[Answer], Answer | GatewayError]:
    """Each flight's answer or error; those still running when the request's deadline
    comes are left to their other waiters (or cancelled, when there are none)."""
    outcomes: dict[Flight[Answer], Answer | GatewayError] = {}

    async def settle(flight: Flight[Answer]) -> None:
        try:
            outcomes[flight] = await flight.wait()
        except GatewayError as exc:
            outcomes[flight] = exc
        except FlightCancelled:
            outcomes[flight] = UpstreamUnavailable(
                f"the call to {system} was cancelled", system=system.value
            )

    left = deadline.remaining()
    try:
        async with asyncio.timeout(None if left is None else max(0.0, left - RESERVE_S)):
            if len(flights) == 1:
                await settle(next(iter(flights)))
            else:
                await asyncio.gather(*(settle(f) for f in flights))
    except TimeoutError:
        late = DeadlineExceeded(
            f"{system} did not answer before the request's deadline", system=system.value
        )
        for flight in flights:
            outcomes.setdefault(flight, late)
    return outcomes


def _cached(read: _Read, id: str, entry: Entry, *, stale: bool) -> Sourced[object]:
    value = read.decode(entry.value)
    return Sourced(value, read.system, id, _at(entry.fetched_at), cached=True, stale=stale)


def _warn_stale(read: _Read, key: str, id: str, entry: Entry, error: GatewayError) -> None:
    """Tell the request's client that this part of its answer is old, and why."""
    request = request_scope.current()
    if request is None:
        return
    as_of = _at(entry.fetched_at).isoformat(timespec="seconds").replace("+00:00", "Z")
    subject = read.subject(id)
    request.warn(
        key,
        {
            "code": "STALE_DATA",
            "message": f"{read.system} is degraded ({error.code}): {subject} as of {as_of}",
            "system": read.system.value,
            "subject": subject,
            "reason": error.code,
            "fetchedAt": as_of,
        },
    )


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
