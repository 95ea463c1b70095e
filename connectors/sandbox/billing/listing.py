"""Stripe's list endpoints: which objects, which filters, and cursor paging.

Lists are newest first (``created``, then id, descending). ``starting_after=<id>`` gives
the page after ``id``; ``ending_before=<id>`` the page just before it, still newest first,
with ``has_more`` meaning more remain in that direction, as on Stripe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.sandbox.billing.documents import Doc
from connectors.sandbox.billing.params import ApiError, accept, integer, no_such

PAGING = {"limit", "starting_after", "ending_before", "expand", "created"}
Where = Callable[[Doc, Any], bool]


def _sub_price(doc: Doc) -> str | None:
    items = doc["items"]["data"]
    return items[0]["price"]["id"] if items else None


def invoice_subscription(doc: Doc) -> str | None:
    return ((doc.get("parent") or {}).get("subscription_details") or {}).get("subscription")


def _type_matches(doc: Doc, pattern: str) -> bool:
    if pattern.endswith(".*"):
        return str(doc["type"]).startswith(pattern[:-1])
    return bool(doc["type"] == pattern)


# plural path -> (object name, list filters: parameter -> predicate)
RESOURCES: dict[str, tuple[str, dict[str, Where]]] = {
    "customers": ("customer", {"email": lambda d, v: d.get("email") == v}),
    "products": ("product", {"active": lambda d, v: str(d["active"]).lower() == v}),
    "prices": ("price", {
        "active": lambda d, v: str(d["active"]).lower() == v,
        "currency": lambda d, v: d["currency"] == v.lower(),
        "product": lambda d, v: d["product"] == v,
        "type": lambda d, v: d["type"] == v}),
    "subscriptions": ("subscription", {
        "customer": lambda d, v: d["customer"] == v,
        "price": lambda d, v: _sub_price(d) == v,
        "status": lambda d, v: v == "all" or d["status"] == v}),
    "invoices": ("invoice", {
        "customer": lambda d, v: d["customer"] == v,
        "status": lambda d, v: d["status"] == v,
        "subscription": lambda d, v: invoice_subscription(d) == v}),
    "invoiceitems": ("invoiceitem", {
        "customer": lambda d, v: d["customer"] == v,
        "invoice": lambda d, v: d["invoice"] == v,
        "pending": lambda d, v: (d["invoice"] is None) == (v == "true")}),
    "payment_intents": ("payment_intent", {"customer": lambda d, v: d["customer"] == v}),
    "credit_notes": ("credit_note", {
        "invoice": lambda d, v: d["invoice"] == v,
        "customer": lambda d, v: d["customer"] == v}),
    "events": ("event", {
        "type": _type_matches,
        "types": lambda d, v: any(_type_matches(d, t) for t in v)}),
}  # fmt: skip


def page(object_name: str, docs: list[Doc], params: dict[str, Any], url: str) -> Doc:
    """One page of ``docs`` (already filtered) as a Stripe list object."""
    accept(params, PAGING | set(RESOURCES[url.split("/")[2]][1]))
    limit = integer(params, "limit", 10)
    if limit is None or not 1 <= limit <= 100:
        raise ApiError(400, "Invalid limit: must be between 1 and 100", param="limit")
    docs = sorted(docs, key=lambda d: (d.get("created", d.get("date", 0)), d["id"]), reverse=True)
    after, before = params.get("starting_after"), params.get("ending_before")
    if after and before:
        raise ApiError(
            400, "You may only specify one of these parameters: ending_before, starting_after."
        )
    ids = [d["id"] for d in docs]
    if after or before:
        cursor, name = (after, "starting_after") if after else (before, "ending_before")
        if cursor not in ids:
            raise no_such(object_name, str(cursor), param=name, status=400)
        at = ids.index(cursor)
        start = at + 1 if after else max(0, at - limit)
        stop = min(len(docs), start + limit) if after else at
        has_more = stop < len(docs) if after else start > 0
    else:
        start, stop, has_more = 0, min(limit, len(docs)), limit < len(docs)
    return {"object": "list", "data": docs[start:stop], "has_more": has_more, "url": url}
