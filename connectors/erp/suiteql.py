"""The SuiteQL statements the connector sends: one statement per read, every caller-supplied
value quoted as a literal, ids batched into one ``IN (...)``.

Display names come from ``BUILTIN.DF`` in the same statement, so a read costs one request
(no second lookup of subsidiary or currency names)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from connectors.models import ObjectKind

PAGE_MAX = 1000  # SuiteQL's largest page
METADATA_FIELD = "custentity_opsgraph_metadata"  # long-text custom field holding JSON

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
# ``transaction`` holds every transaction type (sales orders, bills ...); postings are these.
_POSTINGS = "recordtype IN ('invoice', 'creditmemo', 'journalentry')"
# (kind, filter key) -> the column it filters on
_FILTERS = {
    (ObjectKind.POSTING, "customer"): "entity",
    (ObjectKind.POSTING, "external_id"): "externalid",
    (ObjectKind.CUSTOMER, "customer"): "id",
    (ObjectKind.CUSTOMER, "external_id"): "externalid",
    (ObjectKind.BALANCE, "customer"): "id",
    (ObjectKind.BALANCE, "external_id"): "externalid",
}
CHANGES = (
    "SELECT seq, id, recordtype, changetype, entity, lastmodifieddate FROM change "
    "WHERE seq > {after} ORDER BY seq"
)


def quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def in_list(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(quote(v) for v in values)})"


def filter_conditions(kind: ObjectKind, filters: Mapping[str, str]) -> list[str]:
    """``column = 'value'`` per filter; a filter the kind does not support raises KeyError."""
    return [f"{_FILTERS[(kind, key)]} = {quote(value)}" for key, value in filters.items()]


def select(kind: ObjectKind, conditions: Iterable[str] = ()) -> str:
    where = [_POSTINGS] if kind is ObjectKind.POSTING else []
    where += conditions
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"{_SELECT[kind]}{clause} ORDER BY id"


def lookup(table: str, column: str, value: str) -> str:
    return f"SELECT id FROM {table} WHERE {column} = {quote(value)}"
