"""Invoices and subscriptions of many customers in a few requests, through invoice search.

Stripe's lists filter by one customer, so listing per customer costs a request per
customer. ``GET /v1/invoices/search`` takes up to ``CLAUSE_LIMIT`` clauses joined by OR, so
``customer:'a' OR customer:'b' ...`` answers ten customers at once: N customers cost
ceil(N/10) searches (plus one per further page of 100 invoices), sent concurrently. Stripe
allows about 20 search requests a second per account; a page of 100 customers is 10.

Search is eventually consistent (see ``BillingConnector.fetch_related``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from connectors import paging
from connectors.billing import wire
from connectors.models import Record

T = TypeVar("T")
Obj = Mapping[str, Any]
# (query, expand) -> every invoice the query finds, on every page, in the order served
Search = Callable[[str, Sequence[str]], Awaitable[list[Obj]]]
# customer id -> its subscriptions, listed
ListSubscriptions = Callable[[str], Awaitable[list[Record]]]

CLAUSE_LIMIT = 10  # Stripe refuses a query with more clauses
# Since API version 2025-03-31 an invoice names its subscription here, no longer in
# ``subscription``; the reference stays expandable.
EXPAND_SUBSCRIPTION = "data.parent.subscription_details.subscription"


def customer_query(customers: Sequence[str]) -> str:
    def quoted(value: str) -> str:
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    return " OR ".join(f"customer:{quoted(c)}" for c in customers)


async def settled(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Every answer, in order; the first failure is raised once all have finished, so no
    request is left running unobserved."""
    pending = list(calls)
    if len(pending) == 1:  # one request: send it now rather than from a new task
        return [await pending[0]]
    answers = await asyncio.gather(*pending, return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return [a for a in answers if not isinstance(a, BaseException)]


async def _invoices_of(
    search: Search, parents: Sequence[str], expand: Sequence[str] = ()
) -> dict[str, list[Obj]]:
    """Raw invoices per distinct parent, each group in the order search served them."""
    batches = paging.batches(parents, CLAUSE_LIMIT)
    found = await settled(search(customer_query(batch), expand) for batch in batches)
    grouped: dict[str, list[Obj]] = {p: [] for p in parents}
    for invoices in found:
        for invoice in invoices:
            owner = wire.ref_id(invoice["customer"])
            if owner in grouped:
                grouped[owner].append(invoice)
    return grouped


async def invoices(search: Search, parents: Sequence[str]) -> list[list[Record]]:
    # The same expansion as ``subscriptions`` asks for, so that when a page of customers
    # wants both, the two reads are one request (the connector coalesces identical searches
    # in flight).
    grouped = await _invoices_of(search, parents, [EXPAND_SUBSCRIPTION])
    return [[wire.invoice(obj) for obj in grouped[p]] for p in parents]


async def subscriptions(
    search: Search, list_for: ListSubscriptions, parents: Sequence[str]
) -> list[list[Record]]:
    """Subscriptions per parent, newest first as ``GET /v1/subscriptions`` lists them.

    Stripe's subscription search has no ``customer`` field, but invoice search does, and
    every subscription invoices when it starts (a trial or a free plan makes a zero-amount
    invoice), so the subscriptions a customer has ever had are the distinct ones its
    invoices name, expanded in the same request. A customer with no invoice at all may
    still have one whose first invoice is not searchable yet (or none that ever started),
    so for those alone the subscriptions are listed: one request each."""
    grouped = await _invoices_of(search, parents, [EXPAND_SUBSCRIPTION])
    found: dict[str, list[Record]] = {}
    for parent, invoices_ in grouped.items():
        distinct: dict[str, Obj] = {}
        for invoice in invoices_:
            details = (invoice.get("parent") or {}).get("subscription_details") or {}
            sub = details.get("subscription")
            if isinstance(sub, Mapping):
                distinct[sub["id"]] = sub
        newest_first = sorted(
            distinct.values(), key=lambda s: (s["created"], s["id"]), reverse=True
        )
        found[parent] = [wire.subscription(s) for s in newest_first]
    unbilled = [p for p, invoices_ in grouped.items() if not invoices_]
    found.update(zip(unbilled, await settled(list_for(p) for p in unbilled), strict=True))
    return [found[p] for p in parents]
