"""The Stripe subscription writes: a change of prices or quantities, a cancellation planned
for the period's end, and a cancellation now.

    POST   /v1/subscriptions/{id}   items[n][id] (an item of the subscription) with
                                    items[n][price] and/or items[n][quantity] changes that
                                    item, keeping its id; items[n][price] without an id
                                    adds one. proration_behavior (create_prorations, none,
                                    always_invoice), proration_date, cancel_at_period_end,
                                    metadata[...] (merged)
    DELETE /v1/subscriptions/{id}   cancels now: ``canceled``, ``canceled_at``, ``ended_at``

As on Stripe, a subscription's prices share its currency and interval (the sandbox does not
model the new billing cycle Stripe starts when a one-price subscription changes interval:
it refuses that too). A changed price or quantity is prorated over what is left of the
current period from ``proration_date`` (default now): pending invoice items, flagged
``proration``, crediting the unused time of what was and charging the remaining time of
what is; ``always_invoice`` bills them at once on a finalized invoice, ``none`` makes none.
A period the sandbox never renewed has nothing left to prorate.

A canceled subscription takes only ``metadata``: anything else is Stripe's 400 "A canceled
subscription can only update its cancellation_details and metadata." A DELETE replays by no
``Idempotency-Key`` (Stripe ignores the header on DELETE), and a canceled subscription is
gone for it: a second DELETE is Stripe's 404 ``resource_missing``, while GET still reads it.
"""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime
from typing import Any

from connectors.sandbox.billing import documents
from connectors.sandbox.billing.documents import Doc
from connectors.sandbox.billing.errors import StripeError, no_such, unknown_parameter
from connectors.sandbox.billing.query import ENDED, Call, accept, boolean, choice, integer, text
from connectors.sandbox.billing.writes import Writes, found, merged_metadata

PRORATIONS = ("always_invoice", "create_prorations", "none")
CANCELED = "A canceled subscription can only update its cancellation_details and metadata."
MISMATCH = (
    "Currency and interval fields must match across all plans on this subscription. "
    "Found mismatch in {} field."
)
_ITEM_FIELDS = ("id", "price", "quantity")

Change = tuple[Doc | None, Doc]  # an item before (None: added) and after


def _interval(price: Doc) -> str | None:
    return (price.get("recurring") or {}).get("interval")


class SubscriptionWrites:
    def __init__(self, writes: Writes) -> None:
        self.writes = writes
        self.store = writes.store

    def update(self, params: dict[str, Any], call: Call) -> Doc:
        accept(params, {"items", "proration_behavior", "proration_date", "cancel_at_period_end",
                        "metadata", "expand"})  # fmt: skip
        sub = found(self.store, "subscription", call.id)
        if sub["status"] in ENDED and params.keys() - {"metadata", "expand"}:
            raise StripeError(400, CANCELED)
        given = params.get("proration_behavior", "create_prorations")
        behavior = choice("proration_behavior", given, PRORATIONS)
        changes = self._changes(sub, params["items"]) if "items" in params else []
        at = self._proration_date(sub, params)
        ending = boolean(params, "cancel_at_period_end")
        metadata = merged_metadata(sub["metadata"], params.get("metadata", {}))
        # Checked above, written below: a refused request leaves nothing behind.
        previous: Doc = {}
        if changes:
            previous["items"] = copy.deepcopy(sub["items"])
            kept = {after["id"]: after for _, after in changes}
            data = [kept.pop(i["id"], i) for i in sub["items"]["data"]] + list(kept.values())
            sub["items"].update(data=data, total_count=len(data))
        if ending is not None and ending != sub["cancel_at_period_end"]:
            previous.update({k: sub[k] for k in ("cancel_at_period_end", "cancel_at",
                                                  "canceled_at")})  # fmt: skip
            end = sub["items"]["data"][0]["current_period_end"]
            sub.update(cancel_at_period_end=ending, cancel_at=end if ending else None,
                       canceled_at=int(time.time()) if ending else None)  # fmt: skip
        if metadata != sub["metadata"]:
            previous["metadata"], sub["metadata"] = sub["metadata"], metadata
        if previous:
            self.store.put("subscription", sub["id"], sub)
            self.writes.emit("customer.subscription.updated", sub, call, previous)
        if behavior != "none":
            prorations = self._prorate(sub, changes, at, call)
            if prorations and behavior == "always_invoice":
                self._invoice_now(sub, prorations, at, call)
        return sub

    def cancel(self, params: dict[str, Any], call: Call) -> Doc:
        accept(params, {"expand"})
        sub = found(self.store, "subscription", call.id)
        if sub["status"] in ENDED:
            raise no_such("subscription", call.id)
        now = int(time.time())
        sub.update(status="canceled", canceled_at=now, ended_at=now)
        self.store.put("subscription", sub["id"], sub)
        self.writes.emit("customer.subscription.deleted", sub, call)
        return sub

    def _changes(self, sub: Doc, given: Any) -> list[Change]:
        """What ``items[]`` changes in the subscription's items, checked."""
        if not isinstance(given, list):
            raise StripeError(400, "Invalid array", param="items")
        items = {item["id"]: item for item in sub["items"]["data"]}
        changes: list[Change] = []
        for n, entry in enumerate(given):
            name = f"items[{n}]"
            if not isinstance(entry, dict):
                raise StripeError(400, f"Invalid hash: {name}", param=name)
            unknown = [key for key in entry if key not in _ITEM_FIELDS]
            if unknown:
                raise unknown_parameter(f"{name}[{unknown[0]}]")
            if "id" in entry:
                item_id = text(f"{name}[id]", entry["id"])
                if item_id not in items:
                    raise no_such("subscription_item", item_id, f"{name}[id]", status=400)
                before: Doc | None = items[item_id]
                after = copy.deepcopy(items[item_id])
            elif "price" in entry:
                before, after = None, self._new_item(sub)
            else:
                raise StripeError(400, "You must pass one of plan, price, or price_data.",
                                  param=name)  # fmt: skip
            if "price" in entry:
                price_id = text(f"{name}[price]", entry["price"])
                after["price"] = found(self.store, "price", price_id, f"{name}[price]", 400)
            field = f"{name}[quantity]"
            quantity = integer({field: entry.get("quantity")}, field)
            if quantity is not None:
                if quantity < 0:
                    raise StripeError(400, f"Invalid non-negative integer: {quantity}",
                                      param=field)  # fmt: skip
                after["quantity"] = quantity
            if before is None or not _same(before, after):
                changes.append((before, after))
        self._check_prices(sub, changes)
        return changes

    def _new_item(self, sub: Doc) -> Doc:
        first = sub["items"]["data"][0]
        return {
            "id": self.writes.new_id("si_"), "object": "subscription_item",
            "created": int(time.time()), "current_period_end": first["current_period_end"],
            "current_period_start": first["current_period_start"], "discounts": [],
            "metadata": {}, "price": None, "quantity": 1, "subscription": sub["id"],
            "tax_rates": [],
        }  # fmt: skip

    def _check_prices(self, sub: Doc, changes: list[Change]) -> None:
        """The items after the change: one each of recurring prices in one currency and
        interval, those of the subscription."""
        items = {item["id"]: item for item in sub["items"]["data"]}
        items.update((after["id"], after) for _, after in changes)
        first = sub["items"]["data"][0]["price"]
        seen: set[str] = set()
        for price in (item["price"] for item in items.values()):
            if price.get("type", "recurring") != "recurring":
                raise StripeError(400, "The price specified is set to `type=one_time` but this "
                                       "field only accepts prices with `type=recurring`.",
                                  param="items")  # fmt: skip
            if price["id"] in seen:
                raise StripeError(400, "Cannot add multiple subscription items with the same "
                                       f"price: {price['id']}", param="items")  # fmt: skip
            seen.add(price["id"])
            if price.get("currency") != sub["currency"]:
                raise StripeError(400, MISMATCH.format("currency"), param="items")
            if _interval(price) != _interval(first):
                raise StripeError(400, MISMATCH.format("interval"), param="items")

    def _proration_date(self, sub: Doc, params: dict[str, Any]) -> int:
        at = integer(params, "proration_date")
        if at is None:
            return int(time.time())
        item = sub["items"]["data"][0]
        if not item["current_period_start"] <= at <= item["current_period_end"]:
            raise StripeError(400, "proration_date must be within the subscription's current "
                                   "billing period.", param="proration_date")  # fmt: skip
        return at

    def _prorate(self, sub: Doc, changes: list[Change], at: int, call: Call) -> list[Doc]:
        """Pending invoice items for the rest of the period from ``at``: the unused time of
        each item as it was (a credit), the remaining time of each as it is."""
        prorations = []
        day = datetime.fromtimestamp(at, UTC).strftime("%d %b %Y")
        for before, after in changes:
            start, end = after["current_period_start"], after["current_period_end"]
            share = max(0, end - at) / (end - start) if end > start else 0.0
            for item, sign, what in ((before, -1, "Unused"), (after, 1, "Remaining")):
                if item is None:
                    continue
                price = item["price"]
                amount = sign * round(price["unit_amount"] * item["quantity"] * share)
                if not amount:
                    continue
                product = self.store.get("product", price["product"]) or {}
                doc = documents.invoice_item(
                    self.writes.new_id("ii_"), int(time.time()), customer_id=sub["customer"],
                    amount=amount, currency=price["currency"], metadata={},
                    description=f"{what} time on {item['quantity']} × "
                                f"{product.get('name', price['id'])} after {day}",
                )  # fmt: skip
                doc.update(proration=True, period={"start": at, "end": end}, parent={
                    "type": "subscription_details", "subscription_details": {
                        "subscription": sub["id"], "subscription_item": item["id"]}})  # fmt: skip
                self.store.put("invoiceitem", doc["id"], doc)
                self.writes.emit("invoiceitem.created", doc, call)
                prorations.append(doc)
        return prorations

    def _invoice_now(self, sub: Doc, prorations: list[Doc], at: int, call: Call) -> Doc:
        """``always_invoice``: the prorations billed on an invoice of their own, finalized."""
        customer = found(self.store, "customer", sub["customer"])
        end = sub["items"]["data"][0]["current_period_end"]
        invoice = documents.invoice(
            self.writes.new_id("in_"), customer_id=sub["customer"], currency=sub["currency"],
            status="draft", subtotal=0, tax=0, total=0, created=int(time.time()), number=None,
            period=(at, end), subscription_id=sub["id"], lines=[],
        )  # fmt: skip
        invoice.update(billing_reason="subscription_update", starting_balance=customer["balance"])
        invoice = self.writes.bill(invoice, prorations)
        self.writes.emit("invoice.created", invoice, call)
        return self.writes.finalize(invoice, call)


def _same(before: Doc, after: Doc) -> bool:
    return bool(before["price"]["id"] == after["price"]["id"]
                and before["quantity"] == after["quantity"])  # fmt: skip
