"""The SOQL the CRM sandbox answers, and the query cursors that page its results::

    SELECT f, ... FROM Account|Task|User
    [WHERE condition [AND condition ...]]
    [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]

    condition: f =|!=|<>|<|<=|>|>= v,  f [NOT] IN (v, ...),  f LIKE 'pattern'

read by a small tokenizer; a field is one of the sObject's (``schema``) or, through a
relationship, one of the record it references (``Owner.Name``). Anything else is
MALFORMED_QUERY, an unknown field INVALID_FIELD, a literal of the wrong type INVALID_FIELD,
a long text field (a Task's Description) filtered or sorted on INVALID_FIELD, a malformed
id literal or an operator the field's type does not take INVALID_QUERY_FILTER_OPERATOR, as
Salesforce answers them.

As in SOQL: text compares and sorts case-insensitively, ids as given (a 15-character id
as the prefix of the 18-character one); ``!=`` and ``NOT IN`` match nulls, a range never
does; in LIKE, ``%`` is any run of characters and ``_`` any one (``\\%`` and ``\\_``
themselves); nulls sort first ascending and last descending unless NULLS says otherwise.

A result longer than a batch is kept as a cursor (a snapshot, as in Salesforce) that
``nextRecordsUrl`` pages through; a user keeps at most ``MAX_CURSORS`` open, the oldest
dropped beyond that.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cmp_to_key
from typing import Any

from connectors.sandbox.crm import schema
from connectors.sandbox.crm.documents import ID, Doc, api_path, ms, same_id, utc
from connectors.sandbox.crm.errors import SalesforceError, malformed_query, no_such_column
from connectors.sandbox.crm.schema import FieldType

MAX_CURSORS = 10
MAX_OFFSET = 2000

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^'\\]|\\.)*')"
    r"|(?P<datetime>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d))"
    r"|(?P<date>\d{4}-\d\d-\d\d)|(?P<number>-?\d+(?:\.\d+)?)"
    r"|(?P<word>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)|(?P<op><=|>=|<>|!=|<|>|=)|(?P<punct>[(),]))"
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
_TYPE_NAMES = {FieldType.DATETIME: "dateTime", FieldType.REFERENCE: "id"}  # as errors say them

Token = tuple[str, str]  # kind, text


class Operator(StrEnum):
    EQUAL = "="
    NOT_EQUAL = "!="  # also written <>
    LESS = "<"
    LESS_OR_EQUAL = "<="
    GREATER = ">"
    GREATER_OR_EQUAL = ">="
    IN = "IN"
    NOT_IN = "NOT IN"
    LIKE = "LIKE"

    @property
    def ranged(self) -> bool:
        return self in (Operator.LESS, Operator.LESS_OR_EQUAL, Operator.GREATER,
                        Operator.GREATER_OR_EQUAL)  # fmt: skip


@dataclass(frozen=True)
class Condition:
    field: str
    type: FieldType
    op: Operator
    values: tuple[Any, ...]  # the literals; for LIKE, the compiled pattern


@dataclass
class Soql:
    sobject: str
    fields: list[str]
    where: list[Condition] = field(default_factory=list)
    order: list[tuple[str, bool, bool]] = field(default_factory=list)  # field, desc, nulls first
    limit: int | None = None
    offset: int = 0


def _tokens(soql: str) -> list[Token]:
    out, pos, text = [], 0, soql.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            raise malformed_query(f"unexpected token: {text[pos:].split()[0]!r}")
        out.append((match.lastgroup, match.group(match.lastgroup)))
        pos = match.end()
    return out


def _field(sobject: schema.SObject, name: str) -> tuple[str, schema.Field]:
    """The field ``name`` names, as (its name as Salesforce spells it, the field); a
    dotted name follows a relationship to the record it references."""
    head, dot, tail = name.partition(".")
    found: schema.Field | None
    if dot:
        via = sobject.relationship(head)
        target = schema.sobject(via.reference_to or "") if via else None
        found = target.field(tail) if target else None
        if via is not None and found is not None:
            return f"{via.relationship}.{found.name}", found
    else:
        found = sobject.field(name)
        if found is not None:
            return found.name, found
    raise no_such_column(name, sobject.name)


def _type_error(name: str, want: FieldType, quoted: bool) -> SalesforceError:
    spelled = _TYPE_NAMES.get(want, want.value)
    if want.textual:
        hint = "" if quoted else " and should be enclosed in quotes"
    else:
        hint = " and should not be enclosed in quotes" if quoted else ""
    message = f"value of filter criterion for field '{name}' must be of type {spelled}{hint}"
    return SalesforceError(400, "INVALID_FIELD", message)


def _escaped(char: str) -> str:
    if char not in _ESCAPES:
        raise malformed_query(f"invalid escape sequence: \\{char}")
    return _ESCAPES[char]


def _unescape(text: str) -> str:
    """A string literal's text, its escapes resolved."""
    return re.sub(r"\\(.)", lambda m: _escaped(m[1]), text[1:-1])


def _literal(name: str, want: FieldType, token: Token) -> Any:
    kind, text = token
    if kind == "word" and text.lower() == "null":
        return None
    if kind == "word" and text.lower() in ("true", "false"):
        if want is FieldType.BOOLEAN:
            return text.lower() == "true"
        raise _type_error(name, want, quoted=False)
    if kind == "string" and want.textual:
        value = _unescape(text)
        if want.identifier and not ID.fullmatch(value):
            raise SalesforceError(
                400, "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {value}"
            )
        return value
    if (kind, want) == ("date", FieldType.DATE):
        return text
    if (kind, want) == ("number", FieldType.DOUBLE):
        return float(text)
    if (kind, want) == ("datetime", FieldType.DATETIME):
        return ms(utc(text))
    if kind in ("word", "punct", "op", "end"):
        raise malformed_query(f"unexpected token: {text!r}")
    raise _type_error(name, want, quoted=kind == "string")


def _like(name: str, want: FieldType, token: Token) -> re.Pattern[str]:
    kind, text = token
    if kind != "string":
        if kind in ("word", "punct", "op", "end"):
            raise malformed_query(f"unexpected token: {text!r}")
        raise _type_error(name, want, quoted=False)
    parts = []
    for escaped, wildcard, char in re.findall(r"\\(.)|([%_])|(.)", text[1:-1], re.DOTALL):
        if wildcard:
            parts.append(".*" if wildcard == "%" else ".")
        else:
            parts.append(re.escape(char or (escaped if escaped in "%_" else _escaped(escaped))))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


class _Parser:
    def __init__(self, soql: str) -> None:
        self.tokens, self.pos = _tokens(soql), 0

    def token(self) -> Token:
        self.pos += 1
        return self.tokens[self.pos - 1] if self.pos <= len(self.tokens) else ("end", "<EOF>")

    def take(self, kind: str, text: str | None = None) -> str:
        got_kind, got = self.token()
        if got_kind != kind or (text and got.upper() != text):
            raise malformed_query(f"unexpected token: {got!r}")
        return got

    def accept(self, text: str) -> bool:
        if self.pos < len(self.tokens) and self.tokens[self.pos][0] in ("word", "punct"):
            if self.tokens[self.pos][1].upper() == text:
                self.pos += 1
                return True
        return False

    def number(self) -> int:
        count = self.take("number")
        if not count.isdigit():
            raise malformed_query(f"unexpected token: {count!r}")
        return int(count)

    def query(self) -> Soql:
        self.take("word", "SELECT")
        names = [self.take("word")]
        while self.accept(","):
            names.append(self.take("word"))
        self.take("word", "FROM")
        named = self.take("word")
        sobject = schema.sobject(named)
        if sobject is None:
            raise SalesforceError(400, "INVALID_TYPE", f"sObject type '{named}' is not supported.")
        fields = [_field(sobject, n)[0] for n in names]
        twice = next((f for i, f in enumerate(fields) if f in fields[:i]), None)
        if twice is not None:
            raise malformed_query(f"duplicate field selected: {twice}")
        query = Soql(sobject.name, fields)
        if self.accept("WHERE"):
            query.where.append(self.condition(sobject))
            while self.accept("AND"):
                query.where.append(self.condition(sobject))
        if self.accept("ORDER"):
            self.take("word", "BY")
            query.order.append(self.ordering(sobject))
            while self.accept(","):
                query.order.append(self.ordering(sobject))
        if self.accept("LIMIT"):
            query.limit = self.number()
        if self.accept("OFFSET"):
            query.offset = self.number()
            if query.offset > MAX_OFFSET:
                message = f"Maximum SOQL offset allowed is {MAX_OFFSET}"
                raise SalesforceError(400, "NUMBER_OUTSIDE_VALID_RANGE", message)
        if self.pos < len(self.tokens):
            raise malformed_query(f"unexpected token: {self.token()[1]!r}")
        return query

    def ordering(self, sobject: schema.SObject) -> tuple[str, bool, bool]:
        name, found = _field(sobject, self.take("word"))
        _long_text(name, found, "sorted")
        descending = self.accept("DESC") or (self.accept("ASC") and False)
        nulls_first = not descending
        if self.accept("NULLS"):
            nulls_first = self.accept("FIRST")
            if not nulls_first:
                self.take("word", "LAST")
        return name, descending, nulls_first

    def condition(self, sobject: schema.SObject) -> Condition:
        name, found = _field(sobject, self.take("word"))
        _long_text(name, found, "filtered")
        want = found.type
        kind, text = self.token()
        if kind == "op":
            op = Operator("!=" if text == "<>" else text)
            if op.ranged and want is FieldType.BOOLEAN:
                raise _no_operator(want)
            return Condition(name, want, op, (_literal(name, want, self.token()),))
        if kind == "word" and text.upper() == "LIKE":
            if not want.textual or want.identifier:
                raise _no_operator(want)
            return Condition(name, want, Operator.LIKE, (_like(name, want, self.token()),))
        negated = kind == "word" and text.upper() == "NOT"
        if negated:
            kind, text = self.token()
        if kind == "word" and text.upper() == "IN":
            self.take("punct", "(")
            values = [_literal(name, want, self.token())]
            while self.accept(","):
                values.append(_literal(name, want, self.token()))
            self.take("punct", ")")
            op = Operator.NOT_IN if negated else Operator.IN
            return Condition(name, want, op, tuple(values))
        raise malformed_query(f"unexpected token: {text!r}")


def _long_text(name: str, found: schema.Field, how: str) -> None:
    if found.type is FieldType.TEXTAREA:
        message = f"field '{name}' can not be {how} in a query call"
        raise SalesforceError(400, "INVALID_FIELD", message)


def _no_operator(want: FieldType) -> SalesforceError:
    message = f"invalid operator on {_TYPE_NAMES.get(want, want.value)} field"
    return SalesforceError(400, "INVALID_QUERY_FILTER_OPERATOR", message)


def parse_soql(soql: str) -> Soql:
    return _Parser(soql).query()


def _comparable(kind: FieldType, value: Any) -> Any:
    # SOQL compares text case-insensitively; record ids are compared as given.
    text = kind.textual and not kind.identifier
    return value.casefold() if text and isinstance(value, str) else value


def _equal(kind: FieldType, value: Any, literal: Any) -> bool:
    if kind.identifier and isinstance(value, str) and isinstance(literal, str):
        return same_id(value, literal)
    return bool(_comparable(kind, value) == _comparable(kind, literal))


def holds(condition: Condition, value: Any) -> bool:
    """Whether a record whose field holds ``value`` meets ``condition``."""
    op, kind, literals = condition.op, condition.type, condition.values
    if op in (Operator.EQUAL, Operator.IN):
        return any(_equal(kind, value, literal) for literal in literals)
    if op in (Operator.NOT_EQUAL, Operator.NOT_IN):
        return not any(_equal(kind, value, literal) for literal in literals)
    if op is Operator.LIKE:
        return isinstance(value, str) and literals[0].fullmatch(value) is not None
    literal = literals[0]
    if value is None or literal is None:
        return False
    a, b = _comparable(kind, value), _comparable(kind, literal)
    return bool({Operator.LESS: a < b, Operator.LESS_OR_EQUAL: a <= b,
                 Operator.GREATER: a > b, Operator.GREATER_OR_EQUAL: a >= b}[op])  # fmt: skip


def select(
    query: Soql, fetch: Callable[[Callable[[Doc], bool]], list[Doc]],
    value: Callable[[Doc, str], Any],
) -> list[Doc]:  # fmt: skip
    """The documents ``query`` selects, in its order, past its offset and up to its limit:
    ``fetch(where)`` gives the stored documents that match, ``value(doc, field)`` a
    field's value."""

    def matches(doc: Doc) -> bool:
        return all(holds(c, value(doc, c.field)) for c in query.where)

    def compare(a: Doc, b: Doc) -> int:
        for name, descending, nulls_first in query.order:
            x, y = (_comparable(FieldType.STRING, value(d, name)) for d in (a, b))
            if x == y:
                continue
            if x is None or y is None:
                return (-1 if x is None else 1) * (1 if nulls_first else -1)
            return (-1 if x < y else 1) * (-1 if descending else 1)
        return 0

    docs = fetch(matches)
    if query.order:
        docs.sort(key=cmp_to_key(compare))
    docs = docs[query.offset :]
    return docs if query.limit is None else docs[: query.limit]


class Cursors:
    def __init__(self) -> None:
        self._open: OrderedDict[str, list[Doc]] = OrderedDict()
        self._locators = 0

    def first(self, rows: list[Doc], size: int, version: int) -> Doc:
        return self._batch(None, rows, 0, size, version)

    def more(self, token: str, size: int, version: int) -> Doc:
        locator, _, offset = token.rpartition("-")
        rows = self._open.get(locator)
        if rows is None or not offset.isdigit():
            raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._batch(locator, rows, int(offset), size, version)

    def _batch(
        self, locator: str | None, rows: list[Doc], offset: int, size: int, version: int
    ) -> Doc:
        end = offset + size
        body: Doc = {"totalSize": len(rows), "done": end >= len(rows)}
        if not body["done"]:
            if locator is None:
                self._locators += 1
                locator = f"01g{self._locators:012d}AAA"
                self._open[locator] = rows
                while len(self._open) > MAX_CURSORS:
                    self._open.popitem(last=False)
            body["nextRecordsUrl"] = f"{api_path(version)}/query/{locator}-{end}"
        body["records"] = rows[offset:end]
        return body
