"""The SuiteQL the ERP sandbox understands: a small subset, parsed properly and refused
loudly outside it (``QueryError``, which the sandbox answers with NetSuite's 400
``INVALID_PARAMETER`` body)::

    SELECT * | item [, item ...]          item: ref [AS alias]
    FROM customer | transaction | subsidiary | currency | change
    [WHERE cond [AND cond ...]]           cond: ref = literal
                                                | ref IN (literal [, literal ...])
                                                | ref (> | >= | < | <=) bound
    [ORDER BY column [ASC | DESC]]        ref: column | BUILTIN.DF(column)
                                          bound: number | TO_DATE('2026-11-01', 'YYYY-MM-DD')

Literals are 'strings' (a quote doubled inside) or plain numbers. Identifiers are
case-insensitive and come back lowercase, as NetSuite returns them. Every value comes back as
a string, numbers included, and a column whose value is null is left out of the item.
``BUILTIN.DF`` gives a reference's display name; an unaliased one is named ``exprN``. A
comparison with a number keeps the rows whose value is a number (ids are digits, so ``id >
5000`` and ``ORDER BY id`` go by number, as NetSuite's integer ids do); with ``TO_DATE`` (whose
one format is ``'YYYY-MM-DD'``), the rows whose value is an ISO date or date and time.

A query reads a ``Table``, which remembers the rows each set of conditions found, sorted: a
table never changes (the ledger builds another after a write), so the pages of one read are
sliced from what its first page found. A keyset page (``... AND id > n ORDER BY id``) then
costs a binary search and the page's rows, however deep into the table it is; and an ``=`` or
``IN`` condition reads an index of its column rather than every row.
"""

from __future__ import annotations

import operator
import re
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

# A row as a table holds it: column -> value, plus "<column>@df" -> display name for
# reference columns. ``@`` cannot appear in an identifier, so a query cannot name those keys.
Row = dict[str, str | None]

TABLES: dict[str, frozenset[str]] = {
    "customer": frozenset({"id", "entityid", "companyname", "externalid", "email", "currency",
                           "subsidiary", "balance", "custentity_opsgraph_metadata",
                           "lastmodifieddate"}),
    "transaction": frozenset({"id", "recordtype", "type", "externalid", "entity", "trandate",
                              "subsidiary", "currency", "subtotal", "taxtotal", "foreigntotal",
                              "status", "memo", "lastmodifieddate"}),
    "subsidiary": frozenset({"id", "name"}),
    "currency": frozenset({"id", "name", "symbol", "currencyprecision"}),
    "change": frozenset({"seq", "id", "recordtype", "changetype", "entity", "lastmodifieddate"}),
}  # fmt: skip

_KEYWORDS = {"SELECT", "FROM", "WHERE", "AND", "IN", "ORDER", "BY", "AS", "ASC", "DESC"}
_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>\d+(?:\.\d+)?)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<symbol>>=|<=|[(),.*=<>]))"
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
}  # fmt: skip
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_FORMAT = "YYYY-MM-DD"  # TO_DATE's one format here
_REMEMBERED = 16  # the found rows a table keeps, for as many sets of conditions


class QueryError(ValueError):
    """A statement outside the subset; the message says where."""


@dataclass(frozen=True)
class Column:
    source: str
    name: str  # the key it gets in the result
    display: bool = False  # BUILTIN.DF(source)


@dataclass(frozen=True)
class Condition:
    column: str
    op: str  # "=", "in", ">", ">=", "<", "<="
    values: tuple[str, ...]
    display: bool = False  # on BUILTIN.DF(column)
    dates: bool = False  # compared as dates (TO_DATE), not as numbers


@dataclass(frozen=True)
class Query:
    table: str
    columns: tuple[Column, ...] | None  # None: SELECT *
    where: tuple[Condition, ...] = ()
    order_by: str | None = None
    descending: bool = False


Token = tuple[str, str]  # (kind, text); a string token's text is already unquoted


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    text = text.rstrip()
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            at = len(text) - len(text[pos:].lstrip())
            raise QueryError(f"Unexpected character {text[at]!r} at {at}.")
        value = match.group(match.lastgroup)
        if match.lastgroup == "string":
            value = value[1:-1].replace("''", "'")
        tokens.append((match.lastgroup, value))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.exprs = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, what: str) -> Token:
        token = self.peek()
        if token is None:
            raise QueryError(f"Expected {what} but the query ended.")
        self.i += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "word" and token[1].upper() == word:
            self.i += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            raise QueryError(f"Expected {word} near {self._near()}.")

    def symbol(self, char: str) -> bool:
        if self.peek() == ("symbol", char):
            self.i += 1
            return True
        return False

    def expect_symbol(self, char: str) -> None:
        if not self.symbol(char):
            raise QueryError(f"Expected '{char}' near {self._near()}.")

    def identifier(self) -> str:
        kind, text = self.take("a name")
        if kind != "word" or text.upper() in _KEYWORDS:
            raise QueryError(f"Expected a name, found {text!r}.")
        return text.lower()

    def literal(self) -> str:
        kind, text = self.take("a value")
        if kind not in ("string", "number"):
            raise QueryError(f"Expected a value, found {text!r}.")
        return text

    def string(self, what: str) -> str:
        kind, text = self.take(what)
        if kind != "string":
            raise QueryError(f"Expected {what}, found {text!r}.")
        return text

    def reference(self) -> tuple[str, bool]:
        """A column, or ``BUILTIN.DF(column)``: the column, and whether it is its display."""
        name = self.identifier()
        if name != "builtin":
            return name, False
        self.expect_symbol(".")
        if self.identifier() != "df":
            raise QueryError("Only BUILTIN.DF is supported.")
        self.expect_symbol("(")
        name = self.identifier()
        self.expect_symbol(")")
        return name, True

    def _near(self) -> str:
        token = self.peek()
        return "the end of the query" if token is None else repr(token[1])

    def query(self) -> Query:
        self.expect_keyword("SELECT")
        columns = None if self.symbol("*") else self.select_list()
        self.expect_keyword("FROM")
        table = self.identifier()
        where: list[Condition] = []
        if self.keyword("WHERE"):
            where.append(self.condition())
            while self.keyword("AND"):
                where.append(self.condition())
        order_by, descending = None, False
        if self.keyword("ORDER"):
            self.expect_keyword("BY")
            order_by = self.identifier()
            descending = self.keyword("DESC")
            if not descending:
                self.keyword("ASC")
        if self.peek() is not None:
            raise QueryError(f"Unexpected {self._near()} after the query.")
        return Query(table, columns, tuple(where), order_by, descending)

    def select_list(self) -> tuple[Column, ...]:
        items = [self.item()]
        while self.symbol(","):
            items.append(self.item())
        return tuple(items)

    def item(self) -> Column:
        name, display = self.reference()
        self.exprs += display
        alias = self.identifier() if self.keyword("AS") else None
        return Column(name, alias or (f"expr{self.exprs}" if display else name), display)

    def condition(self) -> Condition:
        column, display = self.reference()
        if self.symbol("="):
            return Condition(column, "=", (self.literal(),), display)
        for op in _COMPARE:
            if self.symbol(op):
                bound, dates = self.bound(op)
                return Condition(column, op, (bound,), display, dates)
        if self.keyword("IN"):
            self.expect_symbol("(")
            values = [self.literal()]
            while self.symbol(","):
                values.append(self.literal())
            self.expect_symbol(")")
            return Condition(column, "in", tuple(values), display)
        raise QueryError(f"Unsupported condition near {self._near()}; use =, IN, >, >=, < or <=.")

    def bound(self, op: str) -> tuple[str, bool]:
        """What ``op`` compares with: a number, or ``TO_DATE('2026-11-01', 'YYYY-MM-DD')``
        (the date, and True)."""
        kind, text = self.take("a number or TO_DATE")
        if kind == "number":
            return text, False
        if kind != "word" or text.upper() != "TO_DATE":
            raise QueryError(f"'{op}' compares with a number or a TO_DATE, not {text!r}.")
        self.expect_symbol("(")
        day = self.string("a date")
        self.expect_symbol(",")
        form = self.string("a date format")
        self.expect_symbol(")")
        if form.upper() != _DATE_FORMAT:
            raise QueryError(f"TO_DATE takes the format '{_DATE_FORMAT}', not {form!r}.")
        if _ISO_DATE.fullmatch(day) is None or _moment(day) is None:
            raise QueryError(f"{day!r} is not a date in the format {_DATE_FORMAT}.")
        return day, True


def parse(text: str) -> Query:
    """The statement as a ``Query``, checked against the tables' columns."""
    query = _Parser(tokenize(text)).query()
    columns = TABLES.get(query.table)
    if columns is None:
        raise QueryError(f"Search error occurred: Record '{query.table}' was not found.")
    named = [c.source for c in query.columns or ()] + [c.column for c in query.where]
    named += [query.order_by] if query.order_by else []
    for name in named:
        if name not in columns:
            raise QueryError(f"Field '{name}' for record '{query.table}' was not found.")
    return query


def _number(value: str) -> Decimal | None:
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _moment(value: str) -> datetime | None:
    """An ISO date (midnight) or date and time, in UTC without its zone, to compare."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _value(row: Row, column: str, display: bool) -> str | None:
    # A reference's display name; any other column displays as itself.
    return row.get(f"{column}@df", row.get(column)) if display else row.get(column)


def _test(cond: Condition) -> Callable[[Row], bool]:
    """Whether a row meets ``cond``, its bound read once rather than per row."""
    if cond.op not in _COMPARE:
        wanted = frozenset(cond.values)
        return lambda row: _value(row, cond.column, cond.display) in wanted
    compare = _COMPARE[cond.op]
    read: Callable[[str], Decimal | datetime | None] = _moment if cond.dates else _number
    bound = read(cond.values[0])

    def test(row: Row) -> bool:
        value = _value(row, cond.column, cond.display)
        got = None if value is None else read(value)
        return got is not None and compare(got, bound)

    return test


def _sort_key(value: str | None) -> tuple[int, Decimal, str]:
    # Numbers sort as numbers ("999" before "1000"), text after them, nulls last.
    if value is None:
        return (2, Decimal(0), "")
    number = _number(value)
    return (0, number, "") if number is not None else (1, Decimal(0), value)


class Table:
    """A table's rows, and the rows each set of conditions found in them, in order (the
    last ``_REMEMBERED`` sets). Its rows never change: the ledger builds another table when
    a document does."""

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows
        self._found: dict[tuple[tuple[Condition, ...], str | None, bool], list[Row]] = {}
        self._indexes: dict[str, dict[str | None, array[int]]] = {}

    def found(
        self, where: tuple[Condition, ...], order_by: str | None, descending: bool
    ) -> list[Row]:
        key = (where, order_by, descending)
        rows = self._found.get(key)
        if rows is None:
            tests = [_test(cond) for cond in where]
            rows = [row for row in self._candidates(where) if all(test(row) for test in tests)]
            if order_by:
                rows.sort(key=lambda row: _sort_key(row.get(order_by)), reverse=descending)
            if len(self._found) >= _REMEMBERED:
                del self._found[next(iter(self._found))]  # the oldest
            self._found[key] = rows
        return rows

    def _candidates(self, where: tuple[Condition, ...]) -> Sequence[Row]:
        """The rows that may meet ``where``, in table order: when an ``=`` or ``IN``
        condition names few of them (an eighth or less), those, through an index of its
        column (built on first use, as NetSuite keeps its own), so that postings read by
        the invoices they carry do not scan a million rows a statement; else every row."""
        best: list[int] | None = None
        for cond in where:
            if cond.op not in ("=", "in") or cond.display:
                continue
            index = self._indexes.get(cond.column)
            if index is None:
                index = self._indexes[cond.column] = {}
                for n, row in enumerate(self.rows):
                    index.setdefault(row.get(cond.column), array("L")).append(n)
            named = [index[v] for v in set(cond.values) if v in index]
            if sum(map(len, named)) <= len(self.rows) // 8:
                at = sorted(n for positions in named for n in positions)
                if best is None or len(at) < len(best):
                    best = at
        return self.rows if best is None else [self.rows[n] for n in best]


def _keyset(query: Query) -> tuple[Condition | None, tuple[Condition, ...]]:
    """The condition that starts a keyset page (``id > n`` under ``ORDER BY id``, ascending),
    if any, and the others."""
    if query.order_by is None or query.descending:
        return None, query.where
    for n, cond in enumerate(query.where):
        starts = cond.op in (">", ">=") and not (cond.display or cond.dates)
        if starts and cond.column == query.order_by:
            return cond, query.where[:n] + query.where[n + 1 :]
    return None, query.where


def execute(
    query: Query, table: Table, offset: int = 0, limit: int | None = None
) -> tuple[list[dict[str, str]], int]:
    """The items of the page from ``offset`` (``limit`` of them; all without one), and how
    many rows the query finds in all (``totalResults``).

    The rows the conditions find are the table's to remember; a keyset condition is not one
    of them but a binary search into what the others found, which is sorted on its column:
    numbers first, so the rows it keeps run from the first number past the bound to the
    last number."""
    start, where = _keyset(query)
    found = table.found(where, query.order_by, query.descending)
    first, end = 0, len(found)
    if start is not None:
        column, bound = start.column, (0, Decimal(start.values[0]), "")

        def key(row: Row) -> tuple[int, Decimal, str]:
            return _sort_key(row.get(column))

        after = bisect_right if start.op == ">" else bisect_left
        first = after(found, bound, key=key)
        end = bisect_left(found, (1, Decimal(0), ""), key=key)  # where text and nulls begin
    stop = end if limit is None else min(end, first + offset + limit)
    item = _projection(query)
    return [item(row) for row in found[first + offset : stop]], end - first


def _projection(query: Query) -> Callable[[Row], dict[str, str]]:
    """A row's item: the columns selected that have a value, read as ``_value`` reads
    them, with the keys they are read under worked out once for the page, not per row."""
    if query.columns is None:
        return lambda row: {k: v for k, v in row.items() if "@" not in k and v is not None}
    # (name in the item, the key read, for a display name the key read when a row has none)
    reads = [
        (c.name, f"{c.source}@df", c.source) if c.display else (c.name, c.source, None)
        for c in query.columns
    ]

    def item(row: Row) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, key, otherwise in reads:
            value = row.get(key) if otherwise is None else row.get(key, row.get(otherwise))
            if value is not None:
                out[name] = value
        return out

    return item


def render_number(value: Decimal) -> str:
    """A number the way SuiteQL prints one: Oracle's plain form, no trailing zeros and no
    leading zero before the point ("1234.5", ".5", "29000")."""
    text = format(value.normalize(), "f")
    if text.startswith(("0.", "-0.")):
        text = text.replace("0.", ".", 1)
    return text
