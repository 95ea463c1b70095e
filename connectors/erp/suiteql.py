"""The SuiteQL statements the connector sends: one statement per read, every caller-supplied
value quoted as a literal, ids batched into one ``IN (...)``.

Display names come from ``BUILTIN.DF`` in the same statement, so a read costs one request
(no second lookup of subsidiary or currency names). A posting's subsidiary is filtered on
the same ``BUILTIN.DF(subsidiary)`` it is read from, so the filter takes exactly the name a
``Posting`` carries."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date

from connectors.models import ObjectKind, PostingType

PAGE_MAX = 1000  # SuiteQL's largest page
METADATA_FIELD = "custentity_opsgraph_metadata"  # long-text custom field holding JSON
# the ``recordtype`` of each kind of posting in ``transaction`` (and SuiteScript's record.Type)
RECORDTYPES = {
    PostingType.INVOICE: "invoice",
    PostingType.CREDIT_MEMO: "creditmemo",
    PostingType.JOURNAL_ENTRY: "journalentry",
}

_SELECT = {
    ObjectKind.CUSTOMER: (
        "SELECT id, entityid, companyname, externalid, email, "
        "BUILTIN.DF(currency) AS currencyname, BUILTIN.DF(subsidiary) AS subsidiaryname, "
        f"{METADATA_FIELD} FROM customer"
    ),
    ObjectKind.POSTING: (
        "SELECT id, recordtype, externalid, entity, trandate, "
        "BUILTIN.DF(subsidiary) AS subsidiaryname, BUILTIN.DF(currency) AS currencyname, "
        "subtotal, taxtotal, status, memo FROM transaction"
    ),
    ObjectKind.BALANCE: "SELECT id, BUILTIN.DF(currency) AS currencyname, balance FROM customer",
}
CHANGES = (
    "SELECT seq, id, recordtype, changetype, entity, lastmodifieddate FROM change "
    "WHERE seq > {after} ORDER BY seq"
)


def quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def in_list(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(quote(v) for v in values)})"


def to_date(value: str) -> str:
    """``TO_DATE('2026-11-01', 'YYYY-MM-DD')`` for an ISO date; ValueError for another value."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError("an ISO date (YYYY-MM-DD)") from None
    return f"TO_DATE({quote(day.isoformat())}, 'YYYY-MM-DD')"


# ``transaction`` holds every transaction type (sales orders, bills ...); postings are these.
_POSTINGS = in_list("recordtype", RECORDTYPES.values())
# a filter's value -> its condition; a value the filter cannot take raises ValueError, saying
# what it takes
Filter = Callable[[str], str]


def _equals(column: str) -> Filter:
    return lambda value: f"{column} = {quote(value)}"


def _trandate(op: str) -> Filter:
    return lambda value: f"trandate {op} {to_date(value)}"


def _posting_type(value: str) -> str:
    try:
        kind = PostingType(value)
    except ValueError:
        raise ValueError(f"one of {', '.join(PostingType)}") from None
    return f"recordtype = {quote(RECORDTYPES[kind])}"


# (kind, filter key) -> the condition it makes
_FILTERS: dict[tuple[ObjectKind, str], Filter] = {
    (ObjectKind.POSTING, "customer"): _equals("entity"),
    (ObjectKind.POSTING, "external_id"): _equals("externalid"),
    (ObjectKind.POSTING, "subsidiary"): _equals("BUILTIN.DF(subsidiary)"),
    (ObjectKind.POSTING, "type"): _posting_type,
    (ObjectKind.POSTING, "posted_from"): _trandate(">="),  # inclusive
    (ObjectKind.POSTING, "posted_before"): _trandate("<"),  # exclusive
    (ObjectKind.CUSTOMER, "customer"): _equals("id"),
    (ObjectKind.CUSTOMER, "external_id"): _equals("externalid"),
    (ObjectKind.BALANCE, "customer"): _equals("id"),
    (ObjectKind.BALANCE, "external_id"): _equals("externalid"),
}


def filter_conditions(kind: ObjectKind, filters: Mapping[str, str]) -> list[str]:
    """The condition of each filter; a filter the kind does not support raises KeyError, a
    value the filter cannot take ValueError (``posted_from must be ...``)."""
    conditions = []
    for key, value in filters.items():
        condition = _FILTERS[(kind, key)]
        try:
            conditions.append(condition(value))
        except ValueError as exc:
            raise ValueError(f"{key} must be {exc}, not {value!r}") from None
    return conditions


def select(kind: ObjectKind, conditions: Iterable[str] = ()) -> str:
    where = [_POSTINGS] if kind is ObjectKind.POSTING else []
    where += conditions
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"{_SELECT[kind]}{clause} ORDER BY id"


def postings_after(after_id: int, conditions: Iterable[str] = ()) -> str:
    """The postings past ``after_id`` in id order: a keyset page, read from offset 0."""
    return select(ObjectKind.POSTING, [*conditions, f"id > {after_id:d}"])


def lookup(table: str, column: str, value: str) -> str:
    return f"SELECT id FROM {table} WHERE {column} = {quote(value)}"
