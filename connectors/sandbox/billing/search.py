"""Stripe's Search Query Language for ``GET /v1/invoices/search``: the subset the sandbox
answers, and search result pages.

Answered: exact-match clauses ``field:'value'`` (single or double quotes, ``\\`` escapes the
quote; a bare value without spaces or quotes too) on ``customer``, ``status``,
``subscription`` and ``number``, and ``metadata['key']:'value'``; clauses joined by spaces
or ``AND``, or by ``OR`` (keywords case insensitive), never both in one query, at most 10.
Refused with Stripe's 400 ``invalid_request_error``: a field Stripe does not search invoices
by, mixed ``AND``/``OR``, more than 10 clauses, anything unparsable, and the parts of the
language the sandbox does not implement (negation, ``~``, numeric comparators, the other
invoice fields): those say so rather than answer wrongly.

Unlike Stripe, whose search index trails writes by up to a minute, the sandbox searches
what it stores right now.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connectors.sandbox.billing.documents import Doc
from connectors.sandbox.billing.listing import invoice_subscription
from connectors.sandbox.billing.params import ApiError, accept, integer, need

URL = "/v1/invoices/search"
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
class Query:
    clauses: tuple[Clause, ...]
    any_of: bool  # joined by OR

    def matches(self, doc: Doc) -> bool:
        hits = (c.matches(doc) for c in self.clauses)
        return any(hits) if self.any_of else all(hits)


def _unquote(token: str) -> str:
    if token[:1] in ("'", '"'):
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    return token


def _unimplemented(text: str, at: int) -> ApiError:
    fragment = text[at:].split()[0] if text[at:].strip() else text
    return ApiError(
        400,
        f"The sandbox does not implement `{fragment}` in a search query: it answers exact "
        "matches (field:'value') on customer, status, subscription, number and "
        "metadata['key'], joined by AND or by OR.",
    )


def _clause(text: str, at: int) -> tuple[Clause, int]:
    named = _FIELD.match(text, at)
    if named is None or named["field"].upper() in ("AND", "OR"):
        raise ApiError(400, _UNPARSABLE)
    field = named["field"]
    if field not in STRIPE_FIELDS:
        raise ApiError(
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
        raise ApiError(400, _UNPARSABLE)
    key, value = match["key"], match["value"]
    if (field == "metadata") != (key is not None):
        raise ApiError(400, _UNPARSABLE)
    if (field not in FIELDS and field != "metadata") or value.lower() == "null":
        raise _unimplemented(text, at)
    return Clause(field, _unquote(key) if key else None, _unquote(value)), match.end()


def parse(text: str) -> Query:
    text = text.strip()
    if not text:
        raise ApiError(400, _UNPARSABLE)
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
            raise ApiError(400, _UNPARSABLE)
        joins.add((join["word"] or "AND").upper())
        at = join.end()
    if len(joins) > 1:
        raise ApiError(
            400,
            "A search query cannot combine AND and OR: join every clause with the same one "
            "(a space means AND).",
        )
    if len(clauses) > MAX_CLAUSES:
        raise ApiError(
            400,
            f"A search query can combine at most {MAX_CLAUSES} clauses; this one has "
            f"{len(clauses)}.",
        )
    return Query(tuple(clauses), any_of=joins == {"OR"})


def _token(query: str, last: Doc) -> str:
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
    raise ApiError(400, f"Invalid page: {token}", param="page")


def _order(doc: Doc) -> tuple[int, str]:
    return int(doc.get("created", 0)), str(doc["id"])


def results(select: Callable[[Callable[[Doc], bool]], list[Doc]], params: dict[str, Any]) -> Doc:
    """One page of the invoices ``select(predicate)`` finds for ``params["query"]``, newest
    first like a list, as a Stripe ``search_result``."""
    accept(params, {"query", "limit", "page", "expand"})
    text = str(need(params, "query"))
    query = parse(text)
    limit = integer(params, "limit", 10)
    if limit is None or not 1 <= limit <= 100:
        raise ApiError(400, "Invalid limit: must be between 1 and 100", param="limit")
    found = sorted(select(query.matches), key=_order, reverse=True)
    if params.get("page"):
        after = _after(text, str(params["page"]))
        found = [d for d in found if _order(d) < after]
    data, has_more = found[:limit], len(found) > limit
    return {
        "object": "search_result",
        "data": data,
        "has_more": has_more,
        "next_page": _token(text, data[-1]) if has_more else None,
        "url": URL,
    }
