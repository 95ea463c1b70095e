"""The gateway database's connection pool comes from settings and replaces what PostgreSQL
dropped, and its JSON columns keep what they are given, on both databases."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest
from sqlalchemy import Text, cast, select, text
from sqlalchemy.pool import QueuePool

from gateway.data.services import Services
from gateway.ownership import OwnershipMap
from gateway.settings import load_settings
from gateway.storage import database
from gateway.storage.database import PoolSize, create_engine, sessions
from gateway.storage.tables import OutboxMessage


async def test_the_pool_is_sized_from_settings(database_url: str) -> None:
    settings = load_settings(
        database_url=database_url,
        database_pool_size=7,
        database_max_overflow=3,
        database_pool_timeout_s=2.5,
    )
    services = Services.build(settings, OwnershipMap.load(settings.ownership_file))
    try:
        pool = services.engine.sync_engine.pool
        assert isinstance(pool, QueuePool)
        assert (pool.size(), pool._max_overflow, pool._timeout) == (7, 3, 2.5)
    finally:
        await services.aclose()


async def test_json_columns_keep_what_the_standard_library_would(migrated_url: str) -> None:
    """The JSON columns are written with orjson (``gateway.storage.codec``); what it does
    not take is written as ``json`` would, and text is read back as it was written."""
    payload = {
        "id": "evt_1",
        "data": {"amount": 1250, "share": 0.25, "lines": [None, True, "é ✓"]},
        7: "a key that is not text",
        "huge": 2**70,  # beyond 64 bits: not orjson's
    }
    engine = create_engine(migrated_url)
    try:
        async with sessions(engine).begin() as session:
            session.add(OutboxMessage(topic="t", key="k", payload=payload))
        async with sessions(engine)() as session:
            stored = await session.scalar(select(OutboxMessage.payload))
            text = await session.scalar(select(cast(OutboxMessage.payload, Text)))
    finally:
        await engine.dispose()
    assert stored is not None and text is not None
    assert {k: v for k, v in stored.items() if k != "huge"} == {
        "id": "evt_1",
        "data": {"amount": 1250, "share": 0.25, "lines": [None, True, "é ✓"]},
        "7": "a key that is not text",
    }
    assert json.loads(text) == {**stored, "huge": 2**70}  # the database holds it exactly
    assert stored["huge"] == float(2**70)  # orjson reads it as a float, as codec documents


async def test_a_connection_the_database_dropped_while_idle_is_replaced_before_use(
    postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a connection that sat idle past ``IDLE_PING_S`` is pinged when it is lent; one
    whose server process was terminated meanwhile is replaced, and the query runs."""
    monkeypatch.setattr(database, "IDLE_PING_S", 0.2)
    engine = create_engine(postgres_database, PoolSize(size=1, overflow=0))
    pings: list[object] = []
    do_ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda c: pings.append(c) or do_ping(c))
    backend = text("SELECT pg_backend_pid()")
    try:
        async with engine.connect() as connection:
            first = (await connection.execute(backend)).scalar_one()
        async with engine.connect() as connection:  # back at once: not pinged
            assert (await connection.execute(backend)).scalar_one() == first
        assert pings == []
        admin = await asyncpg.connect(postgres_database.replace("+asyncpg", ""))
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", first) is True
        finally:
            await admin.close()
        await asyncio.sleep(0.3)
        async with engine.connect() as connection:  # idle: pinged, found dead, replaced
            second = (await connection.execute(backend)).scalar_one()
        assert second != first
        assert len(pings) == 1
    finally:
        await engine.dispose()
