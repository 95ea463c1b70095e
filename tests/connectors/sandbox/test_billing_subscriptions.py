"""The sandbox's subscription writes, driven by Stripe's own SDK over real HTTP: a price
changed (and prorated), a cancellation planned and one made now, and Stripe's refusals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import stripe

from connectors.models import CustomerRecord, Subscription
from connectors.sandbox.billing import create_app
from tests.connectors.billing_helpers import SECRET, SEEDED
from tests.connectors.conftest import running_sandbox

ACME = next(r for r in SEEDED if isinstance(r, CustomerRecord))  # Acme Logistics, in USD
SUB = next(r for r in SEEDED if isinstance(r, Subscription) and r.customer_id == ACME.id)
ITEM = "si_" + SUB.id.removeprefix("sub_")  # Starter in USD ($49), 4 seats
HALFWAY = int((SUB.current_period_start + timedelta(days=15)).timestamp())  # of 30 days
CANCELED = "A canceled subscription can only update its cancellation_details and metadata."


@pytest.fixture
def client() -> Iterator[stripe.StripeClient]:
    """The SDK as an integration sets it up, against a seeded sandbox of the test's own."""
    with running_sandbox(create_app, SEEDED) as (url, _):
        http = stripe.RequestsClient()
        try:
            yield stripe.StripeClient(
                SECRET, base_addresses={"api": url}, http_client=http, max_network_retries=0
            )
        finally:
            http.close()


def _to_growth(client: stripe.StripeClient, behavior: str, key: str | None = None) -> Any:
    params: dict[str, Any] = {
        "items": [{"id": ITEM, "price": "price_growth_usd"}],
        "proration_behavior": behavior,
        "proration_date": HALFWAY,
    }
    return client.v1.subscriptions.update(SUB.id, params, {"idempotency_key": key} if key else {})  # type: ignore[arg-type]


def _pending(client: stripe.StripeClient) -> list[tuple[int, str, bool]]:
    listed = client.v1.invoice_items.list({"customer": ACME.id, "pending": True})
    return sorted((i.amount, i.description, i.proration) for i in listed.data)


def test_a_price_change_keeps_the_item_and_replays_by_key(client: stripe.StripeClient) -> None:
    changed = _to_growth(client, "none", key="move-1")
    again = _to_growth(client, "none", key="move-1")
    [item] = changed["items"].data
    assert (item.id, item.price.id, item.quantity) == (ITEM, "price_growth_usd", 4)
    assert again.to_dict() == changed.to_dict()
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert client.v1.subscriptions.retrieve(SUB.id).to_dict() == changed.to_dict()
    assert _pending(client) == []  # proration_behavior=none


def test_a_price_change_prorates_the_rest_of_the_period(client: stripe.StripeClient) -> None:
    _to_growth(client, "create_prorations")
    assert _pending(client) == [
        (-9800, "Unused time on 4 × Starter after 16 Nov 2026", True),
        (39800, "Remaining time on 4 × Growth after 16 Nov 2026", True),
    ]


def test_always_invoice_bills_the_prorations_at_once(client: stripe.StripeClient) -> None:
    _to_growth(client, "always_invoice")
    [invoice] = client.v1.invoices.list({"subscription": SUB.id, "created": {"gt": HALFWAY}}).data
    assert (invoice.status, invoice.billing_reason, invoice.total, invoice.amount_due) == (
        "open", "subscription_update", 30000, 30000)  # fmt: skip
    assert sorted(line.amount for line in invoice.lines.data) == [-9800, 39800]
    assert _pending(client) == []


def test_cancelling_at_period_end_then_now(client: stripe.StripeClient) -> None:
    ending = client.v1.subscriptions.update(SUB.id, {"cancel_at_period_end": True})
    assert (ending.status, ending.cancel_at_period_end, ending.cancel_at) == (
        "active", True, int(SUB.current_period_end.timestamp()))  # fmt: skip
    ended = client.v1.subscriptions.cancel(SUB.id)
    assert (ended.status, ended.ended_at) == ("canceled", ended.canceled_at)
    assert client.v1.subscriptions.retrieve(SUB.id).status == "canceled"
    listed = client.v1.subscriptions.list({"customer": ACME.id})
    assert listed.data == []  # an ended subscription is listed only when asked for


def test_a_canceled_subscription_is_gone_for_delete_and_frozen_for_update(
    client: stripe.StripeClient,
) -> None:
    client.v1.subscriptions.cancel(SUB.id, None, {"idempotency_key": "end-1"})
    with pytest.raises(stripe.InvalidRequestError) as gone:  # DELETE replays by no key
        client.v1.subscriptions.cancel(SUB.id, None, {"idempotency_key": "end-1"})
    assert (gone.value.http_status, gone.value.code, gone.value.user_message) == (
        404, "resource_missing", f"No such subscription: '{SUB.id}'")  # fmt: skip
    with pytest.raises(stripe.InvalidRequestError) as frozen:
        _to_growth(client, "none")
    assert (frozen.value.http_status, frozen.value.user_message) == (400, CANCELED)
    noted = client.v1.subscriptions.update(SUB.id, {"metadata": {"reason": "churned"}})
    assert (noted.status, noted.metadata.to_dict()) == ("canceled", {"reason": "churned"})


@pytest.mark.parametrize(
    ("items", "status", "param", "message"),
    [
        ({"id": "si_missing", "price": "price_growth_usd"}, 400, "items[0][id]",
         "No such subscription_item: 'si_missing'"),
        ({"id": ITEM, "price": "price_missing"}, 400, "items[0][price]",
         "No such price: 'price_missing'"),
        ({"id": ITEM, "price": "price_growth_eur"}, 400, "items",
         "Currency and interval fields must match across all plans on this subscription. "
         "Found mismatch in currency field."),
        ({"price": "price_starter_usd"}, 400, "items",
         "Cannot add multiple subscription items with the same price: price_starter_usd"),
    ],
    ids=["unknown-item", "unknown-price", "other-currency", "same-price-twice"],
)  # fmt: skip
def test_a_change_stripe_would_refuse_is_refused_and_changes_nothing(
    client: stripe.StripeClient, items: dict[str, str], status: int, param: str, message: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.subscriptions.update(SUB.id, {"items": [items]})  # type: ignore[arg-type]
    assert (refused.value.http_status, refused.value.param, refused.value.user_message) == (
        status, param, message)  # fmt: skip
    [item] = client.v1.subscriptions.retrieve(SUB.id)["items"].data
    assert (item.price.id, client.v1.events.list().data) == (SUB.plan_id, [])


def test_cancel_takes_no_parameter_the_sandbox_does_not_apply(
    client: stripe.StripeClient,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.subscriptions.cancel(SUB.id, {"invoice_now": True})
    assert (refused.value.code, refused.value.param) == ("parameter_unknown", "invoice_now")
    assert client.v1.subscriptions.retrieve(SUB.id).status == "active"


def test_an_unknown_subscription_is_resource_missing(client: stripe.StripeClient) -> None:
    for send in (
        lambda: client.v1.subscriptions.update("sub_missing", {"cancel_at_period_end": True}),
        lambda: client.v1.subscriptions.cancel("sub_missing"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as missing:
            send()
        assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
