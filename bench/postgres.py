"""A PostgreSQL database of a benchmark's own on 127.0.0.1:5432: created fresh, migrated,
dropped when the benchmark ends."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.storage.migrate import upgrade

PG_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


async def _admin(sql: str) -> None:
    # CREATE and DROP DATABASE cannot run in a transaction.
    engine = create_async_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(sql))
    finally:
        await engine.dispose()


@contextmanager
def fresh_database(name: str) -> Iterator[str]:
    """The database ``name``, new and migrated (any earlier one of that name dropped): its
    URL. Dropped when the block ends."""
    url = f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
