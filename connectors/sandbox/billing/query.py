"""What a Stripe request asks for: its parameters, the filters and cursor pages of the list
endpoints, and the Search Query Language of ``GET /v1/invoices/search``.

Parameters are form-encoded bodies and query strings with bracket notation
(``metadata[opsgraph_id]=x``, ``expand[0]=data.product``, ``expand[]=product``,
``items[0][price]=p``); ``parse_params`` turns them into nested dicts and lists.

Lists are newest first (``created``, then id, descending). ``starting_after=<id>`` gives the
page after ``id``; ``ending_before=<id>`` the page just before it, still newest first, with
``has_more`` meaning more remain in that direction, as on Stripe.

Search answers exact-match clauses ``field:'value'`` (single or double quotes, ``\\``
escapes the quote; a bare value without spaces or quotes too) on ``customer``, ``status``,
``subscription`` and ``number``, and ``metadata['key']:'value'``; clauses joined by spaces
or ``AND``, or by ``OR`` (keywords case insensitive), never both in one query, at most 10.
Refused with Stripe's 400 ``invalid_request_error``: a field Stripe does not search invoices
by, mixed ``AND``/``OR``, more than 10 clauses, anything unparsable, and the parts of the
language the sandbox does not implement (negation, ``~``, numeric comparators, the other
invoice fields): those say so rather than answer wrongly. Unlike Stripe, whose search index
trails writes by up to a minute, the sandbox searches what it stores right now.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from connectors.sandbox.billing.documents import Doc
from connectors.sandbox.billing.errors import StripeError, no_such

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


def accept(params: dict[str, Any], allowed: Iterable[str]) -> None:
    for name in params:
        if name not in allowed:
            raise StripeError(
                400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name
            )


def _missing(name: str) -> StripeError:
    return StripeError(
        400, f"Missing required param: {name}.", code="parameter_missing", param=name
    )


def need(params: dict[str, Any], name: str) -> Any:
    if params.get(name) in (None, ""):
        raise _missing(name)
    return params[name]


def integer(params: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StripeError(400, f"Invalid integer: {value}", param=name) from None


def needed_integer(params: dict[str, Any], name: str) -> int:
    value = integer(params, name)
    if value is None:
        raise _missing(name)
    return value


def boolean(params: dict[str, Any], name: str) -> bool | None:
    value = params.get(name)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise StripeError(400, f"Invalid boolean: {value}", param=name)
    return bool(value == "true")


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


def _limit(params: dict[str, Any]) -> int:
    limit = integer(params, "limit", 10)
    if limit is None or not 1 <= limit <= 100:
        raise StripeError(400, "Invalid limit: must be between 1 and 100", param="limit")
    return limit


# -- lists ----------------------------------------------------------------------------------

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
    limit = _limit(params)
    docs = sorted(docs, key=lambda d: (d.get("created", d.get("date", 0)), d["id"]), reverse=True)
    after, before = params.get("starting_after"), params.get("ending_before")
    if after and before:
        raise StripeError(
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


# -- search ---------------------------------------------------------------------------------

SEARCH_URL = "/v1/invoices/search"
MAX_CLAUSES = 10
FIELDS: dict[str, Callable[[Doc], Any]] = {
    "customer": lambda d: d["customer"],
    "status": lambda d: d["status"],
    "subscription": invoice_subscription,
    "number": lambda d: d.get("number"),
}
# What Stripe searches invoices by; those the sandbox lacks are refused as unimplemented.
STRIPE_FIELDS = {
    "created", "currency", "customer", "last_finalization_error_code",
    "last_finalization_error_type", "metadata", "number", "receipt_number", "status",
    "subscription", "total",
}  # fmt: skip

_QUOTED = r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\""""
_CLAUSE = re.compile(
    rf"(?P<field>[A-Za-z_][\w.]*)(?:\[(?P<key>{_QUOTED})\])?:(?P<value>{_QUOTED}|[^\s'\"]+)"
)
_FIELD = re.compile(r"-?(?P<field>[A-Za-z_][\w.]*)")
_JOIN = re.compile(r"\s+(?:(?P<word>AND|OR)\s+)?", re.IGNORECASE)
_UNPARSABLE = (
    "We were unable to parse your search query. Try using the format "
    '`metadata["key"]:"value"` to query for metadata or key:"value" to query for other fields.'
)


@dataclass(frozen=True)
class Clause:
    field: str
    key: str | None  # the metadata key, for ``metadata[...]``
    value: str

    def matches(self, doc: Doc) -> bool:
        if self.key is not None:
            return bool((doc.get("metadata") or {}).get(self.key) == self.value)
        return bool(FIELDS[self.field](doc) == self.value)


@dataclass(frozen=True)
class Search:
    clauses: tuple[Clause, ...]
    any_of: bool  # joined by OR

    def matches(self, doc: Doc) -> bool:
        hits = (c.matches(doc) for c in self.clauses)
        return any(hits) if self.any_of else all(hits)


def _unquote(token: str) -> str:
    if token[:1] in ("'", '"'):
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    return token


def _unimplemented(text: str, at: int) -> StripeError:
    fragment = text[at:].split()[0] if text[at:].strip() else text
    return StripeError(
        400,
        f"The sandbox does not implement `{fragment}` in a search query: it answers exact "
        "matches (field:'value') on customer, status, subscription, number and "
        "metadata['key'], joined by AND or by OR.",
    )


def _clause(text: str, at: int) -> tuple[Clause, int]:
    named = _FIELD.match(text, at)
    if named is None or named["field"].upper() in ("AND", "OR"):
        raise StripeError(400, _UNPARSABLE)
    field = named["field"]
    if field not in STRIPE_FIELDS:
        raise StripeError(
            400,
            f"Field `{field}` is an unsupported search field for resource `invoices`. See "
            "http://stripe.com/docs/search#query-fields-for-invoices for a list of supported "
            "fields.",
        )
    match = _CLAUSE.match(text, at)
    if match is None:
        # Negation and the comparators are Stripe's, just not the sandbox's.
        if text[at] == "-" or text[named.end() : named.end() + 1] in ("~", "<", ">"):
            raise _unimplemented(text, at)
        raise StripeError(400, _UNPARSABLE)
    key, value = match["key"], match["value"]
    if (field == "metadata") != (key is not None):
        raise StripeError(400, _UNPARSABLE)
    if (field not in FIELDS and field != "metadata") or value.lower() == "null":
        raise _unimplemented(text, at)
    return Clause(field, _unquote(key) if key else None, _unquote(value)), match.end()


def parse_search(text: str) -> Search:
    text = text.strip()
    if not text:
        raise StripeError(400, _UNPARSABLE)
    clauses: list[Clause] = []
    joins: set[str] = set()
    at = 0
    while True:
        clause, at = _clause(text, at)
        clauses.append(clause)
        if at == len(text):
            break
        join = _JOIN.match(text, at)
        if join is None:
            raise StripeError(400, _UNPARSABLE)
        joins.add((join["word"] or "AND").upper())
        at = join.end()
    if len(joins) > 1:
        raise StripeError(
            400,
            "A search query cannot combine AND and OR: join every clause with the same one "
            "(a space means AND).",
        )
    if len(clauses) > MAX_CLAUSES:
        raise StripeError(
            400,
            f"A search query can combine at most {MAX_CLAUSES} clauses; this one has "
            f"{len(clauses)}.",
        )
    return Search(tuple(clauses), any_of=joins == {"OR"})


def _order(doc: Doc) -> tuple[int, str]:
    return int(doc.get("created", 0)), str(doc["id"])


def _page_token(query: str, last: Doc) -> str:
    """The opaque ``next_page``: where the page ended, bound to the query it belongs to."""
    digest = hashlib.sha256(query.encode()).hexdigest()[:16]
    raw = json.dumps([digest, _order(last)[0], last["id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _after(query: str, token: str) -> tuple[int, str]:
    try:
        digest, created, id_ = json.loads(base64.urlsafe_b64decode(token.encode()))
        if digest == hashlib.sha256(query.encode()).hexdigest()[:16]:
            return int(created), str(id_)
    except (binascii.Error, ValueError, TypeError):
        pass
    raise StripeError(400, f"Invalid page: {token}", param="page")


def search(select: Callable[[Callable[[Doc], bool]], list[Doc]], params: dict[str, Any]) -> Doc:
    """One page of the invoices ``select(predicate)`` finds for ``params["query"]``, newest
    first like a list, as a Stripe ``search_result``."""
    accept(params, {"query", "limit", "page", "expand"})
    text = str(need(params, "query"))
    query = parse_search(text)
    limit = _limit(params)
    found = sorted(select(query.matches), key=_order, reverse=True)
    if params.get("page"):
        after = _after(text, str(params["page"]))
        found = [d for d in found if _order(d) < after]
    data, has_more = found[:limit], len(found) > limit
    return {
        "object": "search_result",
        "data": data,
        "has_more": has_more,
        "next_page": _page_token(text, data[-1]) if has_more else None,
        "url": SEARCH_URL,
    }
