"""Hybrid migration: a second ERP configured as the shadow (the finance stack being
replaced) takes every posting the ERP takes, and reconciling the ERP with it proves they
agree before the cut-over, or says where they do not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from connectors.commands import PostInvoice
from connectors.models import ExceptionKind, SystemName
from connectors.money import Money
from connectors.sandbox import erp
from connectors.sandbox.config import SandboxConfig
from gateway.data.services import Services
from gateway.demo import link_customers
from gateway.errors import BadUserInput
from gateway.ownership import OwnershipMap
from gateway.reconcile.book import ExceptionFilter
from gateway.reconcile.engine import RunKind, RunStatus
from gateway.reconcile.scope import Period, Scope
from gateway.storage.migrate import upgrade
from tests.connectors.conftest import running_sandbox
from tests.world import SECRET, Sandboxes, sandboxes

QUARTER = Period(2026, 9), Period(2026, 11)
SHADOW = Scope(*QUARTER, source=SystemName.ERP, target=SystemName.ERP_SHADOW)


@pytest.fixture
def boxes() -> Iterator[Sandboxes]:
    with sandboxes() as running:
        yield running


@pytest.fixture
def shadow(boxes: Sandboxes) -> Iterator[str]:
    """The old ERP: a NetSuite of its own, migrated from the same ledger."""
    config = SandboxConfig(secret=SECRET)
    with running_sandbox(erp.create_app, boxes.world.slice(SystemName.ERP), config) as (url, _):
        yield url


@pytest.fixture
def linked_pg(boxes: Sandboxes, postgres_database: str) -> str:
    upgrade(postgres_database)
    asyncio.run(link_customers(postgres_database, boxes.world))
    return postgres_database


@pytest.fixture
async def services(boxes: Sandboxes, shadow: str, linked_pg: str) -> AsyncIterator[Services]:
    settings = boxes.settings(
        linked_pg,
        connector={"timeout_s": 5},
        erp_shadow={"base_url": shadow, "secret": SECRET, "timeout_s": 5},
    )
    built = Services.build(settings, OwnershipMap.load(settings.ownership_file))
    yield built
    await built.aclose()


def repost(boxes: Sandboxes, cents: int = 0) -> PostInvoice:
    """A posting of the invoice the seed left unposted (``cents`` off in tax)."""
    (missing,) = [d for d in boxes.world.discrepancies if d.kind == "missing_posting"]
    customer = next(c for c in boxes.world.customers if c.id == missing.customer_id)
    currency = customer.currency
    return PostInvoice(
        customer_id=customer.external_ids[SystemName.ERP],
        amount=Money(10000, currency),
        tax=Money(cents, currency),
        subsidiary=customer.legal_entity,
        tran_date=QUARTER[1].start,
        external_id=missing.invoice_id,
    )


async def test_the_erp_and_its_shadow_agree_and_a_write_reaches_both(
    boxes: Sandboxes, services: Services
) -> None:
    migrated = await services.reconciler.run(SHADOW, "controller@example.com")
    assert migrated.status is RunStatus.COMPLETED, migrated.error
    assert migrated.stats["source"] == migrated.stats["target"] > 0
    assert "kinds" not in migrated.stats  # the same ledger: nothing differs

    # A governed write goes to the ERP and to its shadow, under one key.
    await services.writes.apply(repost(boxes), "repost-1")
    after = await services.reconciler.run(SHADOW, "controller@example.com")
    assert "kinds" not in after.stats
    assert after.stats["source"] == migrated.stats["source"] + 1


async def test_what_the_shadow_lacks_or_posts_differently_is_an_exception(
    boxes: Sandboxes, services: Services
) -> None:
    # Written to the ERP alone (not through the gateway): the shadow never hears of it.
    primary = services.registry.get(SystemName.ERP)
    posted = await primary.write(repost(boxes), "direct-1")
    run = await services.reconciler.run(SHADOW, "controller@example.com")
    page = await services.book.page(ExceptionFilter(), None, 10, None)
    (only,) = page.exceptions
    assert (only.kind, only.source, only.target, only.key) == (
        ExceptionKind.MISSING_IN_TARGET, SystemName.ERP, SystemName.ERP_SHADOW,
        repost(boxes).external_id,
    )  # fmt: skip
    assert run.stats["kinds"] == {"missing_in_target": 1}
    # Billing against the ERP is a ledger of its own: this run touched none of its exceptions.
    billing = await services.reconciler.run(Scope(*QUARTER), "controller@example.com")
    assert billing.status is RunStatus.COMPLETED and billing.stats["autoResolved"] == 0
    kept = await services.book.get(only.id, None)
    assert (kept.status.value, kept.last_run_id) == ("open", run.id)
    assert posted.id

    # The shadow takes it, with the tax wrong.
    shadow = services.registry.get(SystemName.ERP_SHADOW)
    await shadow.write(repost(boxes, cents=1), "direct-2")
    again = await services.reconciler.run(SHADOW, "controller@example.com")
    assert again.stats["kinds"] == {"tax_mismatch": 1} and again.stats["autoResolved"] == 1


def test_only_billing_with_the_erp_and_the_erp_with_its_shadow_are_compared() -> None:
    with pytest.raises(BadUserInput) as refused:
        Scope(*QUARTER, source=SystemName.BILLING, target=SystemName.ERP_SHADOW)
    assert refused.value.message == (
        "billing is not reconciled with erp_shadow: billing with erp, erp with erp_shadow are"
    )


async def test_a_shadow_is_compared_by_full_runs_only(services: Services) -> None:
    with pytest.raises(BadUserInput) as refused:
        await services.reconciler.start(SHADOW, "ops", RunKind.INCREMENTAL)
    assert refused.value.message == "an ERP is compared with its shadow by full runs only"
