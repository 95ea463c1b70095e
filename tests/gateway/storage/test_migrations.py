from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from gateway.storage.database import create_engine, sessions
from gateway.storage.migrate import current_revision, downgrade, head_revision, upgrade
from gateway.storage.tables import Base, Customer, ExternalId, IdempotencyRecord

TABLES = {
    "alembic_version",
    "api_keys",
    "audit_log",
    "credit_requests",
    "customer_external_ids",
    "customers",
    "idempotency_keys",
    "inbound_events",
    "outbox",
    "reconciliation_exceptions",
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


def test_migrations_build_every_table_and_roll_back(database_url: str) -> None:
    upgrade(database_url)
    names, revision = asyncio.run(_tables(database_url))
    assert names == TABLES
    assert revision == head_revision()
    downgrade(database_url)
    names, revision = asyncio.run(_tables(database_url))
    assert names == {"alembic_version"}
    assert revision is None


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
                    request_hash="h",
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
                        request_hash="h",
                        principal="p",
                        status="completed",
                        expires_at=datetime(2026, 1, 1),
                    )
                )
    finally:
        await engine.dispose()
