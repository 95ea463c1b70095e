"""Stripe webhooks: proving a delivery came from Stripe, and what it changed.

``verify`` checks ``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``
with the SDK's own verifier (constant-time compare, timestamp tolerance) and returns the
Event as a dict. ``to_changes`` turns an Event, from a webhook or from ``GET /v1/events``,
into canonical ``ChangeEvent``s; event types opsgraph does not model give none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import stripe

from connectors.billing.errors import SYSTEM, WebhookSignatureInvalid
from connectors.billing.wire import ref_id
from connectors.errors import WebhookRejected
from connectors.models import ChangeEvent, ChangeType, ObjectKind, SystemName

# Event type prefix -> the kind whose record changed. Longest prefix wins, so
# "customer.subscription." is a subscription, not a customer.
_KINDS: dict[str, ObjectKind] = {
    "customer.subscription.": ObjectKind.SUBSCRIPTION,
    "customer.": ObjectKind.CUSTOMER,
    "price.": ObjectKind.PLAN,
    "plan.": ObjectKind.PLAN,
    "invoice.": ObjectKind.INVOICE,
    "payment_intent.": ObjectKind.PAYMENT,
    # A credit note changes what its invoice still asks for; opsgraph has no credit-note
    # kind of its own, so it is reported as a change to the invoice.
    "credit_note.": ObjectKind.INVOICE,
}
# Of the "customer." events only these concern the customer record itself (not its
# sources, tax ids, discounts or cash balance).
_CUSTOMER_TYPES = frozenset({"customer.created", "customer.updated", "customer.deleted"})


def verify(payload: bytes, header: str, secret: str, tolerance: int = 300) -> dict[str, Any]:
    """The Event in ``payload`` once its signature checks out; raises ``WebhookRejected``
    when it does not: ``WebhookSignatureInvalid``, ``WEBHOOK_TIMESTAMP_STALE`` for a
    signature older than ``tolerance`` seconds, ``WEBHOOK_MALFORMED`` for a signed body that
    is not an Event."""
    try:
        stripe.WebhookSignature.verify_header(payload, header, secret, tolerance)
    except stripe.SignatureVerificationError as exc:
        if str(exc).startswith("Timestamp outside the tolerance zone"):
            raise WebhookRejected(
                f"{SYSTEM} webhook timestamp is older than {tolerance}s",
                system=SYSTEM,
                code="WEBHOOK_TIMESTAMP_STALE",
            ) from exc
        raise WebhookSignatureInvalid(
            f"{SYSTEM} webhook signature is invalid", system=SYSTEM, internal=str(exc)
        ) from exc
    try:
        event = json.loads(payload)
    except ValueError:
        raise _malformed("its body is not JSON") from None
    if not isinstance(event, dict) or event.get("object") != "event":
        raise _malformed("its body is not an Event")
    return event


def _malformed(why: str) -> WebhookRejected:
    return WebhookRejected(f"{SYSTEM} webhook: {why}", system=SYSTEM, code="WEBHOOK_MALFORMED")


def _kind(event_type: str) -> ObjectKind | None:
    for prefix in sorted(_KINDS, key=len, reverse=True):
        if event_type.startswith(prefix):
            kind = _KINDS[prefix]
            if kind is ObjectKind.CUSTOMER and event_type not in _CUSTOMER_TYPES:
                return None
            return kind
    return None


def to_changes(event: Mapping[str, Any]) -> list[ChangeEvent]:
    event_type = str(event.get("type") or "")
    kind = _kind(event_type)
    obj = (event.get("data") or {}).get("object") or {}
    if kind is None or not obj.get("id"):
        return []
    # The customer whose lists hold a subscription, an invoice, a payment or a credit note.
    parent = None if kind is ObjectKind.CUSTOMER else ref_id(obj.get("customer"))
    if event_type.startswith("credit_note."):
        target, change = ref_id(obj.get("invoice")), ChangeType.UPDATED
    else:
        target = str(obj["id"])
        verb = event_type.rsplit(".", 1)[-1]
        # paid, finalized, succeeded, ... all update the record
        change = ChangeType(verb) if verb in ("created", "deleted") else ChangeType.UPDATED
    if not target:
        return []
    return [
        ChangeEvent(
            system=SystemName.BILLING,
            kind=kind,
            id=target,
            occurred_at=datetime.fromtimestamp(int(event["created"]), UTC),
            type=change,
            parent=parent,
        )
    ]
