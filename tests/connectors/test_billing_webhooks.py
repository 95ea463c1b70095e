"""Stripe webhooks: the sandbox's signed deliveries, signature verification, and the mapping
from event types to changed records."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.billing import BillingConnector
from connectors.billing.errors import WebhookSignatureInvalid
from connectors.billing.webhooks import to_changes, verify
from connectors.errors import WebhookRejected
from connectors.models import ChangeEvent, ObjectKind, SystemName
from tests.connectors import billing_helpers
from tests.connectors.billing_helpers import (
    NEW_CUSTOMER,
    WEBHOOK_SECRET,
    Receiver,
)

K = ObjectKind


receiver, fresh, billing = billing_helpers.receiver, billing_helpers.fresh, billing_helpers.billing


def _sign(body: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    stamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


async def test_the_sandbox_delivers_a_signed_event_for_each_write(
    billing: BillingConnector, receiver: Receiver
) -> None:
    written = await billing.write(NEW_CUSTOMER, "webhook-1")
    body, signature = receiver.delivery_of(written.id)
    event = verify(body, signature, WEBHOOK_SECRET)
    assert (event["type"], event["data"]["object"]["id"]) == ("customer.created", written.id)
    assert event["request"]["idempotency_key"] == "webhook-1"
    assert to_changes(event) == [ChangeEvent(
        system=SystemName.BILLING, kind=K.CUSTOMER, id=written.id, type="created",
        occurred_at=datetime.fromtimestamp(event["created"], UTC))]  # fmt: skip


EVENT = json.dumps({"id": "evt_1", "object": "event", "type": "invoice.paid", "created": 1790000000,
                    "data": {"object": {"id": "in_1", "object": "invoice"}}}).encode()  # fmt: skip


def test_a_valid_signature_is_accepted() -> None:
    assert verify(EVENT, _sign(EVENT), WEBHOOK_SECRET)["id"] == "evt_1"


@pytest.mark.parametrize(
    ("body", "signature"),
    [
        (EVENT.replace(b"in_1", b"in_2"), _sign(EVENT)),
        (EVENT, _sign(EVENT, secret="whsec_other")),
        (EVENT, "t=1,v0=abc"),
        (EVENT, ""),
    ],
    ids=["tampered-body", "wrong-secret", "no-v1", "missing"],
)
def test_a_bad_signature_is_rejected(body: bytes, signature: str) -> None:
    with pytest.raises(WebhookSignatureInvalid) as refused:
        verify(body, signature, WEBHOOK_SECRET)
    assert refused.value.code == "WEBHOOK_SIGNATURE_INVALID"


def test_a_signature_older_than_the_tolerance_is_stale() -> None:
    with pytest.raises(WebhookRejected) as refused:
        verify(EVENT, _sign(EVENT, at=int(time.time()) - 301), WEBHOOK_SECRET)
    assert (refused.value.code, refused.value.message) == (
        "WEBHOOK_TIMESTAMP_STALE", "billing webhook timestamp is older than 300s"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("body", "why"),
    [(b"not json", "its body is not JSON"), (b'{"object": "invoice"}', "its body is not an Event")],
)
def test_a_signed_body_that_is_not_an_event_is_malformed(body: bytes, why: str) -> None:
    with pytest.raises(WebhookRejected) as refused:
        verify(body, _sign(body), WEBHOOK_SECRET)
    assert (refused.value.code, refused.value.message) == (
        "WEBHOOK_MALFORMED",
        f"billing webhook: {why}",
    )


@pytest.mark.parametrize(
    ("type_", "obj", "expected"),
    [
        ("invoice.paid", {"id": "in_1"}, (K.INVOICE, "in_1", "updated")),
        ("customer.subscription.deleted", {"id": "sub_1"}, (K.SUBSCRIPTION, "sub_1", "deleted")),
        ("payment_intent.created", {"id": "pi_1"}, (K.PAYMENT, "pi_1", "created")),
        ("credit_note.created", {"id": "cn_1", "invoice": "in_9"}, (K.INVOICE, "in_9", "updated")),
        ("customer.tax_id.created", {"id": "txi_1"}, None),
        ("charge.refunded", {"id": "ch_1"}, None),
    ],
)
def test_event_types_map_to_changed_records(
    type_: str, obj: dict[str, Any], expected: tuple[Any, ...] | None
) -> None:
    changes = to_changes({"type": type_, "created": 1790000000, "data": {"object": obj}})
    assert [(c.kind, c.id, c.type) for c in changes] == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("type_", "obj", "parent"),
    [
        ("customer.subscription.updated", {"id": "sub_1", "customer": "cus_1"}, "cus_1"),
        (
            "invoice.paid",
            {"id": "in_1", "customer": {"id": "cus_2", "object": "customer"}},
            "cus_2",
        ),
        ("credit_note.created", {"id": "cn_1", "invoice": "in_9", "customer": "cus_3"}, "cus_3"),
        ("customer.updated", {"id": "cus_1"}, None),  # a customer is in no customer's list
        ("invoice.paid", {"id": "in_1"}, None),
    ],
)
def test_a_change_names_the_customer_whose_lists_hold_it(
    type_: str, obj: dict[str, Any], parent: str | None
) -> None:
    [change] = to_changes({"type": type_, "created": 1790000000, "data": {"object": obj}})
    assert change.parent == parent
