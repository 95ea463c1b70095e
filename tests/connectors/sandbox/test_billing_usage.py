"""The Stripe sandbox's usage-based billing driven by Stripe's own SDK: meters, meter events
and usage threshold alerts, and the signed ``billing.alert.triggered`` webhook that crossing
an alert's threshold delivers, once per customer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe

from connectors.models import CustomerRecord
from tests.connectors.billing_helpers import (
    SECRET,
    SEEDED,
    WEBHOOK_SECRET,
    Receiver,
    webhook_sandbox,
)

ACME, GLOBEX = [r.id for r in SEEDED if isinstance(r, CustomerRecord)][:2]
EVENT_NAME = "api_requests"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.running.stop()


@pytest.fixture
def sandbox(receiver: Receiver) -> Iterator[tuple[str, httpx.Client]]:
    """A seeded sandbox of the test's own, delivering its webhooks to ``receiver``."""
    with webhook_sandbox(receiver) as running:
        yield running


@pytest.fixture
def client(sandbox: tuple[str, httpx.Client]) -> Iterator[stripe.StripeClient]:
    """The SDK as an integration sets it up, but for the sandbox's URL and no retries."""
    http = stripe.RequestsClient()
    try:
        yield stripe.StripeClient(
            SECRET, base_addresses={"api": sandbox[0]}, http_client=http, max_network_retries=0
        )
    finally:
        http.close()


def _meter(
    client: stripe.StripeClient, formula: str = "sum", event_name: str = EVENT_NAME, **more: Any
) -> Any:
    return client.v1.billing.meters.create(
        {"display_name": "API requests", "event_name": event_name,
         "default_aggregation": {"formula": formula}, **more}
    )  # fmt: skip


def _alert(client: stripe.StripeClient, meter: Any, gte: int, customer: str | None = None) -> Any:
    threshold: dict[str, Any] = {"gte": gte, "meter": meter.id, "recurrence": "one_time"}
    if customer is not None:
        threshold["filters"] = [{"type": "customer", "customer": customer}]
    return client.v1.billing.alerts.create(
        {"alert_type": "usage_threshold", "title": f"{gte} requests", "usage_threshold": threshold}
    )


def _report(client: stripe.StripeClient, customer: str, value: int, **more: Any) -> Any:
    payload = {"stripe_customer_id": customer, "value": str(value)}
    return client.v1.billing.meter_events.create(
        {"event_name": EVENT_NAME, "payload": payload, **more}
    )


def _triggered(client: stripe.StripeClient, receiver: Receiver) -> list[dict[str, Any]]:
    """The ``billing.alert.triggered`` Events delivered, each verified with the SDK, once
    every Event the sandbox recorded has been delivered (one delivery each)."""
    recorded = len(client.v1.events.list({"limit": 100}).data)
    deadline = time.monotonic() + 5
    while len(receiver.received) < recorded and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(receiver.received) == recorded
    for body, signature in receiver.received:
        stripe.Webhook.construct_event(body, signature, WEBHOOK_SECRET)  # raises unless signed
    events = [json.loads(body) for body, _ in receiver.received]
    return [e for e in events if e["type"] == "billing.alert.triggered"]


def _refusal(refused: pytest.ExceptionInfo[stripe.InvalidRequestError]) -> tuple[Any, ...]:
    error = refused.value
    assert error.error is not None
    return (error.http_status, error.error.type, error.code, error.param, error.user_message)


# meters, meter events, alerts


def test_a_meter_is_created_retrieved_and_listed(client: stripe.StripeClient) -> None:
    made = _meter(client, customer_mapping={"event_payload_key": "account", "type": "by_id"},
                  value_settings={"event_payload_key": "calls"})  # fmt: skip
    assert made.to_dict() == {
        "id": made.id, "object": "billing.meter", "created": made.created,
        "customer_mapping": {"event_payload_key": "account", "type": "by_id"},
        "default_aggregation": {"formula": "sum"}, "display_name": "API requests",
        "event_name": EVENT_NAME, "event_time_window": None, "livemode": False,
        "status": "active", "status_transitions": {"deactivated_at": None},
        "updated": made.created, "value_settings": {"event_payload_key": "calls"},
    }  # fmt: skip
    assert made.id.startswith("mtr_")
    assert client.v1.billing.meters.retrieve(made.id).to_dict() == made.to_dict()
    counted = _meter(client, "count", "seats")
    assert counted.customer_mapping.event_payload_key == "stripe_customer_id"
    assert counted.value_settings.event_payload_key == "value"
    assert [m.id for m in client.v1.billing.meters.list().data] == [counted.id, made.id]
    assert client.v1.billing.meters.list({"status": "inactive"}).data == []
    created = client.v1.events.list({"type": "billing.meter.created"}).data
    assert [e.data.object.id for e in created] == [counted.id, made.id]


def test_a_meter_event_is_answered_as_stripe_records_it(client: stripe.StripeClient) -> None:
    _meter(client)
    at = int(time.time()) - 3600
    recorded = _report(client, ACME, 25, identifier="req-0001", timestamp=at)
    assert recorded.to_dict() == {
        "object": "billing.meter_event", "created": recorded.created, "event_name": EVENT_NAME,
        "identifier": "req-0001", "livemode": False,
        "payload": {"stripe_customer_id": ACME, "value": "25"}, "timestamp": at,
    }  # fmt: skip
    generated = _report(client, ACME, 5)
    assert generated.identifier.startswith("mev_")
    assert generated.timestamp == generated.created


def test_an_alert_is_created_retrieved_and_listed_by_meter(client: stripe.StripeClient) -> None:
    meter = _meter(client)
    other = _meter(client, event_name="seats")
    mine = _alert(client, meter, 100, customer=ACME)
    _alert(client, other, 5)
    assert mine.to_dict() == {
        "id": mine.id, "object": "billing.alert", "alert_type": "usage_threshold",
        "livemode": False, "status": "active", "title": "100 requests",
        "usage_threshold": {"filters": [{"customer": ACME, "type": "customer"}], "gte": 100,
                            "meter": meter.id, "recurrence": "one_time"},
    }  # fmt: skip
    assert mine.id.startswith("alrt_")
    assert client.v1.billing.alerts.retrieve(mine.id).to_dict() == mine.to_dict()
    listed = client.v1.billing.alerts.list({"meter": meter.id})
    assert [a.id for a in listed.data] == [mine.id]
    expanded = client.v1.billing.alerts.retrieve(mine.id, {"expand": ["usage_threshold.meter"]})
    assert expanded.usage_threshold.meter.to_dict() == meter.to_dict()


# billing.alert.triggered


def test_crossing_the_threshold_delivers_one_signed_alert_triggered(
    client: stripe.StripeClient, receiver: Receiver
) -> None:
    alert = _alert(client, _meter(client), 100)
    before = int(time.time())
    _report(client, ACME, 60)
    _report(client, ACME, 40)
    [event] = _triggered(client, receiver)
    assert (event["object"], event["livemode"]) == ("event", False)
    assert before <= event["data"]["object"]["created"] <= int(time.time())
    assert event["data"] == {"object": {
        "object": "billing.alert_triggered", "alert": alert.to_dict(),
        "created": event["data"]["object"]["created"], "customer": ACME, "livemode": False,
        "value": 100}}  # fmt: skip
    listed = client.v1.events.list({"type": "billing.alert.triggered"}).data
    assert [e.id for e in listed] == [event["id"]]


def test_an_alert_triggers_once_per_customer(
    client: stripe.StripeClient, receiver: Receiver
) -> None:
    alert = _alert(client, _meter(client), 100)
    _report(client, ACME, 120)
    _report(client, ACME, 30)  # ACME is past the threshold already
    _report(client, GLOBEX, 99)
    _report(client, GLOBEX, 2)
    delivered = _triggered(client, receiver)
    assert [(e["data"]["object"]["customer"], e["data"]["object"]["value"],
             e["data"]["object"]["alert"]["id"]) for e in delivered] == [
        (ACME, 120, alert.id), (GLOBEX, 101, alert.id)]  # fmt: skip


def test_usage_below_the_threshold_delivers_none(
    client: stripe.StripeClient, receiver: Receiver
) -> None:
    _alert(client, _meter(client), 100)
    _report(client, ACME, 60)
    _report(client, ACME, 39)
    _report(client, GLOBEX, 99)
    assert _triggered(client, receiver) == []


def test_an_alert_filtered_to_a_customer_watches_only_that_customer(
    client: stripe.StripeClient, receiver: Receiver
) -> None:
    alert = _alert(client, _meter(client), 50, customer=GLOBEX)
    _report(client, ACME, 500)
    _report(client, GLOBEX, 50)
    [event] = _triggered(client, receiver)
    triggered = event["data"]["object"]
    assert (triggered["customer"], triggered["value"], triggered["alert"]["id"]) == (
        GLOBEX, 50, alert.id)  # fmt: skip


@pytest.mark.parametrize(
    ("formula", "gte", "values", "value"),
    [("count", 3, [7, 7, 7], 3), ("last", 50, [30, 20, 55], 55)],  # summed, 50 would be reached
    ids=["count", "last"],
)
def test_a_meter_aggregates_by_its_formula(
    client: stripe.StripeClient, receiver: Receiver, formula: str, gte: int, values: list[int],
    value: int,
) -> None:  # fmt: skip
    alert = _alert(client, _meter(client, formula), gte)
    for reported in values[:-1]:
        _report(client, ACME, reported)
    assert _triggered(client, receiver) == []
    _report(client, ACME, values[-1])
    [event] = _triggered(client, receiver)
    assert (event["data"]["object"]["value"], event["data"]["object"]["alert"]["id"]) == (
        value, alert.id)  # fmt: skip


def test_a_meter_reads_usage_under_its_own_payload_keys(
    client: stripe.StripeClient, receiver: Receiver
) -> None:
    meter = _meter(client, customer_mapping={"event_payload_key": "account", "type": "by_id"},
                   value_settings={"event_payload_key": "calls"})  # fmt: skip
    alert = _alert(client, meter, 5)
    client.v1.billing.meter_events.create(
        {"event_name": EVENT_NAME, "payload": {"account": GLOBEX, "calls": "5"}}
    )
    [event] = _triggered(client, receiver)
    triggered = event["data"]["object"]
    assert (triggered["customer"], triggered["value"], triggered["alert"]["id"]) == (
        GLOBEX, 5, alert.id)  # fmt: skip


def test_a_refused_duplicate_is_not_counted(
    client: stripe.StripeClient, receiver: Receiver
) -> None:
    _alert(client, _meter(client), 100)
    _report(client, ACME, 60, identifier="req-1")
    with pytest.raises(stripe.InvalidRequestError) as refused:
        _report(client, ACME, 60, identifier="req-1")
    assert _refusal(refused) == (
        400, "invalid_request_error", None, "identifier",
        "A meter event with identifier 'req-1' already exists.")  # fmt: skip
    assert _triggered(client, receiver) == []
    _report(client, ACME, 40, identifier="req-2")
    assert [e["data"]["object"]["value"] for e in _triggered(client, receiver)] == [100]


# errors


@pytest.mark.parametrize(
    ("payload", "more", "refusal"),
    [
        ({"stripe_customer_id": ACME, "value": "1"}, {"event_name": "nope"},
         (None, "event_name", "No active meter was found for event_name 'nope'.")),
        ({"stripe_customer_id": "cus_nope", "value": "1"}, {},
         ("resource_missing", "payload[stripe_customer_id]", "No such customer: 'cus_nope'")),
        ({"value": "1"}, {},
         ("parameter_missing", "payload[stripe_customer_id]",
          "Missing required param: payload[stripe_customer_id].")),
        ({"stripe_customer_id": ACME, "value": "1.5"}, {},
         (None, "payload[value]", "Invalid integer: 1.5")),
        ({"stripe_customer_id": ACME, "value": "1"}, {"timestamp": 1_000_000_000},
         (None, "timestamp",
          "Timestamp must be within the past 35 days and at most 5 minutes in the future.")),
    ],
    ids=["unknown-event-name", "unknown-customer", "no-customer", "not-an-integer", "too-old"],
)  # fmt: skip
def test_a_meter_event_is_refused_in_stripes_words(
    client: stripe.StripeClient, payload: dict[str, str], more: dict[str, Any],
    refusal: tuple[Any, ...],
) -> None:  # fmt: skip
    _meter(client)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.billing.meter_events.create(
            {"event_name": EVENT_NAME, "payload": payload, **more}
        )
    assert _refusal(refused) == (400, "invalid_request_error", *refusal)


@pytest.mark.parametrize(
    ("threshold", "refusal"),
    [
        ({"gte": 10, "meter": "mtr_nope", "recurrence": "one_time"},
         ("resource_missing", "usage_threshold[meter]", "No such billing.meter: 'mtr_nope'")),
        ({"gte": 0, "recurrence": "one_time"},
         (None, "usage_threshold[gte]", "Invalid positive integer: 0")),
        ({"gte": 10, "recurrence": "monthly"},
         (None, "usage_threshold[recurrence]",
          "Invalid usage_threshold[recurrence]: must be one_time")),
        ({"gte": 10, "recurrence": "one_time", "filters": [
            {"type": "customer", "customer": ACME}, {"type": "customer", "customer": GLOBEX}]},
         (None, "usage_threshold[filters]",
          "You can only specify up to one filter at this time.")),
        ({"gte": 10, "recurrence": "one_time",
          "filters": [{"type": "customer", "customer": "cus_nope"}]},
         ("resource_missing", "usage_threshold[filters][0][customer]",
          "No such customer: 'cus_nope'")),
    ],
    ids=["unknown-meter", "zero", "recurrence", "two-filters", "unknown-customer"],
)  # fmt: skip
def test_an_alert_is_refused_in_stripes_words(
    client: stripe.StripeClient, threshold: dict[str, Any], refusal: tuple[Any, ...]
) -> None:
    meter = _meter(client)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.billing.alerts.create(
            {"alert_type": "usage_threshold", "title": "Refused",
             "usage_threshold": {"meter": meter.id, **threshold}}
        )  # fmt: skip
    assert _refusal(refused) == (400, "invalid_request_error", *refusal)


def test_a_meter_is_refused_in_stripes_words(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as formula:
        _meter(client, "max")
    _meter(client)
    with pytest.raises(stripe.InvalidRequestError) as again:
        _meter(client)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.billing.meters.retrieve("mtr_nope")
    assert _refusal(formula) == (
        400, "invalid_request_error", None, "default_aggregation[formula]",
        "Invalid default_aggregation[formula]: must be one of count, last, or sum")  # fmt: skip
    assert _refusal(again) == (
        400, "invalid_request_error", None, "event_name",
        f"An active meter with event_name '{EVENT_NAME}' already exists.")  # fmt: skip
    assert _refusal(missing) == (404, "invalid_request_error", "resource_missing", "id",
                                 "No such billing.meter: 'mtr_nope'")  # fmt: skip
