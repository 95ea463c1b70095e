"""Read-through access to the systems of record: the entity cache in front, the resilient
connector behind, provenance on every answer.

One call reads many ids: cache hits that are fresh are served from cache; the rest go
upstream in chunks of the connector's batch limit, concurrently. When the owner fails, ids
that have a stale entry are served from it marked ``stale``; the others carry the error, so
the caller can answer partially.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from connectors import codec, deadline
from connectors.errors import DeadlineExceeded, GatewayError, UpstreamUnavailable
from connectors.flight import Flight, FlightCancelled, SingleFlight
from connectors.models import ObjectKind, Record, SystemName
from connectors.resilience import RESERVE_S
from gateway import request_scope
from gateway.cache import EntityCache, Entry
from gateway.registry import Registry

T = TypeVar("T")


@dataclass(frozen=True)
class Sourced(Generic[T]):
    """A value and where it came from."""

    value: T
    system: SystemName
    external_id: str
    fetched_at: datetime
    cached: bool
    stale: bool


Outcome = Sourced[T] | GatewayError


def _encode_record(record: Record | None) -> Any:
    return None if record is None else codec.to_json(record)


def _decode_record(value: Any) -> Record | None:
    return None if value is None else codec.from_json(value)


def _encode_list(records: list[Record]) -> Any:
    return [codec.to_json(r) for r in records]


def _decode_list(value: Any) -> list[Record]:
    return [codec.from_json(v) for v in value]


Fetch = Callable[[list[str], int | None], Awaitable[Sequence[Any]]]
# What one shared upstream read answers: each cache key's value and when it was fetched.
Answer = dict[str, tuple[Any, float]]


class Reader:
    def __init__(
        self,
        registry: Registry,
        cache: EntityCache,
        fresh_s: Mapping[SystemName, float],
        keep_s: float,
        catalogs: Mapping[tuple[SystemName, ObjectKind], float] | None = None,
    ) -> None:
        self.registry = registry
        self.cache = cache
        self.fresh_s = fresh_s
        self.keep_s = keep_s
        # Reference data (the plan catalog) is read whole and kept fresh for longer: a
        # customer view then never waits a round trip for a plan behind its subscription.
        self.catalogs = dict(catalogs or {})
        # Upstream reads in flight, by cache key, shared by every request that misses the
        # same key meanwhile (a cold cache under load makes one call, not one per request).
        self.flights: SingleFlight[str, Answer] = SingleFlight()

    async def records(
        self, system: SystemName, kind: ObjectKind, ids: Sequence[str]
    ) -> list[Outcome[Record | None]]:
        if (system, kind) in self.catalogs:
            return await self._from_catalog(system, kind, ids)
        connector = self.registry.get(system)

        async def fetch(chunk: list[str], attempts: int | None) -> list[Record | None]:
            return await connector.fetch_many(kind, chunk, attempts=attempts)

        return await self._read(
            system,
            [f"{system}:{kind}:{i}" for i in ids],
            ids,
            [f"{kind} {i}" for i in ids],
            fetch,
            connector.batch_limit,
            _encode_record,
            _decode_record,
        )

    async def related(
        self, system: SystemName, kind: ObjectKind, parents: Sequence[str]
    ) -> list[Outcome[list[Record]]]:
        connector = self.registry.get(system)

        async def fetch(chunk: list[str], attempts: int | None) -> list[list[Record]]:
            return await connector.fetch_related(kind, chunk, attempts=attempts)

        return await self._read(
            system,
            [f"{system}:{kind}:of:{p}" for p in parents],
            parents,
            [f"{kind} records of {p}" for p in parents],
            fetch,
            connector.batch_limit,
            _encode_list,
            _decode_list,
        )

    async def listing(self, system: SystemName, kind: ObjectKind) -> Outcome[list[Record]]:
        """Every record of ``kind`` (a catalog: plans, SLA policies), cached as one entry."""
        connector = self.registry.get(system)

        async def fetch(_: list[str], attempts: int | None) -> list[list[Record]]:
            return [await connector.list_all(kind, attempts=attempts)]

        (outcome,) = await self._read(
            system,
            [f"{system}:{kind}:all"],
            ["*"],
            [f"every {kind}"],
            fetch,
            1,
            _encode_list,
            _decode_list,
            fresh_s=self.catalogs.get((system, kind)),
        )
        return outcome  # type: ignore[no-any-return]

    async def _from_catalog(
        self, system: SystemName, kind: ObjectKind, ids: Sequence[str]
    ) -> list[Outcome[Record | None]]:
        catalog = await self.listing(system, kind)
        if isinstance(catalog, GatewayError):
            return [catalog] * len(ids)
        by_id = {r.id: r for r in catalog.value}
        return [
            Sourced(by_id.get(i), system, i, catalog.fetched_at, catalog.cached, catalog.stale)
            for i in ids
        ]

    async def invalidate(
        self, system: SystemName, kind: ObjectKind, id: str, parent: str | None = None
    ) -> int:
        """Drop what the cache holds for an entity (and its parent's list of that kind)
        because an event said it changed."""
        keys = [f"{system}:{kind}:{id}"]
        if parent is not None:
            keys.append(f"{system}:{kind}:of:{parent}")
        return await self.cache.invalidate(keys)

    async def _read(
        self,
        system: SystemName,
        keys: Sequence[str],
        ids: Sequence[str],
        subjects: Sequence[str],
        fetch: Fetch,
        chunk_size: int,
        encode: Callable[[Any], Any],
        decode: Callable[[Any], Any],
        fresh_s: float | None = None,
    ) -> list[Any]:
        """Fresh cache entries as they are; the rest from upstream, joining reads of the
        same keys already in flight, within the request's deadline. Where upstream fails
        or the deadline comes first, a stale entry is served (and a warning added to the
        request), else the error."""
        now = time.time()
        entries = await self.cache.get_many(keys)
        out: list[Any] = [None] * len(ids)
        wanted: dict[int, Flight[Answer]] = {}
        mine: dict[str, int] = {}  # key -> index, for keys nobody is reading yet
        for n, entry in enumerate(entries):
            if entry is not None and entry.fresh(now):
                out[n] = self._sourced(system, ids[n], decode(entry.value), entry, stale=False)
                continue
            flight = self.flights.get(keys[n])
            if flight is None:
                mine.setdefault(keys[n], n)
            else:
                wanted[n] = flight
        if not wanted and not mine:
            return out

        fresh = fresh_s if fresh_s is not None else self.fresh_s.get(system, 60.0)
        started: dict[str, Flight[Answer]] = {}
        indices = list(mine.values())
        for chunk in (indices[i : i + chunk_size] for i in range(0, len(indices), chunk_size)):
            # With a stale copy of everything in the chunk to fall back on, the first
            # failure is the answer: retries would only delay the stale one.
            attempts = 1 if all(entries[n] is not None for n in chunk) else None
            call = self._fetch_and_cache(
                [keys[n] for n in chunk], [ids[n] for n in chunk], fetch, attempts, encode, fresh
            )
            flight = self.flights.start([keys[n] for n in chunk], call)
            started.update((keys[n], flight) for n in chunk)
        for n, key in enumerate(keys):
            if n not in wanted and key in started:
                wanted[n] = started[key]

        outcomes = await self._settle(system, set(wanted.values()))
        for n, flight in wanted.items():
            outcome = outcomes[flight]
            if not isinstance(outcome, GatewayError):
                value, fetched_at = outcome[keys[n]]
                out[n] = Sourced(value, system, ids[n], _at(fetched_at), cached=False, stale=False)
                continue
            stale = entries[n]
            if stale is None:
                out[n] = outcome
                continue
            out[n] = self._sourced(system, ids[n], decode(stale.value), stale, stale=True)
            _warn_stale(system, keys[n], subjects[n], stale, outcome)
        return out

    def _fetch_and_cache(
        self,
        keys: list[str],
        ids: list[str],
        fetch: Fetch,
        attempts: int | None,
        encode: Callable[[Any], Any],
        fresh_s: float,
    ) -> Callable[[], Awaitable[Answer]]:
        """The shared upstream read of ``ids``: it caches what it found, once, for all the
        requests that wait for it."""

        async def call() -> Answer:
            values = await fetch(ids, attempts)
            fetched_at = time.time()
            entries = {
                key: Entry(encode(value), fetched_at, fetched_at + fresh_s)
                for key, value in zip(keys, values, strict=True)
                if value is not None
            }
            await self.cache.put_many(entries, self.keep_s)
            return {key: (value, fetched_at) for key, value in zip(keys, values, strict=True)}

        return call

    @staticmethod
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

    @staticmethod
    def _sourced(
        system: SystemName, id: str, value: Any, entry: Entry, *, stale: bool
    ) -> Sourced[Any]:
        return Sourced(value, system, id, _at(entry.fetched_at), cached=True, stale=stale)


def _warn_stale(
    system: SystemName, key: str, subject: str, entry: Entry, error: GatewayError
) -> None:
    """Tell the request's client that this part of its answer is old, and why."""
    request = request_scope.current()
    if request is None:
        return
    as_of = _at(entry.fetched_at).isoformat(timespec="seconds").replace("+00:00", "Z")
    request.warn(
        key,
        {
            "code": "STALE_DATA",
            "message": f"{system} is degraded ({error.code}): {subject} as of {as_of}",
            "system": system.value,
            "subject": subject,
            "reason": error.code,
            "fetchedAt": as_of,
        },
    )


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
