from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import TypeVar

import pytest
from sqlalchemy import Connection, DateTime, column, inspect, select, table
from sqlalchemy.exc import IntegrityError

from gateway.storage.database import create_engine, sessions
from gateway.storage.migrate import current_revision, downgrade, head_revision, upgrade
from gateway.storage.tables import (
    Base,
    Customer,
    ExternalId,
    IdempotencyRecord,
    WorkflowRun,
    WorkflowStep,
)

T = TypeVar("T")

TABLES = {
    "alembic_version",
    "api_keys",
    "audit_log",
    "change_feed_watermarks",
    "credit_requests",
    "customer_external_ids",
    "customers",
    "idempotency_keys",
    "inbound_events",
    "outbox",
    "reconciliation_exceptions",
    "reconciliation_items",
    "reconciliation_runs",
    "workflow_runs",
    "workflow_steps",
}


async def _tables(url: str) -> tuple[set[str], str | None]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
        return names, await current_revision(engine)
    finally:
        await engine.dispose()


async def _on(url: str, work: Callable[[Connection], T]) -> T:
    """``work`` on a connection to ``url``, committed."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


def _idempotency_key(connection: Connection) -> list[str]:
    """The columns of the idempotency records' primary key."""
    return list(inspect(connection).get_pk_constraint("idempotency_keys")["constrained_columns"])


# the columns 0004 adds for the workflow engine
WORKFLOW_0004 = {
    ("workflow_runs", "error_code"),
    ("workflow_runs", "lease_expires_at"),
    ("workflow_runs", "next_attempt_at"),
    ("workflow_steps", "error_code"),
}


def _workflow_0004(connection: Connection) -> set[tuple[str, str]]:
    """Those of 0004's columns that the workflow tables have."""
    inspector = inspect(connection)
    tables = ("workflow_runs", "workflow_steps")
    have = {(t, c["name"]) for t in tables for c in inspector.get_columns(t)}
    return have & WORKFLOW_0004


def test_migrations_build_every_table_and_roll_back(database_url: str) -> None:
    upgrade(database_url)
    names, revision = asyncio.run(_tables(database_url))
    assert names == TABLES
    assert revision == head_revision()
    assert asyncio.run(_on(database_url, _idempotency_key)) == ["principal", "key"]
    assert asyncio.run(_on(database_url, _workflow_0004)) == WORKFLOW_0004
    downgrade(database_url, "0004")
    assert "change_feed_watermarks" not in asyncio.run(_tables(database_url))[0]
    downgrade(database_url, "0003")
    assert asyncio.run(_on(database_url, _workflow_0004)) == set()
    downgrade(database_url, "0002")
    assert asyncio.run(_on(database_url, _idempotency_key)) == ["key"]
    downgrade(database_url)
    names, revision = asyncio.run(_tables(database_url))
    assert names == {"alembic_version"}
    assert revision is None


# idempotency_keys as 0002 left it
KEYS_0002 = table(
    "idempotency_keys",
    column("key"),
    column("principal"),
    column("operation"),
    column("request_hash"),
    column("status"),
    column("created_at", DateTime(timezone=True)),
    column("expires_at", DateTime(timezone=True)),
)
KEYS = IdempotencyRecord.__table__


def test_idempotency_records_survive_0003_unless_principals_share_the_key(
    database_url: str,
) -> None:
    """Up, a record keeps its key and holds its lease since its creation; down, a key that
    two principals hold cannot say whose it is, and goes."""
    at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    record = {"operation": "op", "status": "completed", "created_at": at, "expires_at": at}
    upgrade(database_url, "0002")
    before = [
        {"principal": "p1", "key": "k1", "request_hash": "h", **record},
        {"principal": "p2", "key": "k2", "request_hash": "h", **record},
    ]
    asyncio.run(_on(database_url, lambda c: c.execute(KEYS_0002.insert(), before)))
    upgrade(database_url)
    leases = select(KEYS.c.principal, KEYS.c.key, KEYS.c.updated_at).order_by(KEYS.c.key)
    assert asyncio.run(_on(database_url, lambda c: list(c.execute(leases)))) == [
        ("p1", "k1", at),
        ("p2", "k2", at),
    ]
    shared = {"principal": "p2", "key": "k1", "fingerprint": "h", "updated_at": at, **record}
    asyncio.run(_on(database_url, lambda c: c.execute(KEYS.insert(), shared)))
    downgrade(database_url, "0002")
    left = select(KEYS_0002.c.principal, KEYS_0002.c.key)
    assert asyncio.run(_on(database_url, lambda c: list(c.execute(left)))) == [("p2", "k2")]


def test_workflow_steps_survive_0004_down(database_url: str) -> None:
    """On SQLite, copying workflow_runs to drop a column would delete every step through
    the foreign key's ON DELETE CASCADE."""
    at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    run = {"id": "wr_1", "workflow": "w", "status": "running", "subject_kind": "k"}
    run |= {"subject_id": "s", "input": {}, "version": 1, "created_at": at, "updated_at": at}
    step = {"run_id": "wr_1", "name": "post_memo", "status": "pending", "attempts": 0}
    upgrade(database_url)
    asyncio.run(_on(database_url, lambda c: c.execute(WorkflowRun.__table__.insert(), run)))
    asyncio.run(_on(database_url, lambda c: c.execute(WorkflowStep.__table__.insert(), step)))
    downgrade(database_url, "0003")
    steps = select(table("workflow_steps", column("run_id"), column("name")))
    assert asyncio.run(_on(database_url, lambda c: list(c.execute(steps)))) == [
        ("wr_1", "post_memo")
    ]


def test_the_migrations_match_the_models(migrated_url: str) -> None:
    """A model change without a migration fails here, on SQLite and on PostgreSQL."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    async def diff() -> list[object]:
        engine = create_engine(migrated_url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
                )
        finally:
            await engine.dispose()

    assert asyncio.run(diff()) == []


async def test_the_crosswalk_allows_one_customer_per_external_id(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    make = sessions(engine)
    try:
        async with make.begin() as session:
            session.add_all([Customer(id="c1", name="One"), Customer(id="c2", name="Two")])
            await session.flush()
            session.add(ExternalId(customer_id="c1", system="billing", external_id="cus_1"))
        with pytest.raises(IntegrityError):
            async with make.begin() as session:
                session.add(ExternalId(customer_id="c2", system="billing", external_id="cus_1"))
        with pytest.raises(IntegrityError):
            async with make.begin() as session:
                session.add(ExternalId(customer_id="c1", system="billing", external_id="cus_9"))
        async with make.begin() as session:
            session.add(ExternalId(customer_id="c2", system="erp", external_id="cus_1"))
    finally:
        await engine.dispose()


async def test_times_come_back_aware_and_in_utc(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    make = sessions(engine)
    tokyo = datetime(2026, 11, 26, 9, 30, tzinfo=timezone(timedelta(hours=9)))
    try:
        async with make.begin() as session:
            session.add(
                IdempotencyRecord(
                    key="k",
                    operation="op",
                    fingerprint="h",
                    principal="p",
                    status="completed",
                    expires_at=tokyo,
                )
            )
        async with make() as session:
            stored = await session.scalar(select(IdempotencyRecord.expires_at))
        assert stored == datetime(2026, 11, 26, 0, 30, tzinfo=UTC)
        assert stored is not None and stored.tzinfo is not None
        with pytest.raises(Exception, match="naive datetimes are not stored"):
            async with make.begin() as session:
                session.add(
                    IdempotencyRecord(
                        key="n",
                        operation="op",
                        fingerprint="h",
                        principal="p",
                        status="completed",
                        expires_at=datetime(2026, 1, 1),
                    )
                )
    finally:
        await engine.dispose()


def _persistence(connection: Connection) -> str:
    """``reconciliation_items``' persistence on PostgreSQL: p(ermanent) or u(nlogged)."""
    query = "SELECT relpersistence::text FROM pg_class WHERE relname = 'reconciliation_items'"
    return str(connection.exec_driver_sql(query).scalar())


def test_staged_reconciliation_items_stay_out_of_the_write_ahead_log(
    postgres_database: str,
) -> None:
    """0009: the records a run stages, thrown away when it ends, are unlogged on
    PostgreSQL (their WAL and its flushes were most of what staging cost the database)."""
    upgrade(postgres_database, "0008")
    assert asyncio.run(_on(postgres_database, _persistence)) == "p"
    upgrade(postgres_database)
    assert asyncio.run(_on(postgres_database, _persistence)) == "u"
    downgrade(postgres_database, "0008")
    assert asyncio.run(_on(postgres_database, _persistence)) == "p"
