"""The Stripe writes (every POST the sandbox serves but a subscription's, which are
``subscriptions.py``) and the Events that record them.

    POST /v1/customers                        name, email, description, phone, metadata
    POST /v1/customers/{id}                   the same, changed: a field set to "" is
                                              unset; metadata merges key by key (a key set
                                              to "" is removed, ``metadata=""`` removes all)
    POST /v1/customers/{id}/balance_transactions
                                              amount (minor units; negative is a credit to
                                              the customer), currency (sets the customer's
                                              if it has none), description, metadata
    POST /v1/invoiceitems                     customer, amount, currency, description,
                                              invoice (a draft), metadata
    POST /v1/invoices                         a draft; pending_invoice_items_behavior
    POST /v1/invoices/{id}/finalize           draft -> open, numbered
                                              ``{invoice_prefix}-{sequence:04d}``, the
                                              customer's balance applied; nothing due: paid
    POST /v1/credit_notes                     invoice, amount, reason, memo, metadata

Each write records a Stripe Event, kept for ``GET /v1/events`` and, with ``webhook_url``
set, delivered signed: ``Stripe-Signature: t=<unix>,v1=<hex>``, the HMAC-SHA256 of
``"<t>.<body>"`` under the endpoint's secret. An update's Event names the fields it changed,
with their values before, in ``data.previous_attributes``; an update that changes nothing
records none. Seeding records none: it is history.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from connectors.sandbox.billing import documents
from connectors.sandbox.billing.documents import Doc
from connectors.sandbox.billing.errors import StripeError, no_such
from connectors.sandbox.billing.query import (
    Call,
    accept,
    boolean,
    choice,
    integer,
    need,
    needed_integer,
    text,
)
from connectors.sandbox.store import Store
from connectors.sandbox.webhooks import Webhooks

CREDIT_REASONS = ("duplicate", "fraudulent", "order_change", "product_unsatisfactory")
CUSTOMER_TEXT = ("name", "email", "description", "phone")
REFINALIZED = "This invoice is already finalized, you can't re-finalize a non-draft invoice."


def signed(secret: str, body: bytes) -> dict[str, str]:
    stamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    return {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": f"t={stamp},v1={digest.hexdigest()}",
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }


def found(store: Store, object_name: str, id_: str, param: str = "id", status: int = 404) -> Doc:
    """The stored object, or Stripe's ``resource_missing``: a 404 for the object a path
    names, a 400 for one a parameter refers to."""
    doc = store.get(object_name, id_)
    if doc is None:
        raise no_such(object_name, id_, param=param, status=status)
    return doc


def _optional(params: dict[str, Any], name: str) -> str | None:
    """A text parameter; "" (Stripe's way of unsetting a field) and absence are None."""
    return (text(name, params[name]) or None) if name in params else None


def merged_metadata(current: dict[str, str], given: Any) -> dict[str, str]:
    """``current`` with ``given`` merged in, as Stripe merges metadata."""
    if given == "":
        return {}
    if not isinstance(given, dict):
        raise StripeError(400, "Invalid hash: metadata", param="metadata")
    merged = dict(current)
    for key, value in given.items():
        if text(f"metadata[{key}]", value):
            merged[key] = value
        else:
            merged.pop(key, None)
    return merged


def _metadata(params: dict[str, Any]) -> dict[str, str]:
    """The metadata a new object is created with."""
    return merged_metadata({}, params.get("metadata", {}))


class Writes:
    def __init__(self, store: Store, webhooks: Webhooks) -> None:
        self.store = store
        self.webhooks = webhooks

    def emit(self, type_: str, obj: Doc, call: Call, previous: Doc | None = None) -> None:
        event = documents.event(
            self.new_id("evt_"), int(time.time()), type_, obj, request_id=call.request_id,
            idempotency_key=call.idempotency_key, previous=previous,
            pending_webhooks=1 if self.webhooks.enabled else 0,
        )  # fmt: skip
        self.store.put("event", event["id"], event)
        self.webhooks.deliver(json.dumps(event, indent=2).encode())

    def new_id(self, prefix: str) -> str:
        return f"{prefix}sbx{self.store.next_number(prefix):011d}"

    def _referred(self, object_name: str, params: dict[str, Any], param: str) -> Doc:
        return found(self.store, object_name, str(need(params, param)), param, status=400)

    # customers

    def create_customer(self, params: dict[str, Any], call: Call) -> Doc:
        accept(params, {*CUSTOMER_TEXT, "metadata", "expand"})
        doc = documents.customer(
            self.new_id("cus_"), int(time.time()), name=_optional(params, "name"),
            email=_optional(params, "email"), currency=None,
            metadata=_metadata(params),
            description=_optional(params, "description"), phone=_optional(params, "phone"),
        )  # fmt: skip
        self.store.put("customer", doc["id"], doc)
        self.emit("customer.created", doc, call)
        return doc

    def update_customer(self, params: dict[str, Any], call: Call) -> Doc:
        accept(params, {*CUSTOMER_TEXT, "metadata", "expand"})
        customer = found(self.store, "customer", call.id)
        previous: Doc = {}
        for name in (n for n in CUSTOMER_TEXT if n in params):
            value = _optional(params, name)
            if customer[name] != value:
                previous[name], customer[name] = customer[name], value
        if "metadata" in params:
            before = customer["metadata"]
            after = merged_metadata(before, params["metadata"])
            changed = {k: before.get(k) for k in sorted(before.keys() | after.keys())
                       if before.get(k) != after.get(k)}  # fmt: skip
            if changed:
                previous["metadata"], customer["metadata"] = changed, after
        if previous:
            self.store.put("customer", customer["id"], customer)
            self.emit("customer.updated", customer, call, previous)
        return customer

    def create_balance_transaction(self, params: dict[str, Any], call: Call) -> Doc:
        accept(params, {"amount", "currency", "description", "metadata", "expand"})
        customer = found(self.store, "customer", call.id)
        amount = needed_integer(params, "amount")
        currency = text("currency", need(params, "currency")).lower()
        previous: Doc = {"balance": customer["balance"]}
        if customer["currency"] is None:
            previous["currency"], customer["currency"] = None, currency
        elif customer["currency"] != currency:
            raise StripeError(
                400,
                f"The customer's balance is in {customer['currency']}: a balance transaction "
                f"in {currency} cannot change it.",
                param="currency",
            )
        adjusted = self._adjust(
            customer, amount, "adjustment", description=_optional(params, "description"),
            metadata=_metadata(params),
        )  # fmt: skip
        self.emit("customer.updated", customer, call, previous)
        return adjusted

    def _adjust(self, customer: Doc, amount: int, kind: str, **details: Any) -> Doc:
        """Change ``customer``'s balance by ``amount``, recorded as a balance transaction."""
        customer["balance"] += amount
        adjusted = documents.balance_transaction(
            self.new_id("cbtxn_"), int(time.time()), customer, amount=amount, kind=kind,
            ending_balance=customer["balance"], **details,
        )  # fmt: skip
        self.store.put("customer_balance_transaction", adjusted["id"], adjusted)
        self.store.put("customer", customer["id"], customer)
        return adjusted

    # invoices

    def create_invoice_item(self, params: dict[str, Any], call: Call) -> Doc:
        accept(params, {"customer", "amount", "currency", "description", "invoice", "metadata",
                        "expand"})  # fmt: skip
        customer = self._referred("customer", params, "customer")
        amount = needed_integer(params, "amount")
        currency = text("currency", need(params, "currency")).lower()
        invoice = self._referred("invoice", params, "invoice") if params.get("invoice") else None
        if invoice is not None:
            if invoice["status"] != "draft":
                raise StripeError(400, f"Invoice {invoice['id']} is no longer editable.",
                                  param="invoice")  # fmt: skip
            if (invoice["customer"], invoice["currency"]) != (customer["id"], currency):
                raise StripeError(400, f"Invoice {invoice['id']} bills another customer or "
                                       "currency than this item.", param="invoice")  # fmt: skip
        doc = documents.invoice_item(
            self.new_id("ii_"), int(time.time()), customer_id=customer["id"], amount=amount,
            currency=currency, description=_optional(params, "description"),
            metadata=_metadata(params),
        )  # fmt: skip
        self.store.put("invoiceitem", doc["id"], doc)
        if invoice is not None:
            self.bill(invoice, [doc])
        self.emit("invoiceitem.created", doc, call)
        return doc

    def bill(self, invoice: Doc, items: list[Doc]) -> Doc:
        """Attach pending items to a draft invoice and recompute its amounts."""
        for item in items:
            item["invoice"] = invoice["id"]
            self.store.put("invoiceitem", item["id"], item)
            line = documents.invoice_line(
                item["id"], invoice["id"], item["amount"], item["currency"], item["period"]
            )
            invoice["lines"]["data"].append(line)
        subtotal = sum(line["amount"] for line in invoice["lines"]["data"])
        invoice["lines"]["total_count"] = len(invoice["lines"]["data"])
        for field in ("subtotal", "subtotal_excluding_tax", "total", "total_excluding_tax",
                      "amount_due", "amount_remaining"):  # fmt: skip
            invoice[field] = subtotal
        self.store.put("invoice", invoice["id"], invoice)
        return invoice

    def create_invoice(self, params: dict[str, Any], call: Call) -> Doc:
        accept(params, {"customer", "currency", "description", "metadata", "auto_advance",
                        "pending_invoice_items_behavior", "expand"})  # fmt: skip
        customer = self._referred("customer", params, "customer")
        behavior = choice("pending_invoice_items_behavior",
                          params.get("pending_invoice_items_behavior", "exclude"),
                          ("exclude", "include"))  # fmt: skip
        pending = self.store.all(
            "invoiceitem", lambda d: d["customer"] == customer["id"] and d["invoice"] is None
        )
        currency = (
            _optional(params, "currency") or customer.get("currency")
            or (pending[0]["currency"] if pending and behavior == "include" else "usd")
        ).lower()  # fmt: skip
        now = int(time.time())
        doc = documents.invoice(
            self.new_id("in_"), customer_id=customer["id"], currency=currency,
            status="draft", subtotal=0, tax=0, total=0, created=now, number=None,
            period=(now, now), subscription_id=None, lines=[],
            description=_optional(params, "description"),
        )  # fmt: skip
        doc["metadata"] = _metadata(params)
        doc["auto_advance"] = boolean(params, "auto_advance") is not False
        # Until it is finalized, a draft's starting balance is the customer's current one.
        doc["starting_balance"] = customer["balance"]
        billed = [i for i in pending if i["currency"] == currency] if behavior == "include" else []
        doc = self.bill(doc, billed)
        self.emit("invoice.created", doc, call)
        return doc

    def finalize_invoice(self, params: dict[str, Any], call: Call) -> Doc:
        accept(params, {"auto_advance", "expand"})
        invoice = found(self.store, "invoice", call.id)
        if invoice["status"] != "draft":
            raise StripeError(400, REFINALIZED)
        return self.finalize(invoice, call, boolean(params, "auto_advance"))

    def finalize(self, invoice: Doc, call: Call, auto_advance: bool | None = None) -> Doc:
        """A draft made open (or paid, with nothing due) under the customer's next number."""
        customer = found(self.store, "customer", invoice["customer"])
        invoice["number"] = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
        customer["next_invoice_sequence"] += 1
        self.store.put("customer", customer["id"], customer)
        self._apply_balance(invoice, customer, call)
        now = int(time.time())
        paid = invoice["amount_due"] == 0  # Stripe marks an invoice with nothing due paid
        invoice.update(status="paid" if paid else "open", effective_at=now)
        invoice["status_transitions"].update(finalized_at=now, paid_at=now if paid else None)
        if auto_advance is not None or paid:
            invoice["auto_advance"] = bool(auto_advance) and not paid
        self.store.put("invoice", invoice["id"], invoice)
        self.emit("invoice.finalized", invoice, call)
        if paid:
            self.emit("invoice.paid", invoice, call)
        return invoice

    def _apply_balance(self, invoice: Doc, customer: Doc, call: Call) -> None:
        """Settle what the invoice takes of the customer's balance (in its currency), as
        Stripe does at finalization: a credit (negative) lowers what is due, down to
        nothing, and what is left of it stays; a debit is added to what is due."""
        balance = customer["balance"] if customer["currency"] == invoice["currency"] else 0
        applied = max(balance, -invoice["amount_due"])
        invoice["starting_balance"], invoice["ending_balance"] = balance, balance - applied
        if applied:
            invoice["amount_due"] += applied
            invoice["amount_remaining"] += applied
            previous = {"balance": customer["balance"]}
            self._adjust(customer, -applied, "applied_to_invoice", invoice_id=invoice["id"])
            self.emit("customer.updated", customer, call, previous)

    def create_credit_note(self, params: dict[str, Any], call: Call) -> Doc:
        accept(params, {"invoice", "amount", "reason", "memo", "metadata", "expand"})
        invoice = self._referred("invoice", params, "invoice")
        if invoice["status"] not in ("open", "paid"):
            raise StripeError(
                400, "Credit notes can only be issued for open or paid invoices.", param="invoice"
            )
        amount = integer(params, "amount")
        if amount is None or amount <= 0:
            raise StripeError(400, f"Invalid positive integer: {params.get('amount')}",
                              param="amount")  # fmt: skip
        credited = invoice["pre_payment_credit_notes_amount"]
        credited += invoice["post_payment_credit_notes_amount"]
        if amount > invoice["total"] - credited:
            raise StripeError(400, "The credit note amount cannot exceed the amount remaining "
                                   "to be credited on the invoice.", param="amount")  # fmt: skip
        reason = choice("reason", params["reason"], CREDIT_REASONS) if "reason" in params else None
        kind = "pre_payment" if invoice["status"] == "open" else "post_payment"
        count = len(self.store.all("credit_note", lambda d: d["invoice"] == invoice["id"]))
        note = documents.credit_note(
            self.new_id("cn_"), int(time.time()), invoice, amount=amount, kind=kind,
            number=f"{invoice['number'] or invoice['id']}-CN-{count + 1:02d}", reason=reason,
            memo=_optional(params, "memo"),
            metadata=_metadata(params),
        )  # fmt: skip
        self.store.put("credit_note", note["id"], note)
        invoice[f"{kind}_credit_notes_amount"] += amount
        if kind == "pre_payment":
            invoice["amount_due"] -= amount
            invoice["amount_remaining"] -= amount
        self.store.put("invoice", invoice["id"], invoice)
        self.emit("credit_note.created", note, call)
        return note
