"""The intake's group commit, on SQLite and PostgreSQL: deliveries that arrive together are
stored in one transaction, each once (a repeat in the same batch or a later one is answered
as a duplicate), every caller is answered, and a caller that gives up leaves the others'
batch alone. Each is stored processed, the cache having forgotten what it names first; one
the cache could not forget is stored unprocessed, for the pending round."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from opentelemetry.trace import SpanKind
from sqlalchemy import func, insert, select, text

from connectors.errors import GatewayError
from connectors.models import ObjectKind, SystemName
from gateway.data.services import Services
from gateway.events.canonical import canonical
from gateway.events.intake import StoreUnavailable
from gateway.ownership import OwnershipMap
from gateway.settings import load_settings
from gateway.storage.database import sessions
from gateway.storage.tables import InboundEvent, OutboxMessage
from tests.gateway.events.vendor_events import invoice_paid
from tests.gateway.telemetry.spans import Spans

BILLING = SystemName.BILLING


@pytest.fixture
async def services(migrated_url: str) -> AsyncIterator[Services]:
    settings = load_settings(database_url=migrated_url, change_feed_interval_s=3600)
    built = Services.build(settings, OwnershipMap.load(settings.ownership_file))
    yield built
    await built.aclose()


def paid(event_id: str) -> Any:
    return canonical(BILLING, invoice_paid(event_id))


async def counts(services: Services) -> tuple[int, int]:
    async with sessions(services.engine)() as session:
        inbox = await session.scalar(select(func.count()).select_from(InboundEvent))
        outbox = await session.scalar(select(func.count()).select_from(OutboxMessage))
    return int(inbox or 0), int(outbox or 0)


async def test_deliveries_that_arrive_together_are_stored_once_each(services: Services) -> None:
    first = [paid(f"evt_batch_{n}") for n in range(40)]
    repeats = [paid(f"evt_batch_{n}") for n in range(0, 40, 4)]  # ten, in the same batch
    answers = await asyncio.gather(*(services.intake.store(BILLING, e) for e in first + repeats))
    assert [a.duplicate for a in answers] == [False] * 40 + [True] * 10
    assert [a.event_id for a in answers] == [e["id"] for e in first + repeats]
    assert await counts(services) == (40, 40)
    # Later, one at a time: the inbox holds them already.
    again = await services.intake.store(BILLING, paid("evt_batch_7"))
    assert again.duplicate and await counts(services) == (40, 40)
    async with sessions(services.engine)() as session:
        unprocessed = await session.scalar(
            select(func.count())
            .select_from(InboundEvent)
            .where(InboundEvent.processed_at.is_(None))
        )
    assert unprocessed == 0  # no processor running: marked by each store itself


async def test_a_caller_that_gives_up_leaves_the_batch_to_the_others(services: Services) -> None:
    events = [paid(f"evt_gone_{n}") for n in range(20)]
    calls = [asyncio.create_task(services.intake.store(BILLING, e)) for e in events]
    await asyncio.sleep(0)  # all twenty are waiting on one write
    calls[3].cancel()
    answers = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(answers[3], asyncio.CancelledError)
    assert [a.duplicate for i, a in enumerate(answers) if i != 3] == [False] * 19  # type: ignore[union-attr]
    assert await counts(services) == (20, 20)  # the one that gave up was stored too


# SQLite has one writer: its batches never overlap.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_batches_holding_the_same_deliveries_wait_for_each_other_without_deadlock(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    """Two batches written at once (PostgreSQL) take the inbox's rows in key order, so that
    one holding the same deliveries as another (a vendor's retry racing its first try)
    waits for it rather than each waiting for the other. The other batch here is another
    writer's transaction, in key order too, paused between its two rows."""
    first, second = paid("evt_lock_a"), paid("evt_lock_b")  # in key order
    row = {"source": BILLING.value, "type": "billing.invoice.paid", "payload": {}}
    async with services.engine.connect() as other:
        await other.execute(insert(InboundEvent).values(event_id=first["id"], **row))
        # This batch holds them the other way round: it must wait on the first row, not
        # take the second and then wait.
        batch = asyncio.gather(*(services.intake.store(BILLING, e) for e in (second, first)))
        await asyncio.sleep(0.5)
        assert not batch.done()
        await other.execute(insert(InboundEvent).values(event_id=second["id"], **row))
        await other.commit()
    answers = await asyncio.wait_for(batch, 10)
    assert [a.duplicate for a in answers] == [True, True]
    # Written together, once: a deadlock would have failed the batch (PostgreSQL aborts
    # one side), and each delivery would have been written again alone.
    assert [r.getMessage() for r in caplog.records if r.name == "opsgraph.events"] == []
    assert await counts(services) == (2, 0)  # the other writer's rows, and nothing again


async def processed(services: Services) -> dict[str, bool]:
    async with sessions(services.engine)() as session:
        rows = await session.execute(select(InboundEvent.event_id, InboundEvent.processed_at))
    return {event_id: at is not None for event_id, at in rows}


async def test_the_cache_forgets_a_delivery_before_it_is_stored_processed(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One transaction stores a delivery already processed: the cache forgot what it names
    before the row existed, and the row is marked as it is written."""
    forgotten: list[tuple[list[Any], dict[str, bool]]] = []
    invalidate_many = services.reader.invalidate_many

    async def watched(entities: Any) -> int:
        named = list(entities)
        forgotten.append((named, await processed(services)))
        return await invalidate_many(named)

    monkeypatch.setattr(services.reader, "invalidate_many", watched)
    answer = await services.intake.store(BILLING, paid("evt_first"))
    assert not answer.duplicate
    invoice = (ObjectKind.INVOICE, "in_evt_first", "cus_x")
    assert forgotten == [([invoice], {})]  # before the inbox held it
    assert await processed(services) == {"evt_first": True}


async def test_a_delivery_the_cache_could_not_forget_is_stored_for_the_pending_round(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    invalidate_many = services.reader.invalidate_many
    calls: list[list[Any]] = []

    async def down(entities: Any) -> int:
        calls.append(list(entities))
        raise GatewayError("the cache is down")

    monkeypatch.setattr(services.reader, "invalidate_many", down)
    answer = await services.intake.store(BILLING, paid("evt_unforgotten"))
    assert not answer.duplicate  # stored: the vendor need not deliver it again
    assert await processed(services) == {"evt_unforgotten": False}
    assert await counts(services) == (1, 1)

    monkeypatch.setattr(services.reader, "invalidate_many", invalidate_many)
    assert await services.intake.process_pending() == 1
    assert await processed(services) == {"evt_unforgotten": True}
    assert await services.intake.process_pending() == 0
    assert calls == [[(ObjectKind.INVOICE, "in_evt_unforgotten", "cus_x")]]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_delivery_the_database_refuses_fails_alone(services: Services) -> None:
    """A batch PostgreSQL refuses is written again one delivery at a time: the refused one
    is answered ``StoreUnavailable`` (503, delivered again later), the others are stored."""
    async with services.engine.begin() as connection:
        await connection.execute(
            text(
                "ALTER TABLE inbound_events ADD CONSTRAINT not_this_one "
                "CHECK (event_id <> 'evt_refused')"
            )
        )
    events = [paid("evt_before"), paid("evt_refused"), paid("evt_after")]
    answers = await asyncio.gather(
        *(services.intake.store(BILLING, e) for e in events), return_exceptions=True
    )
    assert not answers[0].duplicate and not answers[2].duplicate  # type: ignore[union-attr]
    assert isinstance(answers[1], StoreUnavailable)
    assert "CheckViolationError" in str(answers[1])
    assert await processed(services) == {"evt_before": True, "evt_after": True}
    assert await counts(services) == (2, 2)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_connection_dropped_under_a_batch_is_not_lent_again(
    services: Services, migrated_url: str
) -> None:
    """PostgreSQL drops the pool's connections between two deliveries (too soon after the
    first for the pool to ping them): the second is answered ``StoreUnavailable`` and its
    connection is dropped from the pool, so the third is stored."""
    await services.intake.store(BILLING, paid("evt_one"))
    admin = await asyncpg.connect(migrated_url.replace("+asyncpg", ""))
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    with pytest.raises(StoreUnavailable):
        await services.intake.store(BILLING, paid("evt_two"))
    assert not (await services.intake.store(BILLING, paid("evt_three"))).duplicate
    assert await processed(services) == {"evt_one": True, "evt_three": True}


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_the_group_commit_is_a_span_as_sqlalchemy_would_make_it(
    services: Services, spans: Spans
) -> None:
    """The statement asyncpg sends itself is traced as the instrumented engine's are."""
    await asyncio.gather(*(services.intake.store(BILLING, paid(f"evt_span_{n}")) for n in range(3)))
    [commit] = spans.named("INSERT inbound_events, outbox")
    assert commit.kind is SpanKind.CLIENT
    assert commit.attributes is not None
    assert commit.attributes["db.system"] == "postgresql"
    assert str(commit.attributes["db.statement"]).startswith("WITH inbox AS (")
