"""The SOQL the CRM sandbox answers, and the query cursors that page its results::

    SELECT f, ... FROM Account|User [WHERE f = v | f IN (v, ...) [AND ...]]
    [ORDER BY f [ASC|DESC]] [LIMIT n]

read by a small tokenizer. Anything else is MALFORMED_QUERY, an unknown field INVALID_FIELD
and a malformed id literal INVALID_QUERY_FILTER_OPERATOR, as Salesforce answers them. Text
compares case-insensitively, nulls sort first ascending and last descending.

A result longer than a batch is kept as a cursor (a snapshot, as in Salesforce) that
``nextRecordsUrl`` pages through; a user keeps at most ``MAX_CURSORS`` open, the oldest
dropped beyond that.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connectors.sandbox.crm.documents import API, ID, TYPES, Doc, ms, utc
from connectors.sandbox.crm.errors import SalesforceError

MAX_CURSORS = 10

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^'\\]|\\.)*')"
    r"|(?P<datetime>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d))"
    r"|(?P<date>\d{4}-\d\d-\d\d)|(?P<number>-?\d+(?:\.\d+)?)"
    r"|(?P<word>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)|(?P<punct>[(),=]))"
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


@dataclass
class Soql:
    sobject: str
    fields: list[str]
    where: list[tuple[str, list[Any]]]
    order: tuple[str, bool] | None  # field, descending
    limit: int | None


def _malformed(message: str) -> SalesforceError:
    return SalesforceError(400, "MALFORMED_QUERY", message)


def _tokens(soql: str) -> list[tuple[str, str]]:
    out, pos, text = [], 0, soql.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            raise _malformed(f"unexpected token: {text[pos:].split()[0]!r}")
        out.append((match.lastgroup, match.group(match.lastgroup)))
        pos = match.end()
    return out


def _field(sobject: str, name: str) -> str:
    for known in TYPES[sobject]:
        if known.lower() == name.lower():
            return known
    raise SalesforceError(400, "INVALID_FIELD", f"No such column '{name}' on entity '{sobject}'")


def _unescape(match: re.Match[str]) -> str:
    if match.group(1) not in _ESCAPES:
        raise _malformed(f"invalid escape sequence: \\{match.group(1)}")
    return _ESCAPES[match.group(1)]


def _literal(sobject: str, field: str, token: tuple[str, str]) -> Any:
    kind, text = token
    want = TYPES[sobject][field]
    if kind == "word" and text.lower() in ("null", "true", "false"):
        if text.lower() == "null":
            return None
        if want == "boolean":
            return text.lower() == "true"
    elif kind == "string" and want in ("id", "string"):
        value = re.sub(r"\\(.)", _unescape, text[1:-1])
        if want == "id" and not ID.fullmatch(value):
            raise SalesforceError(
                400, "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {value}"
            )
        return value
    elif (kind, want) in (("date", "date"), ("number", "double"), ("datetime", "datetime")):
        return text if kind == "date" else float(text) if kind == "number" else ms(utc(text))
    elif kind in ("word", "punct", "end"):
        raise _malformed(f"unexpected token: {text!r}")
    quoted = " and should not be enclosed in quotes" if kind == "string" else ""
    raise SalesforceError(
        400,
        "INVALID_FIELD",
        f"value of filter criterion for field '{field}' must be of type {want}{quoted}",
    )


def parse_soql(soql: str) -> Soql:
    tokens, pos = _tokens(soql), 0

    def token() -> tuple[str, str]:
        nonlocal pos
        pos += 1
        return tokens[pos - 1] if pos <= len(tokens) else ("end", "<EOF>")

    def take(kind: str, text: str | None = None) -> str:
        got_kind, got = token()
        if got_kind != kind or (text and got.upper() != text):
            raise _malformed(f"unexpected token: {got!r}")
        return got

    def accept(text: str) -> bool:
        nonlocal pos
        if pos < len(tokens) and tokens[pos][0] in ("word", "punct"):
            if tokens[pos][1].upper() == text:
                pos += 1
                return True
        return False

    take("word", "SELECT")
    names = [take("word")]
    while accept(","):
        names.append(take("word"))
    take("word", "FROM")
    named = take("word")
    sobject = next((s for s in TYPES if s.lower() == named.lower()), None)
    if sobject is None:
        raise SalesforceError(400, "INVALID_TYPE", f"sObject type '{named}' is not supported.")
    query = Soql(sobject, [_field(sobject, n) for n in names], [], None, None)
    if accept("WHERE"):
        while True:
            field = _field(sobject, take("word"))
            if accept("="):
                values = [_literal(sobject, field, token())]
            elif accept("IN"):
                take("punct", "(")
                values = [_literal(sobject, field, token())]
                while accept(","):
                    values.append(_literal(sobject, field, token()))
                take("punct", ")")
            else:
                raise _malformed(f"unexpected token: {token()[1]!r}")
            query.where.append((field, values))
            if not accept("AND"):
                break
    if accept("ORDER"):
        take("word", "BY")
        field = _field(sobject, take("word"))
        descending = accept("DESC")
        query.order = (field, descending or (accept("ASC") and False))
    if accept("LIMIT"):
        count = take("number")
        if not count.isdigit():
            raise _malformed(f"unexpected token: {count!r}")
        query.limit = int(count)
    if pos < len(tokens):
        raise _malformed(f"unexpected token: {token()[1]!r}")
    return query


def soql_equal(kind: str, value: Any, literal: Any) -> bool:
    # SOQL compares text case-insensitively; record ids are compared as given.
    if kind == "string" and isinstance(value, str) and isinstance(literal, str):
        return value.casefold() == literal.casefold()
    return bool(value == literal)


def select(
    query: Soql, fetch: Callable[[Callable[[Doc], bool]], list[Doc]],
    value: Callable[[Doc, str], Any],
) -> list[Doc]:  # fmt: skip
    """The documents ``query`` selects, in its order and up to its limit: ``fetch(where)``
    gives the stored documents that match, ``value(doc, field)`` a field's value."""
    types = TYPES[query.sobject]

    def matches(doc: Doc) -> bool:
        return all(
            any(soql_equal(types[f], value(doc, f), v) for v in values) for f, values in query.where
        )

    docs = fetch(matches)
    if query.order:
        field, descending = query.order

        def key(doc: Doc) -> tuple[bool, Any]:
            found = value(doc, field)
            if found is None:  # nulls first ascending, last descending, as in SOQL
                return (False, "")
            return (True, found.casefold() if isinstance(found, str) else found)

        docs.sort(key=key, reverse=descending)
    return docs if query.limit is None else docs[: query.limit]


class Cursors:
    def __init__(self) -> None:
        self._open: OrderedDict[str, list[Doc]] = OrderedDict()
        self._locators = 0

    def first(self, rows: list[Doc], size: int) -> Doc:
        return self._batch(None, rows, 0, size)

    def more(self, token: str, size: int) -> Doc:
        locator, _, offset = token.rpartition("-")
        rows = self._open.get(locator)
        if rows is None or not offset.isdigit():
            raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._batch(locator, rows, int(offset), size)

    def _batch(self, locator: str | None, rows: list[Doc], offset: int, size: int) -> Doc:
        end = offset + size
        body: Doc = {"totalSize": len(rows), "done": end >= len(rows)}
        if not body["done"]:
            if locator is None:
                self._locators += 1
                locator = f"01g{self._locators:012d}AAA"
                self._open[locator] = rows
                while len(self._open) > MAX_CURSORS:
                    self._open.popitem(last=False)
            body["nextRecordsUrl"] = f"{API}/query/{locator}-{end}"
        body["records"] = rows[offset:end]
        return body
