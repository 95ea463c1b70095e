"""Stripe wire documents: built from canonical records (seeding) or from a write, and the
Events that record the writes.

Shapes follow API version ``API_VERSION``: subscription periods on the items, an invoice's
subscription under ``parent.subscription_details`` and its tax in ``total_taxes``. A
PaymentIntent that pays an invoice names it in ``metadata.invoice`` (current Stripe no
longer puts ``invoice`` on the PaymentIntent). Opsgraph's own customer facts ride in
reserved ``opsgraph_*`` metadata keys. Each recurring price is stored a second time as a
``plan``, under the same id, as the legacy Plans API serves it.

This module does not share code with ``connectors.billing``: the sandbox is the connector's
opposite number, and a mapping bug shared by both would pass every test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from connectors.models import CustomerRecord, Invoice, Payment, Plan, Record, Subscription

API_VERSION = "2026-10-28.endive"
Doc = dict[str, Any]
Lookup = Callable[[str, str], Doc | None]  # (object name, id) -> stored document

PREFIXES = {
    "cus_": "customer",
    "prod_": "product",
    "price_": "price",
    "sub_": "subscription",
    "si_": "subscription_item",
    "in_": "invoice",
    "ii_": "invoiceitem",
    "pi_": "payment_intent",
    "cn_": "credit_note",
    "cbtxn_": "customer_balance_transaction",
    "evt_": "event",
}


def ts(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def customer(
    id_: str, created: int, *, name: str | None, email: str | None, currency: str | None,
    metadata: dict[str, str], description: str | None = None, phone: str | None = None,
) -> Doc:  # fmt: skip
    return {
        "id": id_, "object": "customer", "address": None, "balance": 0, "created": created,
        "currency": currency.lower() if currency else None, "default_source": None,
        "delinquent": False, "description": description, "discount": None, "email": email,
        "invoice_prefix": id_[-8:].upper(), "invoice_settings": {
            "custom_fields": None, "default_payment_method": None, "footer": None,
            "rendering_options": None},
        "livemode": False, "metadata": metadata, "name": name, "next_invoice_sequence": 1,
        "phone": phone, "preferred_locales": [], "shipping": None, "tax_exempt": "none",
        "test_clock": None,
    }  # fmt: skip


def product(id_: str, created: int, plan: Plan) -> Doc:
    metadata = {
        "features": ",".join(plan.features),
        "support_tier": plan.support_tier,
        "sla_hours": str(plan.sla_hours),
    }
    return {
        "id": id_, "object": "product", "active": True, "created": created,
        "default_price": None, "description": None, "images": [], "livemode": False,
        "marketing_features": [], "metadata": metadata, "name": plan.name,
        "package_dimensions": None, "shippable": None, "statement_descriptor": None,
        "tax_code": None, "type": "service", "unit_label": None, "updated": created, "url": None,
    }  # fmt: skip


def price(plan: Plan, product_id: str, created: int) -> Doc:
    return {
        "id": plan.id, "object": "price", "active": True, "billing_scheme": "per_unit",
        "created": created, "currency": plan.price.currency.lower(),
        "custom_unit_amount": None, "livemode": False, "lookup_key": None, "metadata": {},
        "nickname": None, "product": product_id,
        "recurring": {"interval": plan.interval, "interval_count": 1, "meter": None,
                      "trial_period_days": None, "usage_type": "licensed"},
        "tax_behavior": "exclusive", "tiers_mode": None, "transform_quantity": None,
        "type": "recurring", "unit_amount": plan.price.amount_minor,
        "unit_amount_decimal": str(plan.price.amount_minor),
    }  # fmt: skip


def plan(price_doc: Doc) -> Doc:
    """The legacy Plans API's view of a recurring price: the same object, under the
    price's id, as Stripe serves it."""
    recurring = price_doc["recurring"]
    return {
        "id": price_doc["id"], "object": "plan", "active": price_doc["active"],
        "amount": price_doc["unit_amount"], "amount_decimal": price_doc["unit_amount_decimal"],
        "billing_scheme": price_doc["billing_scheme"], "created": price_doc["created"],
        "currency": price_doc["currency"], "interval": recurring["interval"],
        "interval_count": recurring["interval_count"], "livemode": False,
        "metadata": price_doc["metadata"], "meter": recurring["meter"],
        "nickname": price_doc["nickname"], "product": price_doc["product"],
        "tiers_mode": price_doc["tiers_mode"], "transform_usage": None,
        "trial_period_days": recurring["trial_period_days"],
        "usage_type": recurring["usage_type"],
    }  # fmt: skip


def subscription(record: Subscription, price_doc: Doc) -> Doc:
    start, end = ts(record.current_period_start), ts(record.current_period_end)
    item: Doc = {
        "id": "si_" + record.id.removeprefix("sub_"), "object": "subscription_item",
        "created": start, "current_period_end": end, "current_period_start": start,
        "discounts": [], "metadata": {}, "price": price_doc, "quantity": record.quantity,
        "subscription": record.id, "tax_rates": [],
    }  # fmt: skip
    return {
        "id": record.id, "object": "subscription", "application": None,
        "billing_cycle_anchor": start, "cancel_at": None, "cancel_at_period_end": False,
        "canceled_at": None, "collection_method": "charge_automatically", "created": start,
        "currency": price_doc.get("currency"), "customer": record.customer_id,
        "default_payment_method": None, "description": None, "discounts": [],
        "ended_at": None, "items": {"object": "list", "data": [item], "has_more": False,
                                    "total_count": 1,
                                    "url": f"/v1/subscription_items?subscription={record.id}"},
        "latest_invoice": None, "livemode": False, "metadata": {}, "start_date": start,
        "status": record.status, "trial_end": None, "trial_start": None,
    }  # fmt: skip


def tax_lines(tax: int, subtotal: int) -> list[Doc]:
    if not tax:
        return []
    return [{
        "amount": tax, "tax_behavior": "exclusive", "taxability_reason": "standard_rated",
        "taxable_amount": subtotal, "type": "tax_rate_details",
        "tax_rate_details": {"tax_rate": "txr_sandbox"},
    }]  # fmt: skip


def invoice(
    id_: str, *, customer_id: str, currency: str, status: str, subtotal: int, tax: int,
    total: int, created: int, number: str | None, period: tuple[int | None, int | None],
    subscription_id: str | None, lines: list[Doc], description: str | None = None,
    finalized: int | None = None,
) -> Doc:  # fmt: skip
    """An invoice document; finalised when it was made unless ``finalized`` says when (a
    draft is not)."""
    paid = status == "paid"
    if status == "draft":
        finalized = None
    elif finalized is None:
        finalized = created
    parent = None
    if subscription_id:
        parent = {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": subscription_id},
        }
    return {
        "id": id_, "object": "invoice", "account_country": "US",
        "account_name": "Opsgraph Sandbox", "amount_due": total,
        "amount_paid": total if paid else 0, "amount_remaining": 0 if paid else total,
        "attempt_count": 1 if paid else 0, "attempted": paid, "auto_advance": not paid,
        "billing_reason": "subscription_cycle" if subscription_id else "manual",
        "collection_method": "charge_automatically", "created": created,
        "currency": currency.lower(), "customer": customer_id, "description": description,
        "due_date": None, "effective_at": finalized, "ending_balance": None if not finalized else 0,
        "lines": {"object": "list", "data": lines, "has_more": False,
                  "total_count": len(lines), "url": f"/v1/invoices/{id_}/lines"},
        "livemode": False, "metadata": {}, "number": number, "parent": parent,
        "period_end": period[1], "period_start": period[0],
        "post_payment_credit_notes_amount": 0, "pre_payment_credit_notes_amount": 0,
        "starting_balance": 0, "status": status,
        "status_transitions": {"finalized_at": finalized, "marked_uncollectible_at": None,
                               "paid_at": created if paid else None, "voided_at": None},
        "subtotal": subtotal, "subtotal_excluding_tax": subtotal, "total": total,
        "total_excluding_tax": subtotal, "total_taxes": tax_lines(tax, subtotal),
    }  # fmt: skip


def invoice_line(id_: str, invoice_id: str, amount: int, currency: str, period: Doc) -> Doc:
    return {
        "id": "il_" + id_.split("_", 1)[1], "object": "line_item", "amount": amount,
        "currency": currency.lower(), "description": None, "discountable": True,
        "discounts": [], "invoice": invoice_id, "livemode": False, "metadata": {},
        "period": period, "quantity": 1, "taxes": [],
    }  # fmt: skip


def payment_intent(
    id_: str, *, customer_id: str | None, amount: int, currency: str, status: str,
    created: int, invoice_id: str | None,
) -> Doc:  # fmt: skip
    return {
        "id": id_, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
        "amount_received": amount if status == "succeeded" else 0, "application": None,
        "canceled_at": None, "cancellation_reason": None, "capture_method": "automatic_async",
        "client_secret": f"{id_}_secret_sandbox", "confirmation_method": "automatic",
        "created": created, "currency": currency.lower(), "customer": customer_id,
        "description": None, "last_payment_error": None, "latest_charge": None,
        "livemode": False, "metadata": {"invoice": invoice_id} if invoice_id else {},
        "next_action": None, "payment_method": None, "payment_method_types": ["card"],
        "status": status,
    }  # fmt: skip


def invoice_item(
    id_: str, now: int, *, customer_id: str, amount: int, currency: str,
    description: str | None, metadata: dict[str, str],
) -> Doc:  # fmt: skip
    return {
        "id": id_, "object": "invoiceitem", "amount": amount, "currency": currency.lower(),
        "customer": customer_id, "date": now, "description": description,
        "discountable": True, "discounts": [], "invoice": None, "livemode": False,
        "metadata": metadata, "parent": None, "period": {"end": now, "start": now},
        "pricing": None, "proration": False, "quantity": 1, "tax_rates": [], "test_clock": None,
    }  # fmt: skip


def credit_note(
    id_: str, now: int, invoice: Doc, *, amount: int, kind: str, number: str,
    reason: str | None, memo: str | None, metadata: dict[str, str],
) -> Doc:  # fmt: skip
    """A credit note on ``invoice``; ``kind`` is ``pre_payment`` (the invoice is open) or
    ``post_payment`` (paid)."""
    return {
        "id": id_, "object": "credit_note", "amount": amount, "amount_shipping": 0,
        "created": now, "currency": invoice["currency"], "customer": invoice["customer"],
        "customer_balance_transaction": None, "discount_amount": 0,
        "discount_amounts": [], "effective_at": now, "invoice": invoice["id"],
        "lines": {"object": "list", "data": [], "has_more": False, "total_count": 0,
                  "url": f"/v1/credit_notes/{id_}/lines"},
        "livemode": False, "memo": memo, "metadata": metadata, "number": number,
        "out_of_band_amount": None,
        "post_payment_amount": amount if kind == "post_payment" else 0,
        "pre_payment_amount": amount if kind == "pre_payment" else 0,
        "reason": reason, "refunds": [], "status": "issued", "subtotal": amount,
        "subtotal_excluding_tax": amount, "total": amount, "total_excluding_tax": amount,
        "total_taxes": [], "type": kind, "voided_at": None,
    }  # fmt: skip


def balance_transaction(
    id_: str, now: int, customer: Doc, *, amount: int, kind: str, ending_balance: int,
    description: str | None = None, metadata: dict[str, str] | None = None,
    invoice_id: str | None = None,
) -> Doc:  # fmt: skip
    """A change of ``customer``'s balance by ``amount`` (negative: a credit to them);
    ``kind`` is ``adjustment`` (written through the API) or ``applied_to_invoice``."""
    return {
        "id": id_, "object": "customer_balance_transaction", "amount": amount,
        "checkout_session": None, "created": now, "credit_note": None,
        "currency": customer["currency"], "customer": customer["id"],
        "description": description, "ending_balance": ending_balance, "invoice": invoice_id,
        "livemode": False, "metadata": metadata or {}, "type": kind,
    }  # fmt: skip


def event(
    id_: str, created: int, type_: str, obj: Doc, *, request_id: str,
    idempotency_key: str | None, pending_webhooks: int, previous: Doc | None = None,
) -> Doc:  # fmt: skip
    """An Event about ``obj``; an update names the fields it changed, with their values
    before, in ``previous_attributes``."""
    data: Doc = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return {
        "id": id_, "object": "event", "api_version": API_VERSION, "created": created,
        "data": data, "livemode": False, "pending_webhooks": pending_webhooks,
        "request": {"id": request_id, "idempotency_key": idempotency_key}, "type": type_,
    }  # fmt: skip


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "plan"


def from_records(records: Iterable[Record], lookup: Lookup) -> list[Doc]:
    """Stripe documents for a canonical slice, catalog first so subscriptions can embed
    their price. Objects with no time of their own (catalog, customers) are dated at the
    slice's earliest moment: they existed before its history."""
    records = list(records)
    origin = min(
        (int(m.timestamp()) for r in records for m in (
            getattr(r, "current_period_start", None), getattr(r, "issued_at", None),
            getattr(r, "created_at", None)) if m is not None),
        default=0,
    )  # fmt: skip
    docs: list[Doc] = []
    products: dict[str, tuple[Any, ...]] = {}
    prices: dict[str, Doc] = {}
    for offer in (r for r in records if isinstance(r, Plan)):
        facts = (offer.name, offer.features, offer.support_tier, offer.sla_hours)
        product_id = base = "prod_" + _slug(offer.name)
        while products.get(product_id, facts) != facts:
            product_id = f"{base}_{len(products)}"
        if product_id not in products:
            products[product_id] = facts
            docs.append(product(product_id, origin, offer))
        prices[offer.id] = price(offer, product_id, origin)
        docs += [prices[offer.id], plan(prices[offer.id])]
    for r in records:
        if isinstance(r, CustomerRecord):
            docs.append(seeded_customer(r, origin))
        elif isinstance(r, Subscription):
            price_doc = prices.get(r.plan_id) or lookup("price", r.plan_id)
            docs.append(subscription(r, price_doc or {"id": r.plan_id, "object": "price"}))
        elif isinstance(r, Invoice):
            docs.append(seeded_invoice(r))
        elif isinstance(r, Payment):
            docs.append(payment_intent(
                r.id, customer_id=r.customer_id or None, amount=r.amount.amount_minor,
                currency=r.amount.currency, status=r.status, created=ts(r.created_at) or 0,
                invoice_id=r.invoice_id))  # fmt: skip
    return docs


def seeded_customer(r: CustomerRecord, created: int) -> Doc:
    """A seeded customer; opsgraph's facts about it in reserved metadata keys."""
    metadata = dict(r.metadata)
    for key, value in (("opsgraph_id", r.ref), ("opsgraph_legal_entity", r.legal_entity)):
        if value:
            metadata[key] = value
    return customer(r.id, created, name=r.name, email=r.email, currency=r.currency,
                    metadata=metadata)  # fmt: skip


def seeded_invoice(r: Invoice) -> Doc:
    return billed_invoice(
        r.id, customer_id=r.customer_id, currency=r.total.currency, status=r.status,
        subtotal=r.subtotal.amount_minor, tax=r.tax.amount_minor, total=r.total.amount_minor,
        created=ts(r.issued_at) or 0, number=r.number,
        period=(ts(r.period_start), ts(r.period_end)), subscription_id=r.subscription_id,
        finalized=ts(r.finalized_at),
    )  # fmt: skip


def billed_invoice(
    id_: str, *, customer_id: str, currency: str, status: str, subtotal: int, tax: int,
    total: int, created: int, number: str | None, period: tuple[int | None, int | None],
    subscription_id: str | None = None, finalized: int | None = None,
) -> Doc:  # fmt: skip
    """An invoice as seeding makes one from a record (``seeded_invoice``), and billing the
    bench world's from their facts (``StripeApi.bulk``): one line, its subtotal over its
    period."""
    start, end = period
    line = invoice_line(id_, id_, subtotal, currency,
                        {"start": start or created, "end": end or created})  # fmt: skip
    return invoice(
        id_, customer_id=customer_id, currency=currency, status=status, subtotal=subtotal,
        tax=tax, total=total, created=created, number=number, period=period,
        subscription_id=subscription_id, lines=[line], finalized=finalized,
    )  # fmt: skip
