"""What a Stripe request asks for: the call, its parameters, and the filters and cursor pages
of the list endpoints. (The Search Query Language is ``search.py``.)

Parameters are form-encoded bodies and query strings with bracket notation
(``metadata[opsgraph_id]=x``, ``expand[0]=data.product``, ``expand[]=product``,
``created[gte]=1700000000``); ``parse_params`` turns them into nested dicts and lists.

A list applies every parameter it accepts: its filters (``LISTS``), each checking its value
as Stripe does, ``created`` on every list (a Unix time, or a hash of ``gt`` / ``gte`` / ``lt``
/ ``lte``), and the paging parameters. Anything else is Stripe's 400 ``parameter_unknown``.

Lists are newest first (``created``, then id, descending). ``starting_after=<id>`` gives the
page after ``id``; ``ending_before=<id>`` the page just before it, still newest first, with
``has_more`` meaning more remain in that direction, as on Stripe. ``Pages`` keeps each list's
order until its documents change, so that a page costs what it holds.
"""

from __future__ import annotations

import bisect
import json
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.sandbox.billing.documents import Doc
from connectors.sandbox.billing.errors import StripeError, no_such, unknown_parameter
from connectors.sandbox.store import Store


@dataclass(frozen=True)
class Call:
    """One request as its handler sees it."""

    request_id: str
    idempotency_key: str | None
    method: str
    url: str  # the path, e.g. /v1/customers/cus_1
    id: str  # the {id} in the route, "" for collection routes
    child: str = ""  # the {child} in a nested route: a customer's balance transaction


# -- parameters -----------------------------------------------------------------------------

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


def _lists(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _lists(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


def parse_params(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        path = [match.group(1), *_PART.findall(match.group(2))] if match else [key]
        node = root
        for depth, part in enumerate(path):
            if part == "":  # "expand[]": append
                part = str(len(node))
            if depth == len(path) - 1:
                node[part] = value
                break
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise StripeError(400, f"Invalid hash: {path[0]}", param=path[0])
            node = child
    result: dict[str, Any] = _lists(root)
    return result


def accept(params: Mapping[str, Any], allowed: Iterable[str]) -> None:
    for name in params:
        if name not in allowed:
            raise unknown_parameter(name)


def _missing(name: str) -> StripeError:
    return StripeError(
        400, f"Missing required param: {name}.", code="parameter_missing", param=name
    )


def need(params: dict[str, Any], name: str) -> Any:
    if params.get(name) in (None, ""):
        raise _missing(name)
    return params[name]


def _integer(name: str, value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StripeError(400, f"Invalid integer: {value}", param=name) from None


def integer(params: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    return default if value is None else _integer(name, value)


def needed_integer(params: dict[str, Any], name: str) -> int:
    value = integer(params, name)
    if value is None:
        raise _missing(name)
    return value


def _boolean(name: str, value: Any) -> bool:
    if value not in ("true", "false"):
        raise StripeError(400, f"Invalid boolean: {value}", param=name)
    return bool(value == "true")


def boolean(params: dict[str, Any], name: str) -> bool | None:
    value = params.get(name)
    return None if value is None else _boolean(name, value)


def text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise StripeError(400, f"Invalid string: {json.dumps(value)}", param=name)
    return value


def choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        head = ", ".join(allowed[:-1]) + ("," if len(allowed) > 2 else "")
        message = f"Invalid {name}: must be one of {head} or {allowed[-1]}"
        raise StripeError(400, message, param=name)
    return str(value)


def strings(params: dict[str, Any], name: str) -> dict[str, str]:
    value = params.get(name) or {}
    if not isinstance(value, dict):
        raise StripeError(400, f"Invalid hash: {name}", param=name)
    return {str(k): str(v) for k, v in value.items()}


def expansions(params: dict[str, Any]) -> list[str]:
    value = params.get("expand") or []
    if not isinstance(value, list):
        raise StripeError(400, "Invalid array", param="expand")
    return [str(v) for v in value]


def limit(params: dict[str, Any]) -> int:
    chosen = integer(params, "limit", 10)
    if chosen is None or not 1 <= chosen <= 100:
        raise StripeError(400, "Invalid limit: must be between 1 and 100", param="limit")
    return chosen


# -- lists ----------------------------------------------------------------------------------

PAGING = frozenset({"limit", "starting_after", "ending_before", "expand"})
Where = Callable[[Doc], bool]
Filter = Callable[[str, Any], Where]  # (parameter, its value) -> the documents it keeps
_BOUNDS: dict[str, Callable[[int, int], bool]] = {
    "gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le,
}  # fmt: skip


def created(doc: Doc) -> int:
    """When a document was made: its ``created``, or an invoice item's ``date``."""
    return int(doc.get("created", doc.get("date")) or 0)


def _created(name: str, value: Any) -> Where:
    if not isinstance(value, dict):
        at = _integer(name, value)
        return lambda d: created(d) == at
    bounds = []
    for bound, moment in value.items():
        if bound not in _BOUNDS:
            raise unknown_parameter(f"{name}[{bound}]")
        bounds.append((_BOUNDS[bound], _integer(f"{name}[{bound}]", moment)))
    return lambda d: all(compare(created(d), moment) for compare, moment in bounds)


def _equal(key: str, fold: Callable[[str], str] = str) -> Filter:
    def where(name: str, value: Any) -> Where:
        wanted = fold(text(name, value))
        return lambda d: d.get(key) == wanted

    return where


def _flag(read: Callable[[Doc], bool]) -> Filter:
    def where(name: str, value: Any) -> Where:
        wanted = _boolean(name, value)
        return lambda d: read(d) is wanted

    return where


def _one_of(key: str, allowed: Sequence[str]) -> Filter:
    def where(name: str, value: Any) -> Where:
        wanted = choice(name, value, allowed)
        return lambda d: d.get(key) == wanted

    return where


ENDED = ("canceled", "incomplete_expired")
_SUBSCRIPTION_STATUSES = (
    "active", "all", "canceled", "ended", "incomplete", "incomplete_expired", "past_due",
    "paused", "trialing", "unpaid",
)  # fmt: skip


def _subscription_status(name: str, value: Any) -> Where:
    status = choice(name, value, _SUBSCRIPTION_STATUSES)
    if status == "all":
        return lambda d: True
    if status == "ended":
        return lambda d: d["status"] in ENDED
    return lambda d: d["status"] == status


def _subscription_price(name: str, value: Any) -> Where:
    wanted = text(name, value)
    return lambda d: any(item["price"]["id"] == wanted for item in d["items"]["data"])


def invoice_subscription(doc: Doc) -> str | None:
    return ((doc.get("parent") or {}).get("subscription_details") or {}).get("subscription")


def _invoice_subscription(name: str, value: Any) -> Where:
    wanted = text(name, value)
    return lambda d: invoice_subscription(d) == wanted


def _type_matches(doc: Doc, pattern: str) -> bool:
    if pattern.endswith(".*"):
        return str(doc["type"]).startswith(pattern[:-1])
    return bool(doc["type"] == pattern)


def _event_type(name: str, value: Any) -> Where:
    pattern = text(name, value)
    return lambda d: _type_matches(d, pattern)


def _event_types(name: str, value: Any) -> Where:
    if not isinstance(value, list):
        raise StripeError(400, "Invalid array", param=name)
    patterns = [text(f"{name}[{n}]", v) for n, v in enumerate(value)]
    return lambda d: any(_type_matches(d, p) for p in patterns)


@dataclass(frozen=True)
class Listing:
    """A list endpoint: the objects it lists, the filters it takes, and what it leaves out
    unless a filter says otherwise (``unless``: parameter -> the documents kept without it)."""

    object_name: str
    filters: Mapping[str, Filter]
    unless: Mapping[str, Where] = field(default_factory=dict)

    def where(self, params: Mapping[str, Any]) -> Where:
        """The documents ``params`` ask for but for ``created``, which ``Pages`` applies to
        its order; unknown parameters and bad values refused (``created``'s too)."""
        accept(params, PAGING | self.filters.keys())
        # Each filter built, so that a bad value is refused, ``created``'s as any other.
        named = {n: self.filters[n](n, v) for n, v in params.items() if n in self.filters}
        chosen = [keep for n, keep in named.items() if n != "created"]
        chosen += [kept for n, kept in self.unless.items() if n not in params]
        return lambda d: all(keep(d) for keep in chosen)


def _listing(
    object_name: str, unless: Mapping[str, Where] | None = None, **filters: Filter
) -> Listing:
    return Listing(object_name, {"created": _created, **filters}, unless or {})


_ACTIVE = _flag(lambda d: bool(d["active"]))
_CUSTOMER = _equal("customer")

# plural path -> its list
LISTS: dict[str, Listing] = {
    "customers": _listing("customer", email=_equal("email")),
    "products": _listing("product", active=_ACTIVE),
    "prices": _listing("price", active=_ACTIVE, currency=_equal("currency", str.lower),
                       product=_equal("product"), type=_one_of("type", ("one_time", "recurring"))),
    "plans": _listing("plan", active=_ACTIVE, product=_equal("product")),
    "subscriptions": _listing(
        "subscription", {"status": lambda d: d["status"] not in ENDED}, customer=_CUSTOMER,
        price=_subscription_price, status=_subscription_status),
    "invoices": _listing("invoice", customer=_CUSTOMER, subscription=_invoice_subscription,
                         status=_one_of("status", ("draft", "open", "paid", "uncollectible",
                                                   "void"))),
    "invoiceitems": _listing("invoiceitem", customer=_CUSTOMER, invoice=_equal("invoice"),
                             pending=_flag(lambda d: d["invoice"] is None)),
    "payment_intents": _listing("payment_intent", customer=_CUSTOMER),
    "credit_notes": _listing("credit_note", invoice=_equal("invoice"), customer=_CUSTOMER),
    "events": _listing("event", type=_event_type, types=_event_types),
}  # fmt: skip
# GET /v1/customers/{id}/balance_transactions, within the customer
BALANCE_TRANSACTIONS = _listing("customer_balance_transaction", invoice=_equal("invoice"))


_REMEMBERED = 16  # the lists whose order a sandbox keeps, the last asked for


@dataclass(frozen=True)
class _Order:
    version: int  # the collection's (``Store.version_of``) when the order was taken
    ids: list[str]  # newest first
    at: dict[str, int]  # id -> its place in ``ids``
    since: list[int]  # each id's ``created``, negated: ascending, for ``bisect``

    def within(self, value: Any) -> tuple[int, int]:
        """The places [first, last) of the ids whose ``created`` the ``created`` filter
        (a moment, or ``gt``/``gte``/``lt``/``lte`` bounds, checked by ``_created``) keeps."""
        first, last = 0, len(self.ids)
        bounds = value if isinstance(value, dict) else {"gte": value, "lte": value}
        for bound, moment in bounds.items():
            at = -int(moment)
            if bound == "gte":
                last = min(last, bisect.bisect_right(self.since, at))
            elif bound == "gt":
                last = min(last, bisect.bisect_left(self.since, at))
            elif bound == "lt":
                first = max(first, bisect.bisect_right(self.since, at))
            else:  # lte
                first = max(first, bisect.bisect_left(self.since, at))
        return first, max(first, last)


class Pages:
    """The pages of the lists. Each list (a collection, a scope and the filter values but
    ``created``: its signature) is kept in order, newest first, with each id's place, until
    a document of the collection is written: a page then costs the page, not a scan and a
    sort of the collection and a search for the cursor, and a list of a million invoices is
    scanned once, not once a page. A ``created`` filter is a range of that order (found by
    bisection, as a database would use an index), not a list of its own."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._orders: dict[tuple[str, str], _Order] = {}

    def page(
        self, object_name: str, where: Where, params: dict[str, Any], url: str, scope: str = ""
    ) -> Doc:
        """One page of the ``object_name`` documents ``where`` keeps (the filters of
        ``params`` but ``created``, within ``scope``), and ``created`` keeps, as a Stripe
        list object."""
        size = limit(params)
        after, before = params.get("starting_after"), params.get("ending_before")
        if after and before:
            raise StripeError(
                400, "You may only specify one of these parameters: ending_before, starting_after."
            )
        filters = {k: v for k, v in params.items() if k not in PAGING and k != "created"}
        order = self._order(object_name, where, json.dumps([scope, filters], sort_keys=True))
        first, last = (
            (0, len(order.ids)) if "created" not in params else order.within(params["created"])
        )
        if after or before:
            cursor, name = (after, "starting_after") if after else (before, "ending_before")
            at = order.at.get(cursor) if isinstance(cursor, str) else None
            if at is None or not first <= at < last:
                raise no_such(object_name, str(cursor), param=name, status=400)
            start = at + 1 if after else max(first, at - size)
            stop = min(last, start + size) if after else at
            has_more = stop < last if after else start > first
        else:
            start, stop, has_more = first, min(first + size, last), first + size < last
        chosen = order.ids[start:stop]
        found = self.store.get_many(object_name, chosen)
        data = [found[id_] for id_ in chosen if id_ in found]
        return {"object": "list", "data": data, "has_more": has_more, "url": url}

    def _order(self, object_name: str, where: Where, signature: str) -> _Order:
        key = (object_name, signature)
        version = self.store.version_of(object_name)
        order = self._orders.pop(key, None)
        if order is None or order.version != version:
            kept = [(created(d), d["id"]) for d in self.store.each(object_name) if where(d)]
            kept.sort(reverse=True)
            ids = [id_ for _, id_ in kept]
            since = [-moment for moment, _ in kept]
            order = _Order(version, ids, {id_: n for n, id_ in enumerate(ids)}, since)
            if len(self._orders) >= _REMEMBERED:
                del self._orders[next(iter(self._orders))]  # the least lately asked for
        self._orders[key] = order
        return order
