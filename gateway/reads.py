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

from connectors import codec
from connectors.errors import GatewayError
from connectors.models import ObjectKind, Record, SystemName
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

    async def records(
        self, system: SystemName, kind: ObjectKind, ids: Sequence[str]
    ) -> list[Outcome[Record | None]]:
        if (system, kind) in self.catalogs:
            return await self._from_catalog(system, kind, ids)
        connector = self.registry.get(system)
        return await self._read(
            system,
            [f"{system}:{kind}:{i}" for i in ids],
            ids,
            lambda chunk: connector.fetch_many(kind, chunk),
            connector.batch_limit,
            _encode_record,
            _decode_record,
        )

    async def related(
        self, system: SystemName, kind: ObjectKind, parents: Sequence[str]
    ) -> list[Outcome[list[Record]]]:
        connector = self.registry.get(system)
        return await self._read(
            system,
            [f"{system}:{kind}:of:{p}" for p in parents],
            parents,
            lambda chunk: connector.fetch_related(kind, chunk),
            connector.batch_limit,
            _encode_list,
            _decode_list,
        )

    async def listing(self, system: SystemName, kind: ObjectKind) -> Outcome[list[Record]]:
        """Every record of ``kind`` (a catalog: plans, SLA policies), cached as one entry."""
        connector = self.registry.get(system)

        async def fetch(_: list[str]) -> list[list[Record]]:
            return [await connector.list_all(kind)]

        (outcome,) = await self._read(
            system,
            [f"{system}:{kind}:all"],
            ["*"],
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
        fetch: Callable[[list[str]], Awaitable[Sequence[Any]]],
        chunk_size: int,
        encode: Callable[[Any], Any],
        decode: Callable[[Any], Any],
        fresh_s: float | None = None,
    ) -> list[Any]:
        now = time.time()
        entries = await self.cache.get_many(keys)
        out: list[Any] = [None] * len(ids)
        missing: list[int] = []
        for n, entry in enumerate(entries):
            if entry is not None and entry.fresh(now):
                out[n] = self._sourced(system, ids[n], decode(entry.value), entry, stale=False)
            else:
                missing.append(n)
        if not missing:
            return out

        chunks = [missing[i : i + chunk_size] for i in range(0, len(missing), chunk_size)]
        results = await asyncio.gather(
            *(fetch([ids[n] for n in chunk]) for chunk in chunks), return_exceptions=True
        )
        fetched_at = time.time()
        fresh_until = fetched_at + (
            fresh_s if fresh_s is not None else self.fresh_s.get(system, 60.0)
        )
        to_cache: dict[str, Entry] = {}
        for chunk, result in zip(chunks, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, GatewayError):
                    raise result
                for n in chunk:
                    stale = entries[n]
                    out[n] = (
                        result
                        if stale is None
                        else self._sourced(system, ids[n], decode(stale.value), stale, stale=True)
                    )
                continue
            for n, value in zip(chunk, result, strict=True):
                entry = Entry(encode(value), fetched_at, fresh_until)
                if value is not None:
                    to_cache[keys[n]] = entry
                out[n] = Sourced(value, system, ids[n], _at(fetched_at), cached=False, stale=False)
        await self.cache.put_many(to_cache, self.keep_s)
        return out

    @staticmethod
    def _sourced(
        system: SystemName, id: str, value: Any, entry: Entry, *, stale: bool
    ) -> Sourced[Any]:
        return Sourced(value, system, id, _at(entry.fetched_at), cached=True, stale=stale)


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
