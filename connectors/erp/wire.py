"""NetSuite's wire shapes <-> canonical records.

Amounts arrive as decimal strings in SuiteQL ("1234.5", ".5") and leave as JSON numbers
written digit for digit; both sides go through ``Decimal`` and ``Money``, never a float.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

from connectors.commands import CreateCreditMemo, PostingCommand, PostInvoice
from connectors.erp.suiteql import METADATA_FIELD, RECORDTYPES
from connectors.errors import UpstreamError, UpstreamRejected
from connectors.models import (
    Balance,
    Booked,
    ChangeEvent,
    ChangeType,
    CustomerRecord,
    ObjectKind,
    Page,
    Posting,
    PostingState,
    Record,
    SystemName,
)
from connectors.money import Money, exponent, minor_units

SYSTEM = SystemName.ERP
RECORD_PATH = "/services/rest/record/v1"
SUITEQL_PATH = "/services/rest/query/v1/suiteql"
# The RESTlet opsgraph deploys to void a transaction; ``void_body`` is what it takes.
RESTLET_PATH = "/app/site/hosting/restlet.nl"
VOID_SCRIPT = {"script": "customscript_opsgraph_void", "deploy": "1"}
POSTING_TYPES = {recordtype: kind for kind, recordtype in RECORDTYPES.items()}
# write command -> the record type it creates
RECORD_TYPES: dict[type[PostingCommand], str] = {
    CreateCreditMemo: "creditMemo",
    PostInvoice: "invoice",
}
CHANGE_KINDS = {"customer": ObjectKind.CUSTOMER, **dict.fromkeys(POSTING_TYPES, ObjectKind.POSTING)}
R = TypeVar("R", bound=Record | Booked)
_LOCATION = re.compile(r"/services/rest/record/v1/(?P<type>[A-Za-z]+)/(?P<id>[^/?#]+)/?$")


def money(value: str | None, currency: str) -> Money:
    # SuiteQL leaves a null amount out of the item; a posting without tax has zero tax.
    # A string is Money's to parse: one that is not a number is a MoneyError.
    if isinstance(value, str):
        return Money.of(value, currency)
    return Money.of(Decimal(value) if value is not None else Decimal(0), currency)


def _customer(row: dict[str, Any]) -> CustomerRecord:
    metadata = row.get(METADATA_FIELD)
    return CustomerRecord(
        system=SYSTEM,
        id=row["id"],
        name=row.get("companyname") or row["entityid"],
        ref=row.get("externalid"),
        email=row.get("email"),
        currency=row.get("currencyname"),
        legal_entity=row.get("subsidiaryname"),
        metadata=json.loads(metadata) if metadata else {},
    )


def _posting(row: dict[str, Any]) -> Posting:
    currency = row["currencyname"]
    return Posting(
        system=SYSTEM,
        id=row["id"],
        type=POSTING_TYPES[row["recordtype"]],
        customer_id=row["entity"],
        external_id=row.get("externalid"),
        subsidiary=row["subsidiaryname"],
        amount=money(row.get("subtotal"), currency),
        tax=money(row.get("taxtotal"), currency),
        tran_date=date.fromisoformat(row["trandate"]),
        status=PostingState(row["status"]),
        memo=row.get("memo"),
    )


_STATES = frozenset(PostingState)


def _minor(value: Any, currency: str) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return minor_units(value, currency)
    return money(value, currency).amount_minor


def _booked(row: dict[str, Any]) -> Booked:
    currency, status = row["currencyname"], row["status"]
    exponent(currency)  # refused as Money refuses it
    POSTING_TYPES[row["recordtype"]]  # a row that is not a posting: KeyError, as _posting's
    if status not in _STATES:
        raise ValueError(f"{status!r} is not a posting status")
    return Booked(
        row["id"], row["entity"], row.get("externalid"), _minor(row.get("subtotal"), currency),
        _minor(row.get("taxtotal"), currency), currency, date.fromisoformat(row["trandate"]),
        row["subsidiaryname"], status != PostingState.VOIDED,
    )  # fmt: skip


def _balance(row: dict[str, Any]) -> Balance:
    return Balance(
        system=SYSTEM,
        id=row["id"],
        customer_id=row["id"],
        receivable=money(row.get("balance"), row["currencyname"]),
    )


_READERS = {
    ObjectKind.CUSTOMER: _customer,
    ObjectKind.POSTING: _posting,
    ObjectKind.BALANCE: _balance,
}


def to_record(kind: ObjectKind, row: dict[str, Any]) -> Record:
    return _read(kind, _READERS[kind], row)


def to_posting(row: dict[str, Any]) -> Posting:
    return _read(ObjectKind.POSTING, _posting, row)


def booked_posting(row: dict[str, Any]) -> Booked:
    """What ``Booked.of_posting(to_posting(row))`` is, without the model: reconciliation
    reads a million postings, and the model (``Decimal`` above all) was most of the CPU of
    reading one. (It reads only the fields it needs: a row ``to_posting`` refuses over
    another field passes.)"""
    return _read(ObjectKind.POSTING, _booked, row)


def _read(kind: ObjectKind, reader: Callable[[dict[str, Any]], R], row: dict[str, Any]) -> R:
    try:
        return reader(row)
    except (KeyError, TypeError, ValueError) as exc:  # MoneyError is a ValueError
        raise UpstreamError(
            f"erp returned a {kind} opsgraph cannot read", system=SYSTEM.value, internal=repr(row)
        ) from exc


def page_of(body: Any, offset: int) -> Page[dict[str, Any]]:
    """The rows of a SuiteQL collection served from ``offset``; while ``hasMore``, the
    cursor is the offset of the next page."""
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise UpstreamError(
            "erp answered SuiteQL with an unexpected body",
            system=SYSTEM.value,
            internal=repr(body)[:2000],
        )
    rows: list[dict[str, Any]] = body["items"]
    more = bool(body.get("hasMore")) and bool(rows)
    return Page(items=rows, cursor=str(offset + len(rows)) if more else None)


def offset_of(cursor: str | None) -> int:
    """The offset a ``page_of`` cursor names (None: the first page)."""
    try:
        offset = int(cursor) if cursor else 0
    except ValueError:
        offset = -1
    if offset < 0:
        raise UpstreamRejected(f"not an erp cursor: {cursor!r}", system=SYSTEM.value)
    return offset


def change_events(row: dict[str, Any]) -> list[ChangeEvent]:
    """The events one ``change`` row means; unknown record types mean none. A transaction
    change also updates its customer's balance, which the gateway caches separately."""
    kind = CHANGE_KINDS.get(row.get("recordtype", ""))
    if kind is None:
        return []
    at = datetime.fromisoformat(row["lastmodifieddate"])
    # A transaction is on its customer's list of postings.
    parent = str(row["entity"]) if kind is ObjectKind.POSTING and row.get("entity") else None
    events = [
        ChangeEvent(
            system=SYSTEM,
            kind=kind,
            id=row["id"],
            occurred_at=at,
            type=ChangeType(row["changetype"]),
            parent=parent,
        )
    ]
    if kind is ObjectKind.POSTING and row.get("entity"):
        events.append(
            ChangeEvent(
                system=SYSTEM,
                kind=ObjectKind.BALANCE,
                id=row["entity"],
                occurred_at=at,
                type=ChangeType.UPDATED,
            )
        )
    return events


def posting_body(
    command: PostingCommand, subsidiary_id: str, currency_id: str, item_id: str | None
) -> dict[str, Any]:
    """The record body: one item line carries the amount and its tax (``tax1Amt``);
    NetSuite derives ``subtotal``, ``taxTotal`` and ``total`` from the lines."""
    line: dict[str, Any] = {
        "amount": command.amount.to_decimal(),
        "tax1Amt": command.tax.to_decimal(),
    }
    if item_id:
        line = {"item": {"id": item_id}, **line}
    if command.memo:
        line["description"] = command.memo
    body: dict[str, Any] = {
        "entity": {"id": command.customer_id},
        "subsidiary": {"id": subsidiary_id},
        "currency": {"id": currency_id},
        "tranDate": command.tran_date.isoformat(),
        "item": {"items": [line]},
    }
    if command.external_id:
        body["externalId"] = command.external_id
    if command.memo:
        body["memo"] = command.memo
    return body


def void_body(posting: Posting, reason: str) -> dict[str, str]:
    """What the void RESTlet takes: the SuiteScript record type (``record.Type``, spelt as
    SuiteQL's ``recordtype``) and id that ``transaction.void`` needs, and why."""
    return {"type": RECORDTYPES[posting.type], "id": posting.id, "reason": reason}


def voided_id(answer: Any, posting_id: str) -> str:
    """The id in the void RESTlet's answer, ``{"id": "5131", "voided": true}``, which must be
    the posting's."""
    voided = isinstance(answer, dict) and answer.get("voided") is True
    if not voided or answer.get("id") != posting_id:
        raise UpstreamError(
            f"erp did not say it voided posting {posting_id}",
            system=SYSTEM.value,
            internal=repr(answer)[:2000],
        )
    return posting_id


def dumps(value: Any) -> str:
    """JSON with ``Decimal`` written as a number, digit for digit (``json`` cannot)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def location_id(location: str | None, record_type: str) -> str:
    """The id in a create's ``Location`` (``.../record/v1/creditMemo/9001``), which must
    name the record type that was created."""
    match = _LOCATION.search(urlsplit(location or "").path)
    if match is None or match["type"] != record_type:
        raise UpstreamError(
            f"erp created a {record_type} but did not say where",
            system=SYSTEM.value,
            internal=f"Location: {location!r}",
        )
    return match["id"]
