"""The async engine and sessions for the gateway's own database."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from connectors import inputs
from gateway.storage import codec

# A PostgreSQL connection back in the pool for longer than this is pinged before it is lent
# again; one that came back within it is lent as it is.
IDLE_PING_S = 1.0


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
        engine = create_async_engine(url, **sizing)
        _ping_when_idle(engine)
    event.listen(engine.sync_engine, "checkout", _spoils)
    return engine


def _ping_when_idle(engine: AsyncEngine) -> None:
    """SQLAlchemy's ``pool_pre_ping`` for the connections that sat idle: a connection the
    database dropped while it lay in the pool (a restart, an idle timeout) is replaced before
    anyone is lent it. Every checkout of the built-in pre-ping costs three round trips
    (asyncpg's ping is a BEGIN, an empty query and a ROLLBACK), as much client CPU as the
    transaction it precedes: a busy gateway was pinging connections it had used a
    millisecond before. A connection that fails mid-use is still noticed by SQLAlchemy's
    disconnect handling, which drops it and every older one from the pool. Written here:
    SQLAlchemy's pre-ping has no idle threshold; this is its documented checkout-event form
    ("Disconnect Handling - Pessimistic")."""
    dialect = engine.dialect

    def fresh(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        if time.monotonic() - record.info.get("idle_since", 0.0) >= IDLE_PING_S:
            _ping(dialect, dbapi_connection)

    event.listen(engine.sync_engine, "connect", fresh)
    event.listen(engine.sync_engine, "checkin", fresh)
    event.listen(engine.sync_engine, "checkout", checked_out)


def _ping(dialect: Dialect, dbapi_connection: Any) -> None:
    """As the pool's pre-ping: a connection the database dropped invalidates the pool (the
    others were very likely dropped with it) and the checkout is made again."""
    try:
        dialect.do_ping(dbapi_connection)
    except dialect.loaded_dbapi.Error as failed:
        if dialect.is_disconnect(failed, dbapi_connection, None):
            raise exc.InvalidatePoolError() from failed
        raise


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
