"""Change feeds of the systems that send no webhooks, over real HTTP to the ERP and CRM
sandboxes, on SQLite and PostgreSQL: a first poll starts from now, later ones store each
change once as a canonical event and make the next read ask the owner; a poll that fails
keeps its watermark and the next resumes from it, and a window read twice stores nothing
twice."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select, update

from connectors.commands import CreateCreditMemo, UpdateAccountHealth
from connectors.models import Account, Balance, ObjectKind, SystemName
from connectors.money import Money
from connectors.resilience import Policy
from gateway.data.reads import settled
from gateway.data.services import Services
from gateway.events.feeds import ChangeFeeds, Polled
from gateway.ownership import OwnershipMap
from gateway.storage.database import sessions
from gateway.storage.tables import ChangeFeedWatermark, InboundEvent
from tests.world import Sandboxes, sandboxes

ERP, CRM = SystemName.ERP, SystemName.CRM


@pytest.fixture(scope="module")
def boxes() -> Iterator[Sandboxes]:
    """Sandboxes of this module's own: it posts memos and changes accounts."""
    with sandboxes() as running:
        yield running


@pytest.fixture
async def services(boxes: Sandboxes, migrated_url: str) -> AsyncIterator[Services]:
    settings = boxes.settings(migrated_url, connector={"cache_ttl_s": 3600, "timeout_s": 2})
    built = Services.build(settings, OwnershipMap.load(settings.ownership_file))
    for system in (ERP, CRM):  # one attempt: a fault test fails at once
        built.registry.get(system).policy = Policy(attempts=1, breaker_threshold=100)
    yield built
    boxes.reset()
    await built.aclose()


def customer(boxes: Sandboxes) -> Any:
    return boxes.world.customers[0]


def memo(boxes: Sandboxes, ref: str) -> CreateCreditMemo:
    """A new credit memo (the ERP refuses a second transaction with an external id it has:
    each carries one of its own, in whichever test and database run)."""
    seeded = customer(boxes)
    return CreateCreditMemo(
        customer_id=seeded.external_ids[ERP],
        amount=Money.of("12.50", seeded.currency),
        tax=Money.zero(seeded.currency),
        subsidiary=seeded.legal_entity,
        tran_date=date(2026, 12, 7),
        external_id=f"{ref}-{uuid.uuid4().hex[:8]}",
    )


async def events(services: Services, source: str) -> list[tuple[str, str, bool]]:
    async with sessions(services.engine)() as session:
        rows = await session.execute(
            select(InboundEvent.type, InboundEvent.event_id, InboundEvent.processed_at)
            .where(InboundEvent.source == source)
            .order_by(InboundEvent.id)
        )
        return [(t, e, done is not None) for t, e, done in rows]


async def watermark(services: Services, system: SystemName) -> ChangeFeedWatermark | None:
    async with sessions(services.engine)() as session:
        return await session.get(ChangeFeedWatermark, system.value)


async def test_the_first_poll_starts_from_now_and_later_ones_store_each_change_once(
    boxes: Sandboxes, services: Services
) -> None:
    feeds: ChangeFeeds = services.feeds
    assert feeds.systems == [ERP, CRM]
    await services.registry.get(ERP).write(memo(boxes, "before-the-first-poll"), uuid.uuid4().hex)
    first = await feeds.poll(ERP)
    assert (first.stored, first.error) == (0, None)  # history is not replayed
    assert await events(services, "erp") == []

    erp_customer = customer(boxes).external_ids[ERP]
    [cached] = await services.reader.records(ObjectKind.BALANCE, [erp_customer], Balance)
    written = await services.registry.get(ERP).write(
        memo(boxes, "after-the-first-poll"), uuid.uuid4().hex
    )
    second = await feeds.poll(ERP)
    stored = await events(services, "erp")
    assert [(t, done) for t, _, done in stored] == [
        ("erp.posting.created", True),
        ("erp.balance.updated", True),
    ]
    assert stored[0][1].startswith(f"posting/{written.id}@")
    assert second == Polled(ERP, 2, second.cursor)
    assert int(second.cursor or 0) > int(first.cursor or 0)
    # The balance the cache held is forgotten: the next read asks the ERP.
    [after] = await services.reader.records(ObjectKind.BALANCE, [erp_customer], Balance)
    held, fresh = settled(cached), settled(after)
    assert fresh.cached is False
    assert held.value is not None and fresh.value is not None
    # The memo of 12.50 lowered what the customer owes.
    seeded = customer(boxes)
    lowered = held.value.receivable.amount_minor - Money.of("12.50", seeded.currency).amount_minor
    assert fresh.value.receivable.amount_minor == lowered
    assert (await feeds.poll(ERP)).stored == 0  # nothing new


async def test_a_failed_poll_keeps_its_watermark_and_the_next_resumes_from_it(
    boxes: Sandboxes, services: Services
) -> None:
    feeds = services.feeds
    start = await feeds.poll(ERP)
    await services.registry.get(ERP).write(memo(boxes, "while-down"), uuid.uuid4().hex)
    boxes.faults(ERP, error_rate=1.0, error_status=503)
    failed = await feeds.poll(ERP)
    assert (failed.stored, failed.error, failed.cursor) == (0, "UPSTREAM_UNAVAILABLE", start.cursor)
    mark = await watermark(services, ERP)
    assert mark is not None and (mark.cursor, (mark.error or "")[:21]) == (
        start.cursor, "UPSTREAM_UNAVAILABLE:"
    )  # fmt: skip
    boxes.reset()
    resumed = await feeds.poll(ERP)
    assert (resumed.stored, resumed.error) == (2, None)
    mark = await watermark(services, ERP)
    assert mark is not None and (mark.cursor, mark.error) == (resumed.cursor, None)


async def test_a_window_read_twice_stores_nothing_twice(
    boxes: Sandboxes, services: Services
) -> None:
    feeds = services.feeds
    start = await feeds.poll(ERP)
    await services.registry.get(ERP).write(memo(boxes, "read-twice"), uuid.uuid4().hex)
    assert (await feeds.poll(ERP)).stored == 2
    # A process that stored the window and died before it saved its watermark.
    async with sessions(services.engine).begin() as session:
        await session.execute(
            update(ChangeFeedWatermark)
            .where(ChangeFeedWatermark.system == ERP.value)
            .values(cursor=start.cursor)
        )
    again = await feeds.poll(ERP)
    assert again.stored == 0
    assert len(await events(services, "erp")) == 2


async def test_an_account_changed_in_the_crm_is_polled(
    boxes: Sandboxes, services: Services
) -> None:
    feeds = services.feeds
    await feeds.poll(CRM)
    account_id = customer(boxes).external_ids[CRM]
    [cached] = await services.reader.records(ObjectKind.ACCOUNT, [account_id], Account)
    account = settled(cached).value
    assert account is not None
    score = ((account.health_score or 0) + 1) % 100  # another score than the account has
    await services.registry.get(CRM).write(
        UpdateAccountHealth(id=account_id, health_score=score), uuid.uuid4().hex
    )
    polled = await feeds.poll(CRM)
    assert (polled.stored, polled.error) == (1, None)
    [(type_, event_id, done)] = await events(services, "crm")
    assert (type_, done) == ("crm.account.updated", True)
    assert event_id.startswith(f"account/{account_id}@")
    # The account the cache held is forgotten: the next read asks the CRM.
    [after] = await services.reader.records(ObjectKind.ACCOUNT, [account_id], Account)
    fresh = settled(after)
    assert fresh.cached is False and fresh.value is not None
    assert fresh.value.health_score == score
