"""Event routing on SQLite and PostgreSQL, over real HTTP to the four sandboxes: a stored
event starts one workflow run per matching route (``event_routes.toml``), whose steps reach
the systems that own what they change; the same event routed again, or replayed, does
nothing twice; a step its owner refuses leaves a dead letter that an operator retries."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from cloudevents.http import CloudEvent
from sqlalchemy import func, select

from connectors.models import (
    Account,
    Case,
    CasePriority,
    CreditStatus,
    ObjectKind,
    Plan,
    Posting,
    SystemName,
)
from connectors.sandbox.seed import SeedCustomer
from connectors.sandbox.support import documents as zendesk_docs
from gateway.data.reads import settled
from gateway.data.services import Services
from gateway.demo import link_customers
from gateway.errors import ConfigurationError
from gateway.events.actions import ACTIONS
from gateway.events.canonical import canonical
from gateway.events.routing import Routes, run_id
from gateway.ownership import OwnershipMap
from gateway.storage.database import sessions
from gateway.storage.tables import CreditRequestRow, InboundEvent, WorkflowRun
from gateway.workflows.engine import RunStatus, StepStatus
from tests.gateway.events.vendor_events import usage_alert
from tests.world import SECRET, Sandboxes, sandboxes

BILLING, ERP, CRM, SUPPORT = SystemName.BILLING, SystemName.ERP, SystemName.CRM, SystemName.SUPPORT
ZENDESK_AGENT = ("agent@example.com/token", SECRET)


@pytest.fixture(scope="module")
def boxes() -> Iterator[Sandboxes]:
    """Sandboxes of this module's own: it posts invoices, opens tickets, tags cases."""
    with sandboxes() as running:
        yield running


@pytest.fixture
async def services(boxes: Sandboxes, migrated_url: str) -> AsyncIterator[Services]:
    await link_customers(migrated_url, boxes.world)
    settings = boxes.settings(migrated_url, connector={"timeout_s": 5})
    built = Services.build(settings, OwnershipMap.load(settings.ownership_file))
    yield built
    boxes.reset()
    await built.aclose()


def _plans(boxes: Sandboxes) -> dict[str, Plan]:
    return {p.id: p for p in boxes.world.slice(BILLING) if isinstance(p, Plan)}


async def stored(services: Services, system: SystemName, event: dict[str, Any]) -> CloudEvent:
    """The event stored as a proved delivery is, and moved out of the outbox (routed here:
    no Redis)."""
    cloud = canonical(system, event)
    assert not (await services.intake.store(system, cloud)).duplicate
    assert await services.relay.relay_once() == 1
    return cloud


async def runs_of(services: Services, subject: str) -> list[WorkflowRun]:
    async with sessions(services.engine)() as session:
        query = select(WorkflowRun).where(WorkflowRun.subject_id == subject)
        return list((await session.scalars(query.order_by(WorkflowRun.workflow))).all())


def customer_in(boxes: Sandboxes, currency: str, legal_entity: str) -> SeedCustomer:
    return next(
        c
        for c in boxes.world.customers
        if c.currency == currency and c.legal_entity == legal_entity and CRM in c.external_ids
    )


async def test_a_usage_alert_bills_the_overage_tells_the_crm_and_the_support_desk(
    boxes: Sandboxes, services: Services
) -> None:
    customer = customer_in(boxes, "USD", "Opsgraph Inc.")
    erp, crm, org = (customer.external_ids[s] for s in (ERP, CRM, SUPPORT))
    (before,) = await services.reader.records(ObjectKind.ACCOUNT, [crm], Account)
    score = settled(before).value.health_score

    event = await stored(services, BILLING, usage_alert(customer, value=1_337))

    subject = f"billing:{event['id']}"
    (run,) = await runs_of(services, subject)
    assert (run.workflow, run.status) == ("route:usage_over_threshold", RunStatus.SUCCEEDED)
    assert run.id == run_id("/systems/billing", event["id"], "usage_over_threshold")
    view = await services.workflows.get(run.id)
    assert view is not None
    steps = {s.name: s for s in view.steps}
    assert [s.name for s in view.steps] == [
        "enrich_usage",
        "erp_post_usage",
        "crm_usage_health",
        "support_entitlement_changed",
    ]
    assert all(s.status is StepStatus.SUCCEEDED and s.attempts == 1 for s in view.steps)
    # 337 units over the threshold at 0.02 USD: 6.74 USD, and 8.25% tax: 0.556 -> 0.56.
    enriched = steps["enrich_usage"].output
    assert enriched is not None
    assert {k: enriched[k] for k in ("units", "currency", "amountMinor", "taxMinor")} == {
        "units": 337,
        "currency": "USD",
        "amountMinor": 674,
        "taxMinor": 56,
    }
    assert enriched["customer"] == customer.id and enriched["taxPercent"] == "8.25"
    assert enriched["healthScore"] == min(100, score + 5)

    (read,) = await services.reader.related(ObjectKind.POSTING, [erp], Posting)
    alert = event.get_data()["data"]["object"]["alert"]["id"]
    (posting,) = [p for p in settled(read).value if p.external_id == f"usage:{alert}:{customer.id}"]
    assert (posting.amount.amount_minor, posting.tax.amount_minor) == (674, 56)
    assert (posting.subsidiary, posting.tran_date.isoformat()) == ("Opsgraph Inc.", "2026-12-07")
    assert steps["erp_post_usage"].output == {
        "system": "erp",
        "reference": posting.id,
        "amountMinor": 674,
    }
    (after,) = await services.reader.records(ObjectKind.ACCOUNT, [crm], Account)
    assert settled(after).value.health_score == min(100, score + 5)

    ticket = steps["support_entitlement_changed"].output
    assert ticket is not None
    (cases,) = await services.reader.related(ObjectKind.CASE, [org], Case)
    (told,) = [c for c in settled(cases).value if c.id == ticket["reference"]]
    assert told.subject == "Entitlement changed: usage over the threshold of mtr_api_calls"
    assert told.priority is CasePriority.LOW

    # Routed again (a redelivered stream entry, a replay): nothing starts, nothing is sent.
    boxes.reset_stats()
    routed = await services.router.route(event)
    assert (routed.started, routed.retried, routed.unchanged) == ((), (), (run.id,))
    assert boxes.totals() == {BILLING: 0, ERP: 0, CRM: 0, SUPPORT: 0}
    assert len(await runs_of(services, subject)) == 1


async def test_a_breached_sla_opens_one_provisional_credit_for_finance(
    boxes: Sandboxes, services: Services
) -> None:
    plans = _plans(boxes)
    customer = next(
        c
        for c in boxes.world.customers
        if c.currency == "USD"
        and c.legal_entity == "Opsgraph Inc."
        and plans[f"price_{c.plan}_usd"].sla_hours
        if any(
            isinstance(x, Case)
            and x.organization_id == c.external_ids[SUPPORT]
            and x.status.value in ("new", "open")
            and not x.sla_breached
            for x in boxes.world.slice(SUPPORT)
        )
    )
    org = customer.external_ids[SUPPORT]
    case = next(
        x
        for x in boxes.world.slice(SUPPORT)
        if isinstance(x, Case) and x.organization_id == org and x.status.value in ("new", "open")
    )
    # The desk's SLA automation tags the case, and Zendesk announces the tags' change.
    url = f"{boxes.urls[SUPPORT]}/api/v2/tickets/{case.id}.json"
    async with httpx.AsyncClient(auth=ZENDESK_AGENT) as zendesk:
        ticket = (await zendesk.get(url)).json()["ticket"]
        tags = [*ticket["tags"], zendesk_docs.BREACH_TAG]
        put = await zendesk.put(url, json={"ticket": {"tags": tags}})
    assert put.status_code == 200, put.text
    change = {"tags_added": [zendesk_docs.BREACH_TAG], "tags_removed": []}
    tagged = zendesk_docs.event(
        str(uuid.uuid4()), "ticket.tags_changed", put.json()["ticket"], change
    )

    event = await stored(services, SUPPORT, tagged)

    (run,) = await runs_of(services, f"support:{event['id']}")
    assert (run.workflow, run.status) == ("route:sla_breached", RunStatus.SUCCEEDED)
    view = await services.workflows.get(run.id)
    assert view is not None
    output = view.steps[0].output
    assert output is not None and output["opened"] is True
    async with sessions(services.engine)() as session:
        credits = (await session.scalars(select(CreditRequestRow))).all()
    (credit,) = credits
    # 50.00 USD is not below Opsgraph Inc.'s auto-approval (50.00): finance decides.
    assert (credit.id, credit.case_id, credit.customer_id) == (
        output["credit"],
        case.id,
        customer.id,
    )
    assert (credit.amount_minor, credit.currency) == (5000, "USD")
    assert (credit.status, credit.requested_by) == (
        CreditStatus.REQUESTED.value,
        "opsgraph:routing",
    )
    assert output["status"] == "requested"

    # A replay of the hour: the run exists and succeeded, so nothing more is opened.
    now = datetime.now(UTC)
    replayed = await services.router.replay(now - timedelta(hours=1), now + timedelta(seconds=1))
    assert (replayed.events, replayed.started, replayed.retried, replayed.unchanged) == (1, 0, 0, 1)
    async with sessions(services.engine)() as session:
        assert await session.scalar(select(func.count()).select_from(CreditRequestRow)) == 1


async def test_a_plan_change_refreshes_entitlements_and_logs_it_in_the_crm(
    boxes: Sandboxes, services: Services
) -> None:
    customer = customer_in(boxes, "EUR", "Opsgraph B.V.")
    billing = customer.external_ids[BILLING]
    async with httpx.AsyncClient(auth=(SECRET, "")) as stripe:
        listed = await stripe.get(
            f"{boxes.urls[BILLING]}/v1/subscriptions", params={"customer": billing}
        )
    subscriptions = listed.json()["data"]
    subscription = subscriptions[0]
    plan = subscription["items"]["data"][0]["price"]["id"]
    updated = {
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "created": int(datetime.now(UTC).timestamp()),
        "type": "customer.subscription.updated",
        "data": {"object": subscription, "previous_attributes": {"items": subscription["items"]}},
    }
    metadata_only = {
        **updated,
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "data": {"object": subscription, "previous_attributes": {"metadata": {}}},
    }
    changed = await stored(services, BILLING, updated)
    untouched = await stored(services, BILLING, metadata_only)

    assert await runs_of(services, f"billing:{untouched['id']}") == []  # no plan changed
    (run,) = await runs_of(services, f"billing:{changed['id']}")
    assert (run.workflow, run.status) == ("route:plan_changed", RunStatus.SUCCEEDED)
    view = await services.workflows.get(run.id)
    assert view is not None
    refreshed, logged = (s.output for s in view.steps)
    assert refreshed is not None and logged is not None
    features = sorted(_plans(boxes)[plan].features)
    assert refreshed == {
        "customer": customer.id,
        "crm": customer.external_ids[CRM],
        "plans": [plan],
        "features": features,
    }
    assert logged["system"] == "crm"
    async with sessions(services.engine)() as session:
        routed = await session.scalar(
            select(func.count())
            .select_from(InboundEvent)
            .where(InboundEvent.routed_at.is_not(None))
        )
    assert routed == 2  # both events are routed, though one matched no route


async def test_a_step_its_owner_refuses_is_a_dead_letter_until_an_operator_retries_it(
    boxes: Sandboxes, services: Services
) -> None:
    customer = customer_in(boxes, "USD", "Opsgraph Inc.")
    boxes.faults(ERP, error_next=5, error_status=400)
    event = await stored(services, BILLING, usage_alert(customer, value=1_100))

    (run,) = await runs_of(services, f"billing:{event['id']}")
    assert run.status == RunStatus.FAILED
    view = await services.workflows.get(run.id)
    assert view is not None
    assert [s.status for s in view.steps] == [
        StepStatus.SUCCEEDED,
        StepStatus.FAILED,
        StepStatus.PENDING,
        StepStatus.PENDING,
    ]
    assert view.error_code == "UPSTREAM_REJECTED"
    boxes.faults(ERP, error_next=0)

    again = await services.workflows.retry(run.id)
    assert again.status is RunStatus.SUCCEEDED
    assert [s.attempts for s in again.steps] == [1, 1, 1, 1]
    amount = again.steps[1].output
    assert amount is not None and amount["amountMinor"] == 200  # 100 units at 0.02 USD


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            '[[route]]\nname = "x"\non = ["a"]\nactions = ["post_everything"]',
            "route 'x': no action 'post_everything' (there are: crm_plan_changed,",
        ),
        (
            '[[route]]\nname = "x"\non = ["a"]\nactions = ["crm_plan_changed"]\n'
            "params = { colour = 1 }",
            "route 'x': no action of the route reads params.colour",
        ),
        (
            '[[route]]\nname = "x"\non = ["a"]\nactions = ["refresh_entitlements"]\n'
            'when = [{ path = "a", equals = "b", present = true }]',
            "route.0.when.0: Value error, a condition has exactly one of equals, one_of, "
            "contains, present",
        ),
        (
            '[[route]]\nname = "x"\non = ["a"]\nactions = ["provisional_credit"]\n'
            'params = { credit = { USD = "1.005" }, reason = "r" }',
            "route 'x': params.credit: Value error, credit USD: 1.005 has more decimal places "
            "than USD allows (2)",
        ),
        (
            '[[route]]\nname = "x"\non = ["a"]\nactions = ["refresh_entitlements"]\n'
            '[[route]]\nname = "x"\non = ["b"]\nactions = ["refresh_entitlements"]',
            "two routes have one name",
        ),
    ],
)
def test_a_routes_file_that_cannot_work_stops_the_gateway(text: str, error: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Routes.parse(text, ACTIONS, source="routes.toml")
    assert refused.value.message.startswith("routes.toml: ")
    assert error in refused.value.message


def test_the_shipped_routes_load() -> None:
    from gateway.settings import DEFAULT_EVENT_ROUTES

    routes = Routes.load(DEFAULT_EVENT_ROUTES, ACTIONS)
    assert [(r.name, r.spec.actions) for r in routes.routes] == [
        (
            "usage_over_threshold",
            ["enrich_usage", "erp_post_usage", "crm_usage_health", "support_entitlement_changed"],
        ),
        ("plan_changed", ["refresh_entitlements", "crm_plan_changed"]),
        ("subscription_cancelled", ["refresh_entitlements", "crm_plan_changed"]),
        ("sla_breached", ["provisional_credit"]),
    ]
    unit_price = routes.routes[0].steps[0][1]
    assert unit_price is not None and Decimal(unit_price.unit_price["USD"]) == Decimal("0.02")  # type: ignore[attr-defined]
