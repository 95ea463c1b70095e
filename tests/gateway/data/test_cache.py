"""The entity cache in process, in real Redis and in Redis with the in-process fallback, and
the reader on top of it: replicas share what they read, an invalidation sends the next read
upstream, and while Redis is down the cache lives in memory."""

from __future__ import annotations

import asyncio
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
from gateway.data.cache import EntityCache, Entry, FallbackCache, MemoryCache, RedisCache
from gateway.data.reads import Reader, Sourced
from gateway.data.redis_guard import RedisGuard, RedisUnavailable
from gateway.data.registry import Registry
from gateway.ownership import OwnershipMap
from gateway.settings import load_settings
from tests.connectors.conftest import running_sandbox

WORLD = generate(customers=3, seed=2, as_of=date(2026, 11, 1))
ERP_IDS = [c.external_ids[SystemName.ERP] for c in WORLD.customers]


@pytest.fixture(params=["memory", "redis", "fallback"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[EntityCache]:
    if request.param == "memory":
        yield MemoryCache()
        return
    url: str = request.getfixturevalue("redis_url")
    client = Redis.from_url(url)
    if request.param == "redis":
        yield RedisCache(client)
    else:
        yield FallbackCache(RedisGuard(client, timeout_s=1, retry_s=5))
    await client.aclose()


async def test_entries_round_trip_and_invalidate(cache: EntityCache) -> None:
    now = time.time()
    entry = Entry({"@type": "x", "n": [1, 2]}, now, now + 60)
    await cache.put_many({"a": entry, "b": entry}, keep_s=300)
    assert await cache.get_many(["a", "missing", "b"]) == [entry, None, entry]
    assert await cache.invalidate(["a", "nope"]) == 1
    assert await cache.get_many(["a", "b"]) == [None, entry]


async def test_an_entry_read_before_an_invalidation_is_not_kept(cache: EntityCache) -> None:
    now = time.time()
    old, new = Entry("before", now, now + 60), Entry("after", now, now + 60)
    taken = dict(zip(["a", "b"], await cache.generations(["a", "b"]), strict=True))
    await cache.invalidate(["a"])  # an event: "a" changed while the read was on its way
    await cache.put_many({"a": old, "b": old}, keep_s=300, generations=taken)
    assert await cache.get_many(["a", "b"]) == [None, old]
    # A read that took its generation after the invalidation keeps what it read.
    again = dict(zip(["a"], await cache.generations(["a"]), strict=True))
    await cache.put_many({"a": new}, keep_s=300, generations=again)
    assert await cache.get_many(["a"]) == [new]


async def test_an_entry_is_dropped_after_keep_s() -> None:
    cache = MemoryCache()
    await cache.put_many({"a": Entry(1, 0, 0)}, keep_s=0)
    assert await cache.get_many(["a"]) == [None]


async def test_while_redis_is_down_the_cache_is_in_memory_and_redis_hears_what_it_missed(
    redis_url: str,
) -> None:
    now = [0.0]
    client = Redis.from_url(redis_url)
    guard = RedisGuard(client, timeout_s=1, retry_s=5, clock=lambda: now[0])
    cache, shared = FallbackCache(guard), RedisCache(client)
    entry = Entry(1, 0, 60)
    await cache.put_many({"a": entry}, keep_s=300)

    async def refused() -> None:
        raise redis.ConnectionError("Connection refused.")

    with pytest.raises(RedisUnavailable):
        await guard.run(refused)  # Redis goes down
    await cache.put_many({"b": entry}, keep_s=300)
    assert await cache.get_many(["a", "b"]) == [None, entry]  # memory only
    assert await cache.invalidate(["a"]) == 0  # not in memory; Redis missed it
    assert await shared.get_many(["a", "b"]) == [entry, None]

    now[0] = 5.0  # back: the missed invalidation reaches Redis before anything else
    assert await cache.get_many(["a", "b"]) == [None, None]
    assert await shared.get_many(["a"]) == [None]
    await client.aclose()


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
        first = await a.records(ObjectKind.BALANCE, ERP_IDS, Balance)
        shared = await b.records(ObjectKind.BALANCE, ERP_IDS, Balance)
        assert all(isinstance(s, Sourced) and not s.cached for s in first)
        assert all(isinstance(s, Sourced) and s.cached and not s.stale for s in shared)
        assert [s.value for s in shared] == [s.value for s in first]  # type: ignore[union-attr]
        assert all(isinstance(s.value, Balance) for s in shared)  # type: ignore[union-attr]
        assert admin.get("/_sandbox/stats").json()["total"] == 1

        assert await b.invalidate(ObjectKind.BALANCE, ERP_IDS[0]) == 1
        again = await a.records(ObjectKind.BALANCE, ERP_IDS, Balance)
        assert [s.cached for s in again] == [False, True, True]  # type: ignore[union-attr]
        assert admin.get("/_sandbox/stats").json()["total"] == 2
    finally:
        for registry in registries:
            await registry.aclose()
        await client.aclose()


async def test_a_read_on_its_way_when_another_replica_invalidates_keeps_nothing(
    netsuite: tuple[str, httpx.Client], redis_url: str, sqlite_database: str
) -> None:
    """Replica A asks a slow ERP for a balance; the balance changes and replica B hears of
    it (an event) while A waits. A's answer is not cached, and a read that starts after the
    event neither joins A's call nor is answered from the cache: it asks the ERP again."""
    url, admin = netsuite
    settings = load_settings(
        database_url=sqlite_database, erp={"base_url": url, "secret": "sandbox-secret"}
    )
    ownership = OwnershipMap.load(settings.ownership_file)
    client = Redis.from_url(redis_url)
    await RedisCache(client).invalidate([])  # nothing: a cache with no generations yet
    registries = [Registry.from_settings(settings, ownership) for _ in range(2)]
    a, b = (Reader(r, RedisCache(client), {SystemName.ERP: 300}, 3600) for r in registries)
    try:
        admin.put("/_sandbox/faults", json={"latency_ms": 300})
        admin.post("/_sandbox/stats/reset")
        on_its_way = asyncio.create_task(a.records(ObjectKind.BALANCE, ERP_IDS[:1], Balance))
        for _ in range(200):  # A's call is at the ERP
            if admin.get("/_sandbox/stats").json()["in_flight"] >= 1:
                break
            await asyncio.sleep(0.01)
        assert admin.get("/_sandbox/stats").json()["in_flight"] == 1
        await b.invalidate(ObjectKind.BALANCE, ERP_IDS[0])
        after = asyncio.create_task(a.records(ObjectKind.BALANCE, ERP_IDS[:1], Balance))
        first, second = await on_its_way, await after
        assert not first[0].cached and not second[0].cached  # type: ignore[union-attr]
        assert admin.get("/_sandbox/stats").json()["total"] == 2  # the later read asked again
        third = await b.records(ObjectKind.BALANCE, ERP_IDS[:1], Balance)
        assert third[0].cached  # type: ignore[union-attr]  # what the later read kept
        assert admin.get("/_sandbox/stats").json()["total"] == 2
    finally:
        admin.put("/_sandbox/faults", json={})
        for registry in registries:
            await registry.aclose()
        await client.aclose()
