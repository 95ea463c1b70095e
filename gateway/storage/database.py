"""The async engine and sessions for the gateway's own database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from connectors import inputs
from gateway.storage import codec


@dataclass(frozen=True)
class PoolSize:
    """How many connections the gateway keeps (``size``), may add under load
    (``overflow``), and how long a request waits for one before failing (``timeout_s``)."""

    size: int = 5
    overflow: int = 10
    timeout_s: float = 30.0


def create_engine(url: str, pool: PoolSize | None = None) -> AsyncEngine:
    pool = pool or PoolSize()
    # The JSON columns are written and read on every webhook (``codec``).
    coded = {"json_serializer": codec.dumps, "json_deserializer": codec.loads}
    sizing = {
        "pool_size": pool.size,
        "max_overflow": pool.overflow,
        "pool_timeout": pool.timeout_s,
        **coded,
    }
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(url, **sizing)
        else:
            engine = create_async_engine(url, **coded)  # one shared in-memory connection
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    else:
        engine = create_async_engine(url, pool_pre_ping=True, **sizing)
    event.listen(engine.sync_engine, "checkout", _spoils)
    return engine


def _spoils(*_: object) -> None:
    # What an execution reads from the database no response cache can tell has changed
    # (``connectors.inputs``); the checkout runs in the execution's context.
    inputs.spoil("read the gateway's database")


def _sqlite_pragmas(dbapi_connection: object, record: ConnectionPoolEntry) -> None:
    # WAL lets readers proceed while the gateway writes; foreign keys are off by default.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
