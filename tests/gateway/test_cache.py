"""The entity cache in process and in real Redis, and the reader on top of it: replicas
share what they read, and an invalidation sends the next read upstream."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import date

import httpx
import pytest
import redis
from redis.asyncio import Redis

from connectors.models import Balance, ObjectKind, SystemName
from connectors.sandbox import erp
from connectors.sandbox.seed import generate
from gateway.cache import EntityCache, Entry, MemoryCache, RedisCache
from gateway.ownership import OwnershipMap
from gateway.reads import Reader, Sourced
from gateway.registry import Registry
from gateway.settings import load_settings
from tests.connectors.conftest import running_sandbox

WORLD = generate(customers=3, seed=2, as_of=date(2026, 11, 1))
ERP_IDS = [c.external_ids[SystemName.ERP] for c in WORLD.customers]


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[EntityCache]:
    if request.param == "memory":
        yield MemoryCache()
        return
    url: str = request.getfixturevalue("redis_url")
    client = Redis.from_url(url)
    yield RedisCache(client)
    await client.aclose()


async def test_entries_round_trip_and_invalidate(cache: EntityCache) -> None:
    now = time.time()
    entry = Entry({"@type": "x", "n": [1, 2]}, now, now + 60)
    await cache.put_many({"a": entry, "b": entry}, keep_s=300)
    assert await cache.get_many(["a", "missing", "b"]) == [entry, None, entry]
    assert await cache.invalidate(["a", "nope"]) == 1
    assert await cache.get_many(["a", "b"]) == [None, entry]


async def test_an_entry_is_dropped_after_keep_s() -> None:
    cache = MemoryCache()
    await cache.put_many({"a": Entry(1, 0, 0)}, keep_s=0)
    assert await cache.get_many(["a"]) == [None]


def test_redis_entries_expire_after_keep_s(redis_url: str) -> None:
    import asyncio

    async def put() -> None:
        client = Redis.from_url(redis_url)
        await RedisCache(client).put_many({"k": Entry(1, 0, 0)}, keep_s=120)
        await client.aclose()

    asyncio.run(put())
    with redis.Redis.from_url(redis_url) as plain:
        assert 0 < plain.ttl("opsgraph:cache:k") <= 120


@pytest.fixture(scope="module")
def netsuite() -> Iterator[tuple[str, httpx.Client]]:
    with running_sandbox(erp.create_app, WORLD.slice(SystemName.ERP)) as running:
        yield running


async def test_replicas_share_the_redis_cache_and_its_invalidation(
    netsuite: tuple[str, httpx.Client], redis_url: str, sqlite_database: str
) -> None:
    url, admin = netsuite
    settings = load_settings(
        database_url=sqlite_database, erp={"base_url": url, "secret": "sandbox-secret"}
    )
    ownership = OwnershipMap.load(settings.ownership_file)
    client = Redis.from_url(redis_url)
    registries = [Registry.from_settings(settings, ownership) for _ in range(2)]
    a, b = (Reader(r, RedisCache(client), {SystemName.ERP: 300}, 3600) for r in registries)
    try:
        admin.post("/_sandbox/stats/reset")
        first = await a.records(SystemName.ERP, ObjectKind.BALANCE, ERP_IDS)
        shared = await b.records(SystemName.ERP, ObjectKind.BALANCE, ERP_IDS)
        assert all(isinstance(s, Sourced) and not s.cached for s in first)
        assert all(isinstance(s, Sourced) and s.cached and not s.stale for s in shared)
        assert [s.value for s in shared] == [s.value for s in first]  # type: ignore[union-attr]
        assert all(isinstance(s.value, Balance) for s in shared)  # type: ignore[union-attr]
        assert admin.get("/_sandbox/stats").json()["total"] == 1

        assert await b.invalidate(SystemName.ERP, ObjectKind.BALANCE, ERP_IDS[0]) == 1
        again = await a.records(SystemName.ERP, ObjectKind.BALANCE, ERP_IDS)
        assert [s.cached for s in again] == [False, True, True]  # type: ignore[union-attr]
        assert admin.get("/_sandbox/stats").json()["total"] == 2
    finally:
        for registry in registries:
            await registry.aclose()
        await client.aclose()
