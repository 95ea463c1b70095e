"""Stripe objects (as plain dicts, ``StripeObject.to_dict()``) to canonical records.

The readers accept both the current API shapes and the older ones that ``localstripe``
and accounts pinned to old API versions still serve:

- a subscription's period lives on its items since 2025-03-31 (``current_period_*`` on
  ``items.data[0]``), on the subscription before;
- an invoice names its subscription in ``parent.subscription_details`` now, in
  ``subscription`` before; its tax is the sum of ``total_taxes`` now, ``tax`` before;
- a PaymentIntent no longer carries ``invoice``: integrations record it in metadata;
- the catalog is Prices (``unit_amount``, ``recurring.interval``) or legacy Plans
  (``amount``, ``interval``); either way entitlements come from the product's metadata.

Opsgraph keeps its own facts about a customer in reserved metadata keys (``METADATA_*``);
they are lifted into canonical fields and left out of ``CustomerRecord.metadata``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from connectors.errors import UpstreamError
from connectors.models import (
    UNBOOKED,
    Booked,
    CustomerRecord,
    Invoice,
    InvoiceStatus,
    ObjectKind,
    Payment,
    PaymentStatus,
    Plan,
    PlanInterval,
    Record,
    Subscription,
    SubscriptionStatus,
    SystemName,
)
from connectors.money import Money, exponent

METADATA_REF = "opsgraph_id"
METADATA_CURRENCY = "opsgraph_currency"  # Stripe sets customer.currency only on first bill
METADATA_LEGAL_ENTITY = "opsgraph_legal_entity"
METADATA_INVOICE = "invoice"  # on a PaymentIntent: the invoice it pays

Obj = Mapping[str, Any]
BILLING = SystemName.BILLING


def ref_id(value: Any) -> str | None:
    """The id of an expandable field: a bare id, or the expanded object."""
    if isinstance(value, Mapping):
        return str(value["id"])
    return None if value is None else str(value)


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(int(timestamp), UTC)


def _at_or_none(timestamp: int | None) -> datetime | None:
    return None if timestamp is None else _at(timestamp)


def unix_seconds(value: str) -> int:
    """An ISO date (midnight) or date and time, UTC unless it says otherwise, as the Unix
    second Stripe's ``created`` bounds take: rounded up, so that ``gte`` and ``lt`` on whole
    seconds keep what the moment itself would. ValueError says what it takes."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("an ISO date or date and time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return math.ceil(moment.timestamp())


def _money(amount: int | None, currency: str) -> Money:
    return Money(int(amount or 0), currency.upper())


def customer(obj: Obj) -> CustomerRecord:
    metadata = dict(obj.get("metadata") or {})
    ref = metadata.pop(METADATA_REF, None)
    intended = metadata.pop(METADATA_CURRENCY, None)
    legal_entity = metadata.pop(METADATA_LEGAL_ENTITY, None)
    currency = _first(obj.get("currency"), intended)
    return CustomerRecord(
        system=BILLING,
        id=obj["id"],
        name=obj.get("name") or "",
        ref=ref,
        email=obj.get("email"),
        currency=currency.upper() if currency else None,
        legal_entity=legal_entity,
        metadata=metadata,
    )


def plan(obj: Obj) -> Plan:
    product = obj.get("product")
    product = product if isinstance(product, Mapping) else {}
    meta = product.get("metadata") or {}
    features = tuple(f.strip() for f in (meta.get("features") or "").split(",") if f.strip())
    if obj.get("object") == "plan":
        amount, interval = obj.get("amount"), obj.get("interval")
    else:
        amount, interval = obj.get("unit_amount"), (obj.get("recurring") or {}).get("interval")
    return Plan(
        system=BILLING,
        id=obj["id"],
        name=product.get("name") or obj.get("nickname") or obj["id"],
        price=_money(amount, obj["currency"]),
        interval=PlanInterval(interval or "one_time"),
        features=features,
        support_tier=meta.get("support_tier") or "",
        sla_hours=int(meta.get("sla_hours") or 0),
    )


def subscription(obj: Obj) -> Subscription:
    items = (obj.get("items") or {}).get("data") or []
    item: Obj = items[0] if items else {}
    price = _first(item.get("price"), item.get("plan"), obj.get("plan"))
    return Subscription(
        system=BILLING,
        id=obj["id"],
        customer_id=ref_id(obj["customer"]) or "",
        plan_id=ref_id(price) or "",
        quantity=int(_first(item.get("quantity"), obj.get("quantity"), 1)),
        status=SubscriptionStatus(obj["status"]),
        current_period_start=_at(
            _first(item.get("current_period_start"), obj.get("current_period_start"))
        ),
        current_period_end=_at(
            _first(item.get("current_period_end"), obj.get("current_period_end"))
        ),
    )


def invoice(obj: Obj) -> Invoice:
    currency = obj["currency"]
    tax = obj.get("tax")
    if tax is None:
        tax = sum(int(t.get("amount") or 0) for t in obj.get("total_taxes") or [])
    details = (obj.get("parent") or {}).get("subscription_details") or {}
    return Invoice(
        system=BILLING,
        id=obj["id"],
        customer_id=ref_id(obj["customer"]) or "",
        number=obj.get("number"),
        status=InvoiceStatus(obj["status"]),
        subtotal=_money(obj.get("subtotal"), currency),
        tax=_money(tax, currency),
        total=_money(obj.get("total"), currency),
        issued_at=_at(obj["created"]),
        period_start=_at_or_none(obj.get("period_start")),
        period_end=_at_or_none(obj.get("period_end")),
        subscription_id=ref_id(_first(details.get("subscription"), obj.get("subscription"))),
        finalized_at=_at_or_none((obj.get("status_transitions") or {}).get("finalized_at")),
    )


_STATUSES = frozenset(InvoiceStatus)  # a StrEnum's members are their values as keys
_EPOCH = date(1970, 1, 1).toordinal()


def _day(timestamp: int) -> date:
    """The UTC day of a Unix time: what ``_at(timestamp).date()`` is, at a fraction of the
    cost (a million invoices are read per reconciliation)."""
    return date.fromordinal(_EPOCH + int(timestamp) // 86400)


def booked_invoice(obj: Obj) -> Booked:
    """What ``Booked.of_invoice(invoice(obj))`` is, without the model: reconciliation
    reads a million invoices, and the model was half of the CPU of reading one. (It reads
    only the fields it needs: an object ``invoice`` refuses over another field passes.)"""
    created, currency = obj["created"], obj["currency"].upper()
    exponent(currency)  # refused as Money refuses it
    status = obj["status"]
    if status not in _STATUSES:
        raise ValueError(f"{status!r} is not an invoice status")
    tax = obj.get("tax")
    if tax is None:
        tax = sum(int(t.get("amount") or 0) for t in obj.get("total_taxes") or [])
    finalized = (obj.get("status_transitions") or {}).get("finalized_at")
    return Booked(
        obj["id"], ref_id(obj["customer"]) or "", None, int(obj.get("subtotal") or 0),
        int(tax or 0), currency, _day(created if finalized is None else finalized),
        None, status not in UNBOOKED,
    )  # fmt: skip


def booked_invoices(objs: Iterable[Obj]) -> list[Booked]:
    """``booked_invoice`` of each; one it cannot read is the system's error, not ours."""
    try:
        return [booked_invoice(obj) for obj in objs]
    except (KeyError, TypeError, ValueError, OverflowError) as exc:  # MoneyError too
        raise UpstreamError(
            f"{BILLING} returned an invoice opsgraph cannot read",
            system=BILLING.value,
            internal=repr(exc),
        ) from exc


def payment(obj: Obj) -> Payment:
    metadata = obj.get("metadata") or {}
    return Payment(
        system=BILLING,
        id=obj["id"],
        customer_id=ref_id(obj.get("customer")) or "",
        invoice_id=ref_id(_first(obj.get("invoice"), metadata.get(METADATA_INVOICE))),
        amount=_money(obj.get("amount"), obj["currency"]),
        status=PaymentStatus(obj["status"]),
        created_at=_at(obj["created"]),
    )


READERS: dict[ObjectKind, Callable[[Obj], Record]] = {
    ObjectKind.CUSTOMER: customer,
    ObjectKind.PLAN: plan,
    ObjectKind.SUBSCRIPTION: subscription,
    ObjectKind.INVOICE: invoice,
    ObjectKind.PAYMENT: payment,
}
