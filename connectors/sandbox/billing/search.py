"""Stripe's Search Query Language, over the resources the sandbox searches: invoices
(``GET /v1/invoices/search``) and customers (``GET /v1/customers/search``).

A query is up to 10 clauses joined by spaces or ``AND``, or by ``OR`` (keywords case
insensitive), never both. A clause is a field, an operator and a value: ``field:'value'``
(single or double quotes, ``\\`` escapes the quote; a bare value without spaces or quotes
too), ``metadata['key']:'value'``, ``field~'value'`` (a substring of at least 3 characters),
or ``field>value`` (``>``, ``>=``, ``<``, ``<=``). A field matches by its type, as on Stripe::

    token    exact, case-sensitive                 invoice customer, status, subscription,
                                                   number; metadata
    string   exact or substring, case-insensitive  customer email, name, phone
    numeric  exact or compared, an integer         customer created

Refused with Stripe's 400 ``invalid_request_error``: a field Stripe does not search the
resource by, mixed ``AND``/``OR``, more than 10 clauses, anything unparsable, and the parts of
the language the sandbox does not implement (negation, ``null``, the resource's other fields,
an operator it does not take on a field): those say so rather than answer wrongly. Unlike
Stripe, whose search index trails writes by up to a minute, the sandbox searches what it
stores right now. Results are newest first, like a list, paged by an opaque ``next_page``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from connectors.sandbox.billing.documents import Doc
from connectors.sandbox.billing.errors import StripeError
from connectors.sandbox.billing.query import (
    Where,
    accept,
    created,
    invoice_subscription,
    limit,
    need,
)


class Kind(Enum):
    TOKEN = "token"
    STRING = "string"
    NUMERIC = "numeric"


_COMPARE: dict[str, Callable[[int, int], bool]] = {
    ":": operator.eq, ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}  # fmt: skip
OPERATORS = {Kind.TOKEN: {":"}, Kind.STRING: {":", "~"}, Kind.NUMERIC: set(_COMPARE)}
MIN_SUBSTRING = 3


@dataclass(frozen=True)
class Field:
    kind: Kind
    read: Callable[[Doc], Any]

    def where(self, op: str, value: str) -> Where:
        read = self.read
        if self.kind is Kind.NUMERIC:
            compare, number = _COMPARE[op], int(value)
            return lambda d: (v := read(d)) is not None and compare(int(v), number)
        if self.kind is Kind.TOKEN:
            return lambda d: bool(read(d) == value)
        wanted = value.lower()
        if op == "~":
            return lambda d: (v := read(d)) is not None and wanted in str(v).lower()
        return lambda d: (v := read(d)) is not None and str(v).lower() == wanted


def _words(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


@dataclass(frozen=True)
class Searchable:
    """A resource the sandbox searches: the fields it answers (and ``metadata['key']``,
    always, as a token) and all those Stripe searches it by."""

    plural: str
    object_name: str
    fields: Mapping[str, Field]
    stripe_fields: frozenset[str]

    @property
    def url(self) -> str:
        return f"/v1/{self.plural}/search"

    def answers(self) -> str:
        """What the sandbox answers, in words, for the refusal of what it does not."""
        exact = [*self.fields, "metadata['key']"]
        parts = [f"exact matches (field:'value') on {_words(exact)}"]
        kinds = {k: [n for n, f in self.fields.items() if f.kind is k] for k in Kind}
        if kinds[Kind.STRING]:
            parts.append(f"substrings (field~'value') of {_words(kinds[Kind.STRING])}")
        if kinds[Kind.NUMERIC]:
            parts.append(f"comparisons (field>1700000000) of {_words(kinds[Kind.NUMERIC])}")
        return "; ".join(parts)


def _token(key: str) -> Field:
    return Field(Kind.TOKEN, lambda d: d.get(key))


def _metadata(key: str) -> Field:
    return Field(Kind.TOKEN, lambda d: (d.get("metadata") or {}).get(key))


def _string(key: str) -> Field:
    return Field(Kind.STRING, lambda d: d.get(key))


INVOICES = Searchable(
    "invoices", "invoice",
    {"customer": _token("customer"), "status": _token("status"),
     "subscription": Field(Kind.TOKEN, invoice_subscription), "number": _token("number")},
    frozenset({"created", "currency", "customer", "last_finalization_error_code",
               "last_finalization_error_type", "metadata", "number", "receipt_number",
               "status", "subscription", "total"}),
)  # fmt: skip
CUSTOMERS = Searchable(
    "customers", "customer",
    {"created": Field(Kind.NUMERIC, created), "email": _string("email"),
     "name": _string("name"), "phone": _string("phone")},
    frozenset({"created", "email", "metadata", "name", "phone"}),
)  # fmt: skip
SEARCHES = {s.plural: s for s in (INVOICES, CUSTOMERS)}  # plural path -> its search
MAX_CLAUSES = 10

_QUOTED = r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\""""
_CLAUSE = re.compile(
    rf"(?P<field>[A-Za-z_][\w.]*)(?:\[(?P<key>{_QUOTED})\])?(?P<op>:|~|>=|<=|>|<)"
    rf"(?P<value>{_QUOTED}|[^\s'\"]+)"
)
_FIELD = re.compile(r"-?(?P<field>[A-Za-z_][\w.]*)")
_JOIN = re.compile(r"\s+(?:(?P<word>AND|OR)\s+)?", re.IGNORECASE)
_INTEGER = re.compile(r"-?\d+")
_UNPARSABLE = (
    "We were unable to parse your search query. Try using the format "
    '`metadata["key"]:"value"` to query for metadata or key:"value" to query for other fields.'
)


@dataclass(frozen=True)
class Search:
    clauses: tuple[Where, ...]
    any_of: bool  # joined by OR

    def matches(self, doc: Doc) -> bool:
        hits = (matches(doc) for matches in self.clauses)
        return any(hits) if self.any_of else all(hits)


def _unquote(token: str) -> str:
    if token[:1] in ("'", '"'):
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    return token


def _unimplemented(resource: Searchable, text: str, at: int) -> StripeError:
    fragment = text[at:].split()[0] if text[at:].strip() else text
    return StripeError(
        400,
        f"The sandbox does not implement `{fragment}` in a search query: it answers "
        f"{resource.answers()}, joined by AND or by OR.",
    )


def _clause(resource: Searchable, text: str, at: int) -> tuple[Where, int]:
    named = _FIELD.match(text, at)
    if named is None or named["field"].upper() in ("AND", "OR"):
        raise StripeError(400, _UNPARSABLE)
    name = named["field"]
    if name not in resource.stripe_fields:
        raise StripeError(
            400,
            f"Field `{name}` is an unsupported search field for resource `{resource.plural}`. "
            f"See http://stripe.com/docs/search#query-fields-for-{resource.plural} for a list "
            "of supported fields.",
        )
    match = _CLAUSE.match(text, at)
    if match is None:
        if text[at] == "-":  # negation is Stripe's, just not the sandbox's
            raise _unimplemented(resource, text, at)
        raise StripeError(400, _UNPARSABLE)
    key, op, raw = match["key"], match["op"], match["value"]
    if (name == "metadata") != (key is not None):
        raise StripeError(400, _UNPARSABLE)
    field = resource.fields.get(name) if key is None else _metadata(_unquote(key))
    if field is None or op not in OPERATORS[field.kind] or raw.lower() == "null":
        raise _unimplemented(resource, text, at)
    value = _unquote(raw)
    if field.kind is Kind.NUMERIC and not _INTEGER.fullmatch(value):
        raise StripeError(400, _UNPARSABLE)
    if op == "~" and len(value) < MIN_SUBSTRING:
        raise StripeError(
            400,
            f"A substring search (`~`) needs at least {MIN_SUBSTRING} characters: "
            f"`{match.group()}`.",
        )
    return field.where(op, value), match.end()


def parse(resource: Searchable, text: str) -> Search:
    text = text.strip()
    if not text:
        raise StripeError(400, _UNPARSABLE)
    clauses: list[Where] = []
    joins: set[str] = set()
    at = 0
    while True:
        clause, at = _clause(resource, text, at)
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
    return created(doc), str(doc["id"])


def _digest(resource: Searchable, query: str) -> str:
    return hashlib.sha256(f"{resource.plural}:{query}".encode()).hexdigest()[:16]


def _page_token(resource: Searchable, query: str, last: Doc) -> str:
    """The opaque ``next_page``: where the page ended, bound to the query it belongs to."""
    raw = json.dumps([_digest(resource, query), *_order(last)]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _after(resource: Searchable, query: str, token: str) -> tuple[int, str]:
    try:
        digest, created_at, id_ = json.loads(base64.urlsafe_b64decode(token.encode()))
        if digest == _digest(resource, query):
            return int(created_at), str(id_)
    except (binascii.Error, ValueError, TypeError):
        pass
    raise StripeError(400, f"Invalid page: {token}", param="page")


def search(
    resource: Searchable, select: Callable[[Where], list[Doc]], params: dict[str, Any]
) -> Doc:
    """One page of what ``select(predicate)`` finds for ``params["query"]``, newest first
    like a list, as a Stripe ``search_result``."""
    accept(params, {"query", "limit", "page", "expand"})
    text = str(need(params, "query"))
    query = parse(resource, text)
    size = limit(params)
    found = sorted(select(query.matches), key=_order, reverse=True)
    if params.get("page"):
        after = _after(resource, text, str(params["page"]))
        found = [d for d in found if _order(d) < after]
    data, has_more = found[:size], len(found) > size
    return {
        "object": "search_result",
        "data": data,
        "has_more": has_more,
        "next_page": _page_token(resource, text, data[-1]) if has_more else None,
        "url": resource.url,
    }
