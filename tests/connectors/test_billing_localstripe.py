"""The billing connector against localstripe, a Stripe fake we did not write.

localstripe has customers, products, legacy plans, payment methods, subscriptions that bill
and pay at once (and change plan, through the legacy ``items[n][plan]`` and ``prorate``, or
cancel), invoices, PaymentIntents, list paging and signed webhooks. It has no
prices (so the connector runs with ``dialect=localstripe`` and reads the catalog from
/v1/plans), no credit notes, no idempotent replay, no ``ending_before`` or newest-first
event list (so no change feed), no ``customer`` filter on PaymentIntents, and no
``created`` filter on invoices (it answers ``created[gte]`` with a 500), so the issue window
filters are refused before sending. Our own sandbox covers those; see test_billing.py. The
last two tests need no server: one is that refusal, the other reads the older API shapes
localstripe (and an account pinned to an old version) sends.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.billing import BillingConnector, connect, wire
from connectors.billing.webhooks import to_changes, verify
from connectors.commands import (
    CancelSubscription,
    ChangeSubscriptionPlan,
    CreateCustomer,
    CreateInvoice,
    Proration,
)
from connectors.errors import UpstreamAuthError, UpstreamRejected
from connectors.models import (
    Booked,
    ConnectorConfig,
    CustomerRecord,
    Invoice,
    ObjectKind,
    Payment,
    Plan,
    Subscription,
    SystemName,
)
from connectors.money import Money
from tests.connectors.billing_helpers import Receiver

KEY = "sk_test_localstripe"  # localstripe takes any key that starts with sk_
WHSEC = "whsec_localstripe"
K = ObjectKind
GROWTH = {"name": "Growth", "metadata[features]": "api_access,sso,audit_log",
          "metadata[support_tier]": "priority", "metadata[sla_hours]": "24"}  # fmt: skip
STARTER = {"name": "Starter", "metadata[features]": "api_access",
           "metadata[support_tier]": "standard", "metadata[sla_hours]": "48"}  # fmt: skip


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"localstripe is required under CI: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def localstripe() -> Iterator[str]:
    exe = shutil.which("localstripe", path=str(Path(sys.executable).parent)) or shutil.which(
        "localstripe"
    )
    if exe is None:
        _unavailable("the localstripe console script is not installed")
    port = _free_port()
    process = subprocess.Popen(
        [str(exe), "--from-scratch", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    _unavailable(f"localstripe did not answer on port {port}")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class World:
    customers: list[dict[str, Any]]
    subscriptions: dict[str, dict[str, Any]]  # customer id -> raw subscription
    products: dict[str, str]  # plan id -> product id


@pytest.fixture(scope="module")
def world(localstripe: str) -> Iterator[World]:
    """Catalog, customers and paid subscriptions, made with plain form posts."""
    with httpx.Client(base_url=localstripe, headers={"Authorization": f"Bearer {KEY}"}) as api:

        def post(path: str, data: dict[str, Any]) -> dict[str, Any]:
            answer = api.post(path, data=data)
            assert answer.status_code == 200, answer.text
            body: dict[str, Any] = answer.json()
            return body

        products = {}
        for plan_id, product, amount in (
            ("price_growth_usd", GROWTH, 19900),
            ("price_starter_usd", STARTER, 4900),
        ):
            products[plan_id] = post("/v1/products", product)["id"]
            post("/v1/plans", {"id": plan_id, "amount": amount, "currency": "usd",
                               "interval": "month", "product": products[plan_id]})  # fmt: skip
        customers, subscriptions = [], {}
        plans = ("price_growth_usd", "price_starter_usd", None, "price_starter_usd", None)
        for n, plan in enumerate(plans):
            customer = post("/v1/customers", {"name": f"Local {n}", "email": f"ap{n}@local.example",
                                              "metadata[opsgraph_id]": f"cust_l{n}"})  # fmt: skip
            customers.append(customer)
            if plan is None:
                continue
            card = post("/v1/payment_methods", {
                "type": "card", "card[number]": "4242424242424242", "card[exp_month]": "12",
                "card[exp_year]": "2030", "card[cvc]": "123"})  # fmt: skip
            post(f"/v1/payment_methods/{card['id']}/attach", {"customer": customer["id"]})
            post(f"/v1/customers/{customer['id']}",
                 {"invoice_settings[default_payment_method]": card["id"]})  # fmt: skip
            subscriptions[customer["id"]] = post("/v1/subscriptions", {
                "customer": customer["id"], "items[0][plan]": plan,
                "items[0][quantity]": "3" if n == 0 else "1"})  # fmt: skip
        yield World(customers, subscriptions, products)


@pytest.fixture
async def billing(world: World, localstripe: str) -> AsyncIterator[BillingConnector]:
    config = ConnectorConfig(base_url=localstripe, secret=KEY, options={"dialect": "localstripe"})
    connector = connect(config)
    yield connector
    await connector.aclose()


def _at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


async def test_a_customer_written_through_the_connector_reads_back(
    billing: BillingConnector,
) -> None:
    command = CreateCustomer(name="Written Co", email="ap@written.example", ref="cust_w1")
    written = await billing.write(command, "localstripe-1")
    got = await billing.fetch_many(K.CUSTOMER, [written.id, "cus_missing"])
    assert got == [written.record, None]
    assert written.record == CustomerRecord(
        system=SystemName.BILLING, id=written.id, name="Written Co", ref="cust_w1",
        email="ap@written.example", currency="EUR")  # localstripe's default currency  # fmt: skip


async def test_plans_are_read_from_legacy_plans_with_product_entitlements(
    billing: BillingConnector, world: World
) -> None:
    growth = Plan(
        system=SystemName.BILLING, id="price_growth_usd", name="Growth",
        price=Money(19900, "USD"), interval="month", features=("api_access", "sso", "audit_log"),
        support_tier="priority", sla_hours=24)  # fmt: skip
    got = await billing.fetch_many(K.PLAN, ["price_growth_usd", "plan_missing"])
    assert got == [growth, None]
    listed = await billing.list_all(K.PLAN, limit=1)
    assert [p.id for p in listed] == ["price_growth_usd", "price_starter_usd"]


async def test_subscriptions_are_read_with_plan_quantity_and_period(
    billing: BillingConnector, world: World
) -> None:
    customer = world.customers[0]["id"]
    raw = world.subscriptions[customer]
    got = await billing.list_all(K.SUBSCRIPTION, filters={"customer": customer})
    assert got == [Subscription(
        system=SystemName.BILLING, id=raw["id"], customer_id=customer,
        plan_id="price_growth_usd", quantity=3, status="active",
        current_period_start=_at(raw["current_period_start"]),
        current_period_end=_at(raw["current_period_end"]))]  # fmt: skip


async def test_a_subscription_bills_a_paid_invoice_and_a_payment(
    billing: BillingConnector, world: World
) -> None:
    customer = world.customers[0]["id"]
    raw = world.subscriptions[customer]
    [invoice] = await billing.list_all(K.INVOICE, filters={"customer": customer})
    assert isinstance(invoice, Invoice)
    assert (invoice.status, invoice.subscription_id, invoice.number) == ("paid", raw["id"], None)
    assert (invoice.subtotal, invoice.tax, invoice.total) == (
        Money(59700, "USD"), Money(0, "USD"), Money(59700, "USD"))  # fmt: skip
    assert invoice.period_start == _at(raw["current_period_start"])
    payments = [p for p in await billing.list_all(K.PAYMENT) if p.invoice_id == invoice.id]
    assert [(p.customer_id, p.amount, p.status) for p in payments] == [
        (customer, Money(59700, "USD"), "succeeded")]  # fmt: skip
    assert isinstance(payments[0], Payment)


async def test_lists_page_with_a_small_limit(billing: BillingConnector, world: World) -> None:
    before = billing.calls
    got = await billing.list_all(K.CUSTOMER, limit=2)
    pages = billing.calls - before
    ids = [c.id for c in got]
    assert set(ids) >= {c["id"] for c in world.customers}
    assert len(ids) == len(set(ids))
    assert pages == math.ceil(len(ids) / 2)


async def test_fetch_related_groups_invoices_by_customer(
    billing: BillingConnector, world: World
) -> None:
    parents = [c["id"] for c in world.customers[:3]]
    groups = await billing.fetch_related(K.INVOICE, [*parents, "cus_unknown"])
    assert [len(g) for g in groups] == [1, 1, 0, 0]
    assert [g[0].customer_id for g in groups[:2]] == parents[:2]


async def test_localstripes_invoices_book_as_their_records(
    billing: BillingConnector, world: World
) -> None:
    listed = await billing.list_all(K.INVOICE, limit=100)
    before = billing.calls
    page = await billing.ledger_page(K.INVOICE, limit=100)
    assert (page.items, page.cursor) == ([Booked.of_invoice(i) for i in listed], None)
    assert billing.calls - before == 1
    assert listed, "the world bills invoices"


async def test_an_invoice_write_bills_a_pending_item(
    billing: BillingConnector, world: World
) -> None:
    # localstripe only invoices a customer with a subscription (404 otherwise) and puts the
    # subscription's next period on the invoice beside the pending item.
    customer = world.customers[3]["id"]
    command = CreateInvoice(customer=customer, amount=Money(2500, "USD"), description="Extra seats")
    result = await billing.write(command, "localstripe-invoice-1")
    assert isinstance(result.record, Invoice)
    assert (result.record.status, result.record.customer_id) == ("draft", customer)
    assert result.record.total == Money(4900 + 2500, "USD")
    assert await billing.fetch_many(K.INVOICE, [result.id]) == [result.record]


async def test_health_and_a_bad_key(billing: BillingConnector, localstripe: str) -> None:
    assert (await billing.health()).healthy is True
    bad = connect(ConnectorConfig(base_url=localstripe, secret="not-a-key"))
    try:
        with pytest.raises(UpstreamAuthError):
            await bad.list_page(K.CUSTOMER)
    finally:
        await bad.aclose()


async def test_a_plan_change_moves_the_subscription_to_the_plan(
    billing: BillingConnector, world: World
) -> None:
    raw = world.subscriptions[world.customers[1]["id"]]  # Starter
    command = ChangeSubscriptionPlan(subscription_id=raw["id"], plan_id="price_growth_usd")
    result = await billing.write(command, "localstripe-plan-1")
    assert isinstance(result.record, Subscription)
    assert (result.id, result.record.plan_id, result.record.quantity, result.record.status) == (
        raw["id"], "price_growth_usd", 1, "active")  # fmt: skip
    assert await billing.fetch_many(K.SUBSCRIPTION, [raw["id"]]) == [result.record]
    before = billing.calls
    with pytest.raises(UpstreamRejected, match="cannot invoice"):  # no always_invoice there
        await billing.write(replace(command, proration=Proration.ALWAYS_INVOICE), "local-2")
    assert billing.calls == before


async def test_a_subscription_is_cancelled_at_period_end_then_now(
    billing: BillingConnector, world: World, localstripe: str
) -> None:
    raw = world.subscriptions[world.customers[1]["id"]]
    later = CancelSubscription(subscription_id=raw["id"], at_period_end=True)
    ending = await billing.write(later, "localstripe-end-1")
    assert isinstance(ending.record, Subscription)
    assert ending.record.status == "active"
    async with httpx.AsyncClient(base_url=localstripe, auth=(KEY, "")) as api:
        got = (await api.get(f"/v1/subscriptions/{raw['id']}")).json()
    assert got["cancel_at_period_end"] is True
    now = CancelSubscription(subscription_id=raw["id"], at_period_end=False)
    ended = await billing.write(now, "localstripe-end-2")
    assert isinstance(ended.record, Subscription)
    assert (ended.created, ended.record.status) == (True, "canceled")
    assert await billing.fetch_many(K.SUBSCRIPTION, [raw["id"]]) == [ended.record]


def test_localstripe_webhooks_pass_our_verifier(localstripe: str) -> None:
    receiver = Receiver()
    try:
        with httpx.Client(base_url=localstripe, headers={"Authorization": f"Bearer {KEY}"}) as api:
            registered = api.post("/_config/webhooks/opsgraph", data={
                "url": receiver.url, "secret": WHSEC, "events[0]": "customer.created"})  # fmt: skip
            assert registered.status_code == 200
            customer = api.post("/v1/customers", data={"name": "Hooked"}).json()
        body, signature = receiver.delivery_of(customer["id"])  # sent after a 1 s pause
        event = verify(body, signature, WHSEC)
        assert (event["type"], event["data"]["object"]["id"]) == (
            "customer.created",
            customer["id"],
        )
        assert [(c.kind, c.id, c.type) for c in to_changes(event)] == [
            (K.CUSTOMER, customer["id"], "created")]  # fmt: skip
    finally:
        receiver.running.stop()


async def test_an_issue_window_is_refused_before_it_reaches_localstripe() -> None:
    options = {"dialect": "localstripe"}
    # Nothing listens there: nothing may be sent.
    connector = connect(ConnectorConfig(base_url="http://127.0.0.1:9", secret=KEY, options=options))
    try:
        with pytest.raises(UpstreamRejected) as refused:
            await connector.list_page(K.INVOICE, filters={"issued_from": "2026-10-01"})
    finally:
        await connector.aclose()
    assert refused.value.message == "billing (localstripe) cannot filter invoice by issue date"
    assert connector.calls == 0


# reading older API shapes (localstripe, accounts pinned to old versions)


def test_old_shapes_are_read_too() -> None:
    sub = wire.subscription({
        "id": "sub_1", "customer": "cus_1", "status": "active", "quantity": 2,
        "current_period_start": 1790000000, "current_period_end": 1792592000,
        "items": {"data": [{"plan": {"id": "plan_1"}, "quantity": 3}]}})  # fmt: skip
    assert (sub.plan_id, sub.quantity, sub.current_period_start) == (
        "plan_1", 3, datetime(2026, 9, 21, 14, 13, 20, tzinfo=UTC))  # fmt: skip
    inv = wire.invoice({
        "id": "in_1", "customer": "cus_1", "status": "paid", "currency": "eur", "subtotal": 100,
        "tax": 21, "total": 121, "created": 1790000000, "subscription": "sub_1",
        "total_taxes": [{"amount": 99}]})  # fmt: skip
    assert (inv.tax, inv.subscription_id) == (Money(21, "EUR"), "sub_1")
    pay = wire.payment({
        "id": "pi_1", "customer": None, "invoice": "in_1", "amount": 121, "currency": "eur",
        "status": "succeeded", "created": 1790000000, "metadata": {}})  # fmt: skip
    assert (pay.invoice_id, pay.customer_id) == ("in_1", "")
    plan = wire.plan({
        "id": "plan_1", "object": "plan", "amount": 900, "currency": "usd", "interval": "year",
        "product": {"name": "Pro",
                    "metadata": {"features": "sso, api", "sla_hours": "8"}}})  # fmt: skip
    assert plan == Plan(
        system=SystemName.BILLING, id="plan_1", name="Pro", price=Money(900, "USD"),
        interval="year", features=("sso", "api"), support_tier="", sla_hours=8)  # fmt: skip
