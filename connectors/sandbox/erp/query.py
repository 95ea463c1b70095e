"""The SuiteQL the ERP sandbox understands: a small subset, parsed properly and refused
loudly outside it (``QueryError``, which the sandbox answers with NetSuite's 400
``INVALID_PARAMETER`` body)::

    SELECT * | item [, item ...]          item: column | BUILTIN.DF(column) [AS alias]
    FROM customer | transaction | subsidiary | currency | change
    [WHERE cond [AND cond ...]]           cond: column = literal
                                                | column IN (literal [, literal ...])
                                                | column > number
    [ORDER BY column [ASC | DESC]]

Literals are 'strings' (a quote doubled inside) or plain numbers. Identifiers are
case-insensitive and come back lowercase, as NetSuite returns them. Every value comes back as
a string, numbers included, and a column whose value is null is left out of the item.
``BUILTIN.DF`` gives a reference's display name; an unaliased one is named ``exprN``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

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
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<symbol>[(),.*=>]))"
)


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
    op: str  # "=", "in", ">"
    values: tuple[str, ...]


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
        name = self.identifier()
        display = name == "builtin"
        if display:
            self.expect_symbol(".")
            if self.identifier() != "df":
                raise QueryError("Only BUILTIN.DF is supported.")
            self.expect_symbol("(")
            name = self.identifier()
            self.expect_symbol(")")
            self.exprs += 1
        alias = self.identifier() if self.keyword("AS") else None
        return Column(name, alias or (f"expr{self.exprs}" if display else name), display)

    def condition(self) -> Condition:
        column = self.identifier()
        if self.symbol("="):
            return Condition(column, "=", (self.literal(),))
        if self.symbol(">"):
            kind, text = self.take("a number")
            if kind != "number":
                raise QueryError(f"'>' compares with a number, not {text!r}.")
            return Condition(column, ">", (text,))
        if self.keyword("IN"):
            self.expect_symbol("(")
            values = [self.literal()]
            while self.symbol(","):
                values.append(self.literal())
            self.expect_symbol(")")
            return Condition(column, "in", tuple(values))
        raise QueryError(f"Unsupported condition near {self._near()}; use =, IN or >.")


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


def _matches(row: Row, cond: Condition) -> bool:
    value = row.get(cond.column)
    if value is None:
        return False
    if cond.op == ">":
        number = _number(value)
        return number is not None and number > Decimal(cond.values[0])
    return value in cond.values


def _sort_key(value: str | None) -> tuple[int, Decimal, str]:
    # Numbers sort as numbers ("999" before "1000"), text after them, nulls last.
    if value is None:
        return (2, Decimal(0), "")
    number = _number(value)
    return (0, number, "") if number is not None else (1, Decimal(0), value)


def execute(query: Query, rows: list[Row]) -> list[dict[str, str]]:
    found = [row for row in rows if all(_matches(row, c) for c in query.where)]
    if query.order_by:
        column = query.order_by
        found.sort(key=lambda row: _sort_key(row.get(column)), reverse=query.descending)
    out: list[dict[str, str]] = []
    for row in found:
        if query.columns is None:
            item = {k: v for k, v in row.items() if "@" not in k and v is not None}
        else:
            item = {}
            for c in query.columns:
                value = (
                    row.get(f"{c.source}@df", row.get(c.source)) if c.display else row.get(c.source)
                )
                if value is not None:
                    item[c.name] = value
        out.append(item)
    return out


def render_number(value: Decimal) -> str:
    """A number the way SuiteQL prints one: Oracle's plain form, no trailing zeros and no
    leading zero before the point ("1234.5", ".5", "29000")."""
    text = format(value.normalize(), "f")
    if text.startswith(("0.", "-0.")):
        text = text.replace("0.", ".", 1)
    return text
