"""The Stripe sandbox driven by Stripe's own SDK (``stripe.StripeClient``, synchronous, over
real HTTP) through the calls a Stripe integration makes: what the SDK sends, the sandbox
applies, and what the sandbox answers, the SDK reads, errors included."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import stripe

from connectors.models import CustomerRecord, Invoice, Subscription
from connectors.sandbox import fleet
from connectors.sandbox.billing import create_app
from tests.connectors.billing_helpers import (
    SECRET,
    SEEDED,
    WEBHOOK_SECRET,
    Receiver,
    webhook_sandbox,
)
from tests.connectors.conftest import running_sandbox

ACME = next(r for r in SEEDED if isinstance(r, CustomerRecord))  # Acme Logistics, in USD
ACME_OPEN = next(r for r in SEEDED if isinstance(r, Invoice) and r.customer_id == ACME.id
                 and r.status == "open")  # fmt: skip
ACME_SUB = next(r for r in SEEDED if isinstance(r, Subscription) and r.customer_id == ACME.id)
SEEDED_CUSTOMERS = sorted(r.id for r in SEEDED if isinstance(r, CustomerRecord))
REFINALIZED = "This invoice is already finalized, you can't re-finalize a non-draft invoice."


@pytest.fixture
def sandbox() -> Iterator[tuple[str, httpx.Client]]:
    """A seeded sandbox of the test's own: its URL and admin client."""
    with running_sandbox(create_app, SEEDED) as running:
        yield running


@contextmanager
def _client(url: str, key: str = SECRET) -> Iterator[stripe.StripeClient]:
    """The SDK as an integration sets it up, but for the sandbox's URL and no retries."""
    http = stripe.RequestsClient()
    try:
        yield stripe.StripeClient(
            key, base_addresses={"api": url}, http_client=http, max_network_retries=0
        )
    finally:
        http.close()


@pytest.fixture
def client(sandbox: tuple[str, httpx.Client]) -> Iterator[stripe.StripeClient]:
    with _client(sandbox[0]) as sdk:
        yield sdk


def _requests(admin: httpx.Client) -> dict[str, int]:
    counted: dict[str, int] = fleet.stats(admin)["requests"]
    return counted


def _draft(client: stripe.StripeClient, amount: int) -> Any:
    """A draft invoice for ACME billing one item of ``amount`` cents."""
    client.v1.invoice_items.create({"customer": ACME.id, "amount": amount, "currency": "usd"})
    return client.v1.invoices.create(
        {"customer": ACME.id, "currency": "usd", "pending_invoice_items_behavior": "include"}
    )


def _finalized_draft(client: stripe.StripeClient, amount: int) -> tuple[Any, Any]:
    draft = _draft(client, amount)
    return draft, client.v1.invoices.finalize_invoice(draft.id)


# customers


def test_a_customer_is_created_retrieved_and_updated(client: stripe.StripeClient) -> None:
    made = client.v1.customers.create(
        {
            "name": "Contract Co",
            "email": "ap@contract.example",
            "metadata": {"tier": "gold", "region": "eu"},
        }  # fmt: skip
    )
    assert client.v1.customers.retrieve(made.id).to_dict() == made.to_dict()
    updated = client.v1.customers.update(
        made.id, {"name": "Contract Company", "metadata": {"tier": "", "region": "us"}}
    )
    assert (updated.id, updated.name, updated.email, updated.metadata.to_dict()) == (
        made.id, "Contract Company", "ap@contract.example", {"region": "us"})  # fmt: skip
    assert client.v1.customers.retrieve(made.id).to_dict() == updated.to_dict()


def test_customers_list_by_created_and_page_through_auto_paging(
    client: stripe.StripeClient, sandbox: tuple[str, httpx.Client]
) -> None:
    seeded_at = client.v1.customers.retrieve(ACME.id).created
    made = client.v1.customers.create({"name": "Later Co"})
    newer = client.v1.customers.list({"created": {"gt": seeded_at}})
    assert [c.id for c in newer.data] == [made.id]
    fleet.reset_stats(sandbox[1])
    paged = client.v1.customers.list({"created": {"lte": seeded_at}, "limit": 3})
    assert sorted(c.id for c in paged.auto_paging_iter()) == SEEDED_CUSTOMERS
    assert _requests(sandbox[1]) == {"GET /v1/customers": 3}  # 8 customers, 3 a page
    exact = client.v1.customers.list({"created": seeded_at, "limit": 100})
    assert sorted(c.id for c in exact.data) == SEEDED_CUSTOMERS


def test_customer_search_pages_through_its_results(client: stripe.StripeClient) -> None:
    found = client.v1.customers.search({"query": "name~'health' OR name~'logistics'", "limit": 2})
    assert (found.object, len(found.data), found.has_more) == ("search_result", 2, True)
    assert sorted(c.name for c in found.auto_paging_iter()) == [
        "Acme Logistics", "Hooli Logistics", "Vandelay Health", "Wayne Health"]  # fmt: skip
    by_ref = client.v1.customers.search({"query": "metadata['opsgraph_id']:'cust_0001'"})
    by_email = client.v1.customers.search({"query": "email:'BILLING@ACME1.EXAMPLE'"})
    assert [c.id for c in by_ref.data] == [c.id for c in by_email.data] == [ACME.id]


# the catalog and subscriptions


def test_prices_and_plans_list_the_catalog(client: stripe.StripeClient) -> None:
    prices = client.v1.prices.list(
        {"product": "prod_growth", "currency": "eur", "expand": ["data.product"]}
    )
    assert [(p.id, p.unit_amount, p.product.name) for p in prices.data] == [
        ("price_growth_eur", 18500, "Growth")]  # fmt: skip
    plans = client.v1.plans.list({"product": "prod_growth", "active": True, "limit": 2})
    assert sorted((p.id, p.amount, p.currency) for p in plans.auto_paging_iter()) == [
        ("price_growth_eur", 18500, "eur"), ("price_growth_jpy", 29000, "jpy"),
        ("price_growth_kwd", 61000, "kwd"), ("price_growth_usd", 19900, "usd")]  # fmt: skip
    plan = client.v1.plans.retrieve("price_growth_usd")
    assert (plan.object, plan.interval, plan.product) == ("plan", "month", "prod_growth")


def test_subscriptions_list_by_customer_status_and_created(client: stripe.StripeClient) -> None:
    mine = client.v1.subscriptions.list({"customer": ACME.id, "status": "active"})
    items = [(s.id, s["items"].data[0].price.id, s["items"].data[0].quantity) for s in mine.data]
    assert items == [(ACME_SUB.id, ACME_SUB.plan_id, ACME_SUB.quantity)]
    started = int(ACME_SUB.current_period_start.timestamp())
    assert client.v1.subscriptions.list({"created": {"lt": started}}).data == []
    assert len(client.v1.subscriptions.list({"created": {"gte": started}, "limit": 100}).data) == 8
    assert client.v1.subscriptions.list({"status": "ended"}).data == []


# invoices


def test_an_invoice_is_drafted_finalized_listed_and_searched(client: stripe.StripeClient) -> None:
    draft, opened = _finalized_draft(client, 12000)
    prefix = client.v1.customers.retrieve(ACME.id).invoice_prefix
    assert (draft.status, draft.number, draft.total) == ("draft", None, 12000)
    assert (opened.id, opened.status, opened.number, opened.amount_due) == (
        draft.id, "open", f"{prefix}-0001", 12000)  # fmt: skip
    assert client.v1.invoices.retrieve(draft.id).to_dict() == opened.to_dict()
    listed = client.v1.invoices.list(
        {"customer": ACME.id, "status": "open", "created": {"gte": draft.created}}
    )
    assert [i.id for i in listed.data] == [draft.id]
    found = client.v1.invoices.search({"query": f"customer:'{ACME.id}' AND status:'open'"})
    assert sorted(i.id for i in found.data) == sorted([draft.id, ACME_OPEN.id])
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.invoices.finalize_invoice(draft.id)
    assert (again.value.http_status, again.value.user_message) == (400, REFINALIZED)


def test_a_credit_note_lowers_what_an_open_invoice_asks_for(client: stripe.StripeClient) -> None:
    note = client.v1.credit_notes.create(
        {"invoice": ACME_OPEN.id, "amount": 1000, "reason": "order_change", "memo": "SLA credit"}
    )
    assert (note.object, note.amount, note.type, note.reason, note.memo) == (
        "credit_note", 1000, "pre_payment", "order_change", "SLA credit")  # fmt: skip
    assert [n.id for n in client.v1.credit_notes.list({"invoice": ACME_OPEN.id}).data] == [note.id]
    after = client.v1.invoices.retrieve(ACME_OPEN.id)
    assert (after.amount_due, after.pre_payment_credit_notes_amount) == (
        ACME_OPEN.total.amount_minor - 1000, 1000)  # fmt: skip


def test_a_balance_credit_is_applied_to_the_next_invoice(client: stripe.StripeClient) -> None:
    transactions = client.v1.customers.balance_transactions
    credit = transactions.create(
        ACME.id, {"amount": -2500, "currency": "usd", "description": "Goodwill"}
    )
    assert (credit.object, credit.amount, credit.ending_balance, credit.type) == (
        "customer_balance_transaction", -2500, -2500, "adjustment")  # fmt: skip
    assert transactions.retrieve(ACME.id, credit.id).to_dict() == credit.to_dict()
    assert client.v1.customers.retrieve(ACME.id).balance == -2500
    draft, opened = _finalized_draft(client, 10000)
    assert (opened.status, opened.amount_due) == ("open", 7500)
    assert (opened.starting_balance, opened.ending_balance) == (-2500, 0)
    paged = transactions.list(ACME.id, {"limit": 1}).auto_paging_iter()
    assert [(t.type, t.amount, t.invoice, t.ending_balance) for t in paged] == [
        ("applied_to_invoice", 2500, draft.id, 0), ("adjustment", -2500, None, -2500)]  # fmt: skip
    assert client.v1.customers.retrieve(ACME.id).balance == 0


# events and webhooks


def test_events_list_the_writes_with_what_they_changed(client: stripe.StripeClient) -> None:
    made = client.v1.customers.create({"name": "Evented"})
    client.v1.customers.update(made.id, {"email": "ops@evented.example"})
    client.v1.invoice_items.create({"customer": made.id, "amount": 100, "currency": "usd"})
    events = client.v1.events.list(
        {"types": ["customer.created", "customer.updated"], "created": {"gte": made.created}}
    )
    assert [(e.type, e.data.object.id) for e in events.data] == [
        ("customer.updated", made.id), ("customer.created", made.id)]  # fmt: skip
    assert events.data[0].data.previous_attributes.to_dict() == {"email": None}
    assert [e.type for e in client.v1.events.list({"type": "invoiceitem.*"}).data] == [
        "invoiceitem.created"]  # fmt: skip


def test_an_update_is_delivered_signed_for_the_sdk_to_verify() -> None:
    receiver = Receiver()
    try:
        with webhook_sandbox(receiver) as (url, _):
            with _client(url) as client:
                client.v1.customers.update(ACME.id, {"email": "ops@acme.example"})
            body, signature = receiver.delivery_of(ACME.id)
    finally:
        receiver.running.stop()
    event = stripe.Webhook.construct_event(body, signature, WEBHOOK_SECRET)
    assert (event.type, event.data.object.email, event.data.previous_attributes.email) == (
        "customer.updated", "ops@acme.example", "billing@acme1.example")  # fmt: skip


# idempotency and errors


def test_an_idempotent_post_replays_its_first_answer(client: stripe.StripeClient) -> None:
    first = client.v1.customers.create({"name": "Once Co"}, {"idempotency_key": "once-1"})
    again = client.v1.customers.create({"name": "Once Co"}, {"idempotency_key": "once-1"})
    assert again.to_dict() == first.to_dict()
    assert first.last_response.headers.get("Idempotent-Replayed") is None
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert [c.id for c in client.v1.customers.search({"query": "name:'Once Co'"}).data] == [
        first.id]  # fmt: skip
    draft = _draft(client, 500)
    opened = client.v1.invoices.finalize_invoice(draft.id, None, {"idempotency_key": "fin-1"})
    replayed = client.v1.invoices.finalize_invoice(draft.id, None, {"idempotency_key": "fin-1"})
    assert (replayed.to_dict(), replayed.last_response.headers["Idempotent-Replayed"]) == (
        opened.to_dict(), "true")  # fmt: skip
    with pytest.raises(stripe.InvalidRequestError) as again:  # a new key finalizes anew
        client.v1.invoices.finalize_invoice(draft.id, None, {"idempotency_key": "fin-2"})
    assert again.value.user_message == REFINALIZED


def test_an_unknown_parameter_is_the_sdks_invalid_request_error(
    client: stripe.StripeClient,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as listed:
        client.v1.customers.list({"colour": "red"})  # type: ignore[typeddict-unknown-key]
    with pytest.raises(stripe.InvalidRequestError) as updated:
        client.v1.customers.update(ACME.id, {"address": {"city": "Oslo"}})
    for refused, param in ((listed.value, "colour"), (updated.value, "address")):
        assert (refused.http_status, refused.code, refused.param, refused.user_message) == (
            400, "parameter_unknown", param, f"Received unknown parameter: {param}")  # fmt: skip


def test_a_wrong_key_is_the_sdks_authentication_error(sandbox: tuple[str, httpx.Client]) -> None:
    with _client(sandbox[0], key="sk_test_51Hwrongkey1234567890") as client:
        with pytest.raises(stripe.AuthenticationError) as refused:
            client.v1.customers.list()
    assert (refused.value.http_status, refused.value.user_message) == (
        401, "Invalid API Key provided: sk_test_*****************7890")  # fmt: skip
