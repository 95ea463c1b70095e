"""The reconciler over the four sandboxes, on PostgreSQL: it finds exactly the discrepancies
the seed planted, keeps them across runs, and auto-resolves what agrees again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from connectors.commands import CreateCreditMemo, PostInvoice
from connectors.models import ExceptionKind, ExceptionStatus, Invoice, InvoiceStatus, SystemName
from connectors.money import Money
from connectors.sandbox.fleet import seed, set_faults
from gateway.data.services import Services
from gateway.demo import link_customers
from gateway.errors import BadUserInput
from gateway.ownership import OwnershipMap
from gateway.reconcile import engine
from gateway.reconcile.book import ExceptionFilter
from gateway.reconcile.engine import ReconciliationRunning, RunKind, RunStatus
from gateway.reconcile.records import Staged
from gateway.reconcile.scope import Period, Scope
from gateway.storage.database import sessions
from gateway.storage.migrate import upgrade
from gateway.storage.tables import CreditRequestRow
from gateway.storage.tables import ReconciliationItem as ItemRow
from gateway.storage.tables import ReconciliationRun as RunRow
from tests.identity import identity
from tests.world import Sandboxes, cli_env, gateway_process, sandbox_variables, sandboxes

# What the seed plants, in the words of a reconciliation.
KINDS = {
    "missing_posting": "missing_in_target",
    "duplicate_posting": "duplicate_in_target",
    "amount_mismatch": "amount_mismatch",
    "tax_mismatch": "tax_mismatch",
    "wrong_period": "period_mismatch",
}
QUARTER = Scope(Period(2026, 9), Period(2026, 11))


@pytest.fixture
def boxes() -> Iterator[Sandboxes]:
    """Sandboxes of each test's own: one reposts a missing invoice, and the others must
    still find it missing."""
    with sandboxes() as running:
        yield running


@pytest.fixture
def linked_pg(boxes: Sandboxes, postgres_database: str) -> str:
    upgrade(postgres_database)
    asyncio.run(link_customers(postgres_database, boxes.world))
    return postgres_database


@pytest.fixture
async def services(boxes: Sandboxes, linked_pg: str) -> AsyncIterator[Services]:
    settings = boxes.settings(linked_pg, connector={"timeout_s": 5})
    built = Services.build(settings, OwnershipMap.load(settings.ownership_file))
    yield built
    boxes.reset()
    await built.aclose()


def planted(boxes: Sandboxes) -> set[tuple[str, str, str | None]]:
    return {
        (KINDS[d.kind], d.customer_id, d.invoice_id)
        for d in boxes.world.discrepancies
        if d.kind in KINDS
    }


async def book(services: Services, **wanted: object) -> list[tuple[str, str, str | None]]:
    page = await services.book.page(ExceptionFilter(**wanted), None, 200, None)  # type: ignore[arg-type]
    return [(e.kind.value, e.customer_id or "", e.invoice_id) for e in page.exceptions]


async def test_a_full_run_finds_exactly_the_planted_discrepancies(
    boxes: Sandboxes, services: Services
) -> None:
    run = await services.reconciler.run(QUARTER, "finance@example.com")
    assert run.status is RunStatus.COMPLETED and run.error is None
    found = await book(services)
    assert set(found) == planted(boxes) and len(found) == 5
    invoices = [r for r in boxes.world.slice(SystemName.BILLING) if isinstance(r, Invoice)]
    assert run.stats["source"] == len(invoices)  # 6 customers, 3 months
    assert run.stats["kinds"] == {kind: 1 for kind in KINDS.values()}
    assert run.stats["new"] == 5 and run.stats["autoResolved"] == 0

    # Found again by the next run: the same five exceptions, nothing new.
    again = await services.reconciler.run(QUARTER, "finance@example.com")
    assert "new" not in again.stats and again.stats["autoResolved"] == 0
    page = await services.book.page(ExceptionFilter(), None, 200, None)
    assert {e.first_run_id for e in page.exceptions} == {run.id}
    assert {e.last_run_id for e in page.exceptions} == {again.id}


@pytest.fixture
def linked_sqlite(boxes: Sandboxes, sqlite_database: str) -> str:
    upgrade(sqlite_database)
    asyncio.run(link_customers(sqlite_database, boxes.world))
    return sqlite_database


async def test_the_embedded_default_sqlite_finds_the_same_discrepancies(
    boxes: Sandboxes, linked_sqlite: str
) -> None:
    settings = boxes.settings(linked_sqlite, connector={"timeout_s": 5})
    services = Services.build(settings, OwnershipMap.load(settings.ownership_file))
    try:
        run = await services.reconciler.run(QUARTER, "finance@example.com")
        assert run.status is RunStatus.COMPLETED and run.error is None
        assert set(await book(services)) == planted(boxes)
        assert run.stats["kinds"] == {kind: 1 for kind in KINDS.values()}
    finally:
        await services.aclose()


async def test_what_is_read_is_staged_in_groups_and_nothing_is_left_behind(
    boxes: Sandboxes, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "STAGE_ROWS", 7)
    written: list[int] = []
    stage = services.reconciler._stage

    async def counted(rows: Sequence[Staged]) -> None:
        written.append(len(rows))
        await stage(rows)

    monkeypatch.setattr(services.reconciler, "_stage", counted)
    run = await services.reconciler.run(QUARTER, "finance@example.com")
    assert set(await book(services)) == planted(boxes)
    assert sum(written) == run.stats["source"] + run.stats["target"]
    # Groups of 7 or more, but for what each of the seven readers had left at its end
    # (four windows of billing, the ERP's invoices and memos, opsgraph's credits).
    assert any(n >= 7 for n in written)
    assert sum(1 for n in written if n < 7) <= 7


async def test_an_invoice_counts_in_the_period_it_was_finalised_not_drafted(
    boxes: Sandboxes, services: Services
) -> None:
    """Two invoices drafted in August and finalised in September: the one posted in
    September agrees, the one never posted is missing in September (billing lists by when
    an invoice was made, so the run reads a week before its first period)."""
    customer = boxes.world.customers[0]
    late = []
    for n, finalised in enumerate((date(2026, 9, 2), date(2026, 9, 3))):
        late.append(
            Invoice(
                system=SystemName.BILLING, id=f"in_drafted{n}",
                customer_id=customer.external_ids[SystemName.BILLING], number=f"D-{n}",
                status=InvoiceStatus.OPEN, subtotal=Money(5000, customer.currency),
                tax=Money(0, customer.currency), total=Money(5000, customer.currency),
                issued_at=datetime(2026, 8, 28, 15, tzinfo=UTC),
                finalized_at=datetime.combine(finalised, datetime.min.time(), UTC),
            )
        )  # fmt: skip
    seed(boxes.admin[SystemName.BILLING], late)
    await services.registry.get(SystemName.ERP).write(
        PostInvoice(
            customer_id=customer.external_ids[SystemName.ERP], amount=late[0].subtotal,
            tax=late[0].tax, subsidiary=customer.legal_entity, tran_date=date(2026, 9, 2),
            external_id=late[0].id,
        ),
        "drafted-0",
    )  # fmt: skip
    run = await services.reconciler.run(QUARTER, "finance@example.com")
    assert run.status is RunStatus.COMPLETED
    found = await book(services)
    assert set(found) == planted(boxes) | {("missing_in_target", customer.id, "in_drafted1")}


async def test_a_repost_of_the_missing_invoice_is_auto_resolved_by_the_next_run(
    boxes: Sandboxes, services: Services
) -> None:
    await services.reconciler.run(QUARTER, "finance@example.com")
    (missing,) = [d for d in boxes.world.discrepancies if d.kind == "missing_posting"]
    invoice = next(
        r
        for r in boxes.world.slice(SystemName.BILLING)
        if isinstance(r, Invoice) and r.id == missing.invoice_id
    )
    customer = next(c for c in boxes.world.customers if c.id == missing.customer_id)
    erp = services.registry.get(SystemName.ERP)
    await erp.write(
        PostInvoice(
            customer_id=customer.external_ids[SystemName.ERP],
            amount=invoice.subtotal,
            tax=invoice.tax,
            subsidiary=customer.legal_entity,
            tran_date=invoice.issued_at.date(),
            external_id=invoice.id,
        ),
        "repost-1",
    )
    run = await services.reconciler.run(QUARTER, "finance@example.com")
    assert run.stats["autoResolved"] == 1
    resolved = await services.book.page(
        ExceptionFilter(status=ExceptionStatus.AUTO_RESOLVED), None, 10, None
    )
    assert [(e.kind.value, e.invoice_id, e.status_by) for e in resolved.exceptions] == [
        ("missing_in_target", missing.invoice_id, "reconciler")
    ]
    assert len(await book(services, status=ExceptionStatus.OPEN)) == 4


async def test_a_run_over_one_entity_and_period_sees_only_those(
    boxes: Sandboxes, services: Services
) -> None:
    (wrong,) = [d for d in boxes.world.discrepancies if d.kind == "amount_mismatch"]
    customer = next(c for c in boxes.world.customers if c.id == wrong.customer_id)
    invoice = next(
        r
        for r in boxes.world.slice(SystemName.BILLING)
        if isinstance(r, Invoice) and r.id == wrong.invoice_id
    )
    period = Period.of(invoice.issued_at.date())
    scope = Scope(period, period, (customer.legal_entity,))
    run = await services.reconciler.run(scope, "finance@example.com")
    found = await book(services)
    expected = {
        (KINDS[d.kind], d.customer_id, d.invoice_id)
        for d in boxes.world.discrepancies
        if d.kind in KINDS
        and next(c for c in boxes.world.customers if c.id == d.customer_id).legal_entity
        == customer.legal_entity
        and d.invoice_id
        in {
            r.id
            for r in boxes.world.slice(SystemName.BILLING)
            if isinstance(r, Invoice) and Period.of(r.issued_at.date()) == period
        }
    }
    assert ("amount_mismatch", wrong.customer_id, wrong.invoice_id) in expected
    assert set(found) == expected
    assert {
        e.entity for e in (await services.book.page(ExceptionFilter(), None, 50, None)).exceptions
    } == {customer.legal_entity}
    assert run.scope.entities == (customer.legal_entity,)


async def test_a_second_run_over_an_overlapping_scope_waits_its_turn(
    services: Services,
) -> None:
    first = await services.reconciler.start(QUARTER, "finance@example.com")
    with pytest.raises(ReconciliationRunning) as refused:
        await services.reconciler.start(Scope(Period(2026, 11), Period(2026, 11)), "ops")
    assert refused.value.run_id == first.id
    assert refused.value.code == "RECONCILIATION_RUNNING"
    done = await services.reconciler.wait(first.id)
    assert done.status is RunStatus.COMPLETED


async def test_an_incremental_run_compares_only_what_the_change_feeds_named(
    boxes: Sandboxes, services: Services
) -> None:
    await services.feeds.poll_all()  # a feed's first poll says where it starts
    services.reconciler.watermark_lag_s = 0  # every event stored is committed: one process
    with pytest.raises(BadUserInput) as first:
        await services.reconciler.start(QUARTER, "ops", RunKind.INCREMENTAL)
    assert first.value.message == (
        "no completed run covers this scope yet: an incremental run follows a full one"
    )
    full = await services.reconciler.run(QUARTER, "finance@example.com")
    assert full.stats["watermark"] == 0  # no event received yet
    (missing,) = [d for d in boxes.world.discrepancies if d.kind == "missing_posting"]
    invoice = next(
        r
        for r in boxes.world.slice(SystemName.BILLING)
        if isinstance(r, Invoice) and r.id == missing.invoice_id
    )
    customer = next(c for c in boxes.world.customers if c.id == missing.customer_id)
    await services.registry.get(SystemName.ERP).write(
        PostInvoice(
            customer_id=customer.external_ids[SystemName.ERP],
            amount=invoice.subtotal,
            tax=invoice.tax + Money(1, invoice.tax.currency),  # posted, with the tax wrong
            subsidiary=customer.legal_entity,
            tran_date=invoice.issued_at.date(),
            external_id=invoice.id,
        ),
        "repost-1",
    )
    # The ERP sends no webhooks: its change feed brings the new posting into the inbox.
    await services.feeds.poll_all()
    await services.intake.process_pending()

    run = await services.reconciler.run(QUARTER, "finance@example.com", RunKind.INCREMENTAL)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.stats["since"] == 0 and run.stats["watermark"] > 0
    # One invoice read on each side: the one the feed named, not the quarter.
    assert (run.stats["source"], run.stats["target"], run.stats["compared"]) == (1, 1, 1)
    assert run.stats["kinds"] == {"tax_mismatch": 1} and run.stats["autoResolved"] == 1
    open_now = await book(services, status=ExceptionStatus.OPEN)
    assert ("tax_mismatch", missing.customer_id, missing.invoice_id) in open_now
    assert ("missing_in_target", missing.customer_id, missing.invoice_id) not in open_now

    # Nothing new since: the next incremental run reads nothing and changes nothing.
    quiet = await services.reconciler.run(QUARTER, "finance@example.com", RunKind.INCREMENTAL)
    assert (quiet.stats["since"], quiet.stats["source"], quiet.stats["target"]) == (
        run.stats["watermark"], 0, 0,
    )  # fmt: skip
    assert quiet.stats["autoResolved"] == 0 and "new" not in quiet.stats


async def test_a_run_left_running_by_a_process_that_died_is_failed_by_the_next(
    services: Services,
) -> None:
    long_ago = datetime.now(UTC) - timedelta(minutes=10)
    async with sessions(services.engine).begin() as session:
        session.add(
            RunRow(
                id="rr_died", kind="full", source="billing", target="erp", entities=[],
                period_from="2026-09", period_to="2026-11", status="running",
                phase="reading", requested_by="ops", stats={"source": 7},
                started_at=long_ago, heartbeat_at=long_ago,
            )
        )  # fmt: skip
    run = await services.reconciler.run(QUARTER, "finance@example.com")
    assert run.status is RunStatus.COMPLETED
    died = await services.reconciler.get("rr_died")
    assert (died.status, died.error, died.stats) == (
        RunStatus.FAILED, "interrupted: its process stopped before it ended", {"source": 7},
    )  # fmt: skip


async def test_a_gateway_killed_mid_run_leaves_a_failed_run_and_nothing_staged(
    boxes: Sandboxes, linked_pg: str, services: Services
) -> None:
    # The gateway reconciles as it starts; billing answers in 3 s, so the run is mid-read
    # (the ERP's postings staged already) when the process is killed.
    set_faults(boxes.admin[SystemName.BILLING], latency_ms=3000)
    env = cli_env(
        OPSGRAPH_DATABASE_URL=linked_pg,
        OPSGRAPH_RECONCILE_AT_START="2026-09..2026-11",
        OPSGRAPH_CHANGE_FEED_INTERVAL_S="3600",
        **sandbox_variables(boxes),
        **identity().variables(),
    )

    async def staged() -> int:
        async with sessions(services.engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(ItemRow)) or 0)

    with gateway_process(env) as (_, gateway):
        for _ in range(200):
            if await staged() > 0:
                break
            await asyncio.sleep(0.05)
        gateway.kill()  # SIGKILL: no shutdown, the run stays "running"
        gateway.wait()
    (died,) = (await services.book.runs(5, None, None))[0]
    assert (died.status, died.requested_by) == (RunStatus.RUNNING, "opsgraph (at start)")
    assert await staged() > 0

    boxes.reset()
    services.reconciler.stale_s = 0.5  # its heartbeat stopped: at most a second ago
    await asyncio.sleep(1.5)
    run = await services.reconciler.run(QUARTER, "finance@example.com")
    assert run.status is RunStatus.COMPLETED and run.stats["new"] == 5
    failed = await services.reconciler.get(died.id)
    assert (failed.status, failed.error) == (
        RunStatus.FAILED, "interrupted: its process stopped before it ended",
    )  # fmt: skip
    assert await staged() == 0


async def test_approved_credits_and_their_memos_are_reconciled_one_exception_per_credit(
    boxes: Sandboxes, services: Services
) -> None:
    customer = boxes.world.customers[0]
    erp_id = customer.external_ids[SystemName.ERP]
    decided = datetime(2026, 11, 10, 12, tzinfo=UTC)
    async with sessions(services.engine).begin() as session:
        for credit_id, status in (
            ("cr_unposted", "approved"),
            ("cr_posted", "posted"),
            ("cr_wrong", "posted"),
            ("cr_pending", "requested"),
        ):
            session.add(
                CreditRequestRow(
                    id=credit_id, customer_id=customer.id, amount_minor=5000,
                    currency=customer.currency, reason="outage", status=status,
                    requested_by="agent", decided_by="finance", decided_at=decided,
                )
            )  # fmt: skip
    erp = services.registry.get(SystemName.ERP)
    for credit_id, minor, key in (("cr_posted", 5000, "m1"), ("cr_wrong", 4000, "m2"),
                                  ("cr_pending", 5000, "m3")):  # fmt: skip
        await erp.write(
            CreateCreditMemo(
                customer_id=erp_id, amount=Money(minor, customer.currency),
                tax=Money(0, customer.currency), subsidiary=customer.legal_entity,
                tran_date=decided.date(), external_id=credit_id,
            ),
            key,
        )  # fmt: skip
    await services.reconciler.run(Scope(Period(2026, 11), Period(2026, 11)), "finance")
    page = await services.book.page(
        ExceptionFilter(kind=ExceptionKind.CREDIT_MISMATCH), None, 10, None
    )
    money = Money(5000, customer.currency)
    assert sorted((e.key, e.detail.split(":")[0], e.customer_id) for e in page.exceptions) == [
        ("cr_pending", "credit memo for cr_pending has no approved credit", customer.id),
        ("cr_unposted", "approved credit cr_unposted has no credit memo", customer.id),
        ("cr_wrong", "credit cr_wrong", customer.id),
    ]
    wrong = next(e for e in page.exceptions if e.key == "cr_wrong")
    assert wrong.impact == Money(1000, customer.currency)
    assert wrong.detail.startswith(f"credit cr_wrong: posted {Money(4000, customer.currency)}")
    unposted = next(e for e in page.exceptions if e.key == "cr_unposted")
    assert unposted.impact == money and unposted.entity == customer.legal_entity


async def test_a_crm_that_cannot_answer_lowers_no_severity_it_raised(
    boxes: Sandboxes, services: Services
) -> None:
    await services.reconciler.run(QUARTER, "finance@example.com")
    before = {
        e.id: (e.severity, e.rank)
        for e in (await services.book.page(ExceptionFilter(), None, 50, None)).exceptions
    }
    raised = [
        e for e in (await services.book.page(ExceptionFilter(), None, 50, None)).exceptions
        if "strategic account" in e.detail or "renews in" in e.detail
    ]  # fmt: skip
    assert raised  # the seed's world has a strategic account among the planted
    set_faults(boxes.admin[SystemName.CRM], error_rate=1.0, error_status=503)
    run = await services.reconciler.run(QUARTER, "finance@example.com")
    assert run.status is RunStatus.COMPLETED and "crmUnavailable" in run.stats
    after = {
        e.id: (e.severity, e.rank)
        for e in (await services.book.page(ExceptionFilter(), None, 50, None)).exceptions
    }
    assert after == before


async def test_the_schedule_runs_a_full_reconciliation_first_then_incremental_ones(
    boxes: Sandboxes, linked_pg: str
) -> None:
    settings = boxes.settings(
        linked_pg, connector={"timeout_s": 5}, reconcile_every_s=0.2, reconcile_periods=3
    )
    scheduled = Services.build(settings, OwnershipMap.load(settings.ownership_file))
    # The schedule's periods end with this month; the seed's world is in 2026-09..11.
    scheduled.reconciler.today = lambda: date(2026, 11, 15)
    await scheduled.start()
    try:
        for _ in range(200):
            runs, _ = await scheduled.book.runs(10, None, None)
            if len([r for r in runs if r.status is RunStatus.COMPLETED]) >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await scheduled.aclose()
    done = [r for r in reversed(runs) if r.status is RunStatus.COMPLETED]
    assert [r.kind for r in done[:2]] == [RunKind.FULL, RunKind.INCREMENTAL]
    assert {(str(r.scope.first), str(r.scope.last)) for r in done} == {("2026-09", "2026-11")}
    assert {r.requested_by for r in done} == {"opsgraph (schedule)"}
    assert done[0].stats["new"] == 5 and "new" not in done[1].stats
