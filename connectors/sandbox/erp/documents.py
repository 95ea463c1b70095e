"""The ERP sandbox's records: NetSuite record documents in the store, the flat tables SuiteQL
reads, customer balances, and seeding from canonical records.

Documents are kept in the record API's shape (``{"entity": {"id", "refName"}, ...}``) with
amounts as decimal strings at the currency's precision, so no amount is ever a float here.
A write names only fields the sandbox keeps (``CREATE_FIELDS``, ``LINE_FIELDS``,
``PATCHABLE``): any other is refused with its JSON path, never dropped.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from connectors.models import CustomerRecord, Posting, PostingType, Record, SystemName
from connectors.money import CURRENCY_EXPONENTS, exponent
from connectors.sandbox.bulk import BenchWorld
from connectors.sandbox.erp.errors import NetSuiteError, bad_field
from connectors.sandbox.erp.query import Row, Table, render_number
from connectors.sandbox.seed import ENTITIES
from connectors.sandbox.store import Generated, Store

TRANSACTIONS = ("invoice", "creditMemo", "journalEntry")
COLLECTIONS = {
    PostingType.INVOICE: "invoice",
    PostingType.CREDIT_MEMO: "creditMemo",
    PostingType.JOURNAL_ENTRY: "journalEntry",
}
TYPE_CODES = {"invoice": "CustInvc", "creditMemo": "CustCred", "journalEntry": "Journal"}
RECORD_TYPES = {kind: kind.lower() for kind in TRANSACTIONS}  # as SuiteQL spells them
STATUS_NAMES = {
    "open": "Open",
    "paidInFull": "Paid In Full",
    "fullyApplied": "Fully Applied",
    "pendingApproval": "Pending Approval",
    "approved": "Approved for Posting",
    "voided": "Voided",
}
# NetSuite's first currencies in a new account, then the rest alphabetically.
_FIRST = ("USD", "GBP", "CAD", "EUR")
CURRENCY_IDS = {
    code: str(n)
    for n, code in enumerate([*_FIRST, *sorted(set(CURRENCY_EXPONENTS) - set(_FIRST))], 1)
}
CURRENCY_CODES = {cid: code for code, cid in CURRENCY_IDS.items()}
METADATA_FIELD = "custentity_opsgraph_metadata"  # a long-text custom field holding JSON
# What a create body may name, and a line of its ``item`` sublist: the fields the sandbox keeps.
CREATE_FIELDS = frozenset({"entity", "subsidiary", "currency", "tranDate", "item", "externalId",
                           "memo"})  # fmt: skip
LINE_FIELDS = frozenset({"amount", "tax1Amt", "item", "description"})
# What a PATCH may change, per record type (null removes a field, but not ``tranDate``).
PATCHABLE = {
    "customer": frozenset({"email", "externalId", METADATA_FIELD}),
    **dict.fromkeys(TRANSACTIONS, frozenset({"externalId", "memo", "tranDate"})),
}
# The record types the record API serves, and the fields their documents may have (``fields=``).
FIELDS = {
    "customer": frozenset({"id", "entityId", "companyName", "externalId", "email", "currency",
                           "subsidiary", METADATA_FIELD, "lastModifiedDate", "balance"}),
    **dict.fromkeys(TRANSACTIONS, frozenset({"id", "externalId", "entity", "tranDate",
                                             "subsidiary", "currency", "subtotal", "taxTotal",
                                             "total", "status", "memo", "lastModifiedDate",
                                             "item"})),
    "subsidiary": frozenset({"id", "name"}),
    "currency": frozenset({"id", "name", "symbol", "currencyPrecision"}),
}  # fmt: skip
_TOMBSTONES = "deletedTransaction"  # whose a deleted transaction was, for the change feed


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def at_places(amount: Decimal, currency: str) -> str:
    return format(amount.quantize(Decimal(1).scaleb(-exponent(currency))), "f")


class Ledger:
    def __init__(self, store: Store) -> None:
        self.store = store
        # Tables are rebuilt only when the documents change (``Store.version``): SuiteQL
        # reads them on every query and never changes a row.
        self._tables: dict[str, tuple[int, Table]] = {}

    def balances(self) -> dict[str, Decimal]:
        """The receivable opsgraph reads as a customer's ``balance``: open invoices (subtotal
        + tax) minus open credit memos (subtotal + tax), in the customer's currency. Paid
        invoices, applied credit memos and journal entries do not count, and a transaction in
        another currency is left out rather than converted. (NetSuite itself counts what
        remains unpaid of a partly paid invoice; the sandbox has no payments to apply.)"""
        currency = {d["id"]: d.get("currency", {}).get("id") for d in self.store.all("customer")}
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for collection, sign in (("invoice", 1), ("creditMemo", -1)):
            for doc in self.store.all(collection):
                customer = doc["entity"]["id"]
                if doc["status"]["id"] != "open" or doc["currency"]["id"] != currency.get(customer):
                    continue
                totals[customer] += sign * (Decimal(doc["subtotal"]) + Decimal(doc["taxTotal"]))
        return totals

    def table(self, name: str) -> Table:
        """A SuiteQL table, as the documents are now."""
        version = self.store.version
        cached = self._tables.get(name)
        if cached is None or cached[0] != version:
            cached = self._tables[name] = (version, Table(self._build(name)))
        return cached[1]

    def _build(self, name: str) -> list[Row]:
        if name == "customer":
            balances = self.balances()
            return [_customer_row(doc, balances) for doc in self.store.all("customer")]
        if name == "transaction":
            # ``each``, not ``all``: one document at a time, not a million held at once.
            return [_transaction_row(t, doc) for t in TRANSACTIONS for doc in self.store.each(t)]
        if name == "subsidiary":
            return [{"id": d["id"], "name": d["name"]} for d in self.store.all("subsidiary")]
        if name == "currency":
            return [
                {"id": cid, "name": code, "symbol": code, "currencyprecision": str(exponent(code))}
                for code, cid in CURRENCY_IDS.items()
            ]
        if name == "change":
            return self._changes()
        raise KeyError(name)  # ``query.parse`` admits only the tables above

    def _changes(self) -> list[Row]:
        entities = {
            (t, d["id"]): d.get("entity", {}).get("id")
            for t in TRANSACTIONS
            for d in self.store.all(t)
        }
        entities |= {(d["kind"], d["id"]): d["entity"] for d in self.store.all(_TOMBSTONES)}
        followed = ("customer", *TRANSACTIONS)
        return [
            {"seq": str(seq), "id": id_, "recordtype": collection.lower(), "changetype": kind,
             "entity": entities.get((collection, id_)), "lastmodifieddate": at}
            for seq, collection, id_, kind, at in self.store.changes(0, limit=2**62)
            if collection in followed
        ]  # fmt: skip

    def new_transaction(self, kind: str, body: Any) -> dict[str, Any]:
        """The document a create body makes, with NetSuite's checks and derived totals."""
        if not isinstance(body, dict):
            raise NetSuiteError(400, "The request body must be a JSON object.")
        _kept(body, CREATE_FIELDS)
        customer = self.store.get("customer", _ref_id(body, "entity", "Customer"))
        subsidiary_id = _ref_id(body, "subsidiary", "Subsidiary")
        subsidiary = self.store.get("subsidiary", subsidiary_id)
        currency = CURRENCY_CODES.get(_ref_id(body, "currency", "Currency"))
        if customer is None or subsidiary is None or currency is None:
            detail = "Invalid entity, subsidiary or currency reference key."
            raise NetSuiteError(400, detail, "INVALID_KEY_OR_REF")
        tran_date = _tran_date(body.get("tranDate") or now()[:10])
        sublist = body.get("item") or {}
        if not isinstance(sublist, dict):
            raise bad_field("item", "Please enter value(s) for: Items.", "INVALID_FLD_VALUE")
        _kept(sublist, {"items"}, "item.")
        lines = sublist.get("items")
        if not isinstance(lines, list) or not lines or not all(isinstance(x, dict) for x in lines):
            raise NetSuiteError(400, "Please enter value(s) for: Items.")
        kept = [_line(n, line, currency) for n, line in enumerate(lines)]
        subtotal = sum((Decimal(line["amount"]) for line in kept), Decimal(0))
        tax = sum((Decimal(line["tax1Amt"]) for line in kept), Decimal(0))
        doc = {
            "id": self._next_transaction_id(),
            "externalId": _text(body, "externalId"),
            "entity": {"id": customer["id"], "refName": customer.get("companyName")},
            "tranDate": tran_date,
            "subsidiary": {"id": subsidiary_id, "refName": subsidiary["name"]},
            "currency": _currency_ref(currency),
            "subtotal": at_places(subtotal, currency),
            "taxTotal": at_places(tax, currency),
            "total": at_places(subtotal + tax, currency),
            "status": {"id": "open", "refName": "Open"},
            "memo": _text(body, "memo"),
            "lastModifiedDate": now(),
            "item": {"items": kept},
        }
        return {k: v for k, v in doc.items() if v is not None}

    def record(self, kind: str, id_: str) -> dict[str, Any] | None:
        """The document the record API serves for ``kind`` (one of ``FIELDS``) and id."""
        if kind == "currency":
            code = CURRENCY_CODES.get(id_)
            if code is None:
                return None
            return {"id": id_, "name": code, "symbol": code, "currencyPrecision": exponent(code)}
        return self.store.get(kind, id_)

    def delete(self, kind: str, id_: str) -> bool:
        """Remove a transaction, keeping whose it was: the change feed says so, and a
        customer's balance changes with it."""
        doc = self.store.get(kind, id_)
        if doc is None:
            return False
        entity = doc.get("entity", {}).get("id")
        tombstone = {"kind": kind, "id": id_, "entity": entity}
        self.store.put(_TOMBSTONES, f"{kind}/{id_}", tombstone)
        return self.store.delete(kind, id_)

    def void(self, kind: str, id_: str, reason: str) -> bool:
        """Void a transaction as NetSuite's direct void does: every amount zero, its lines'
        too, the status ``voided``, the record kept (in reads, the change feed, and out of
        its customer's balance). ``reason`` becomes the memo, where a NetSuite user looks for
        why. False when there is no such transaction; a 400 when it is voided already."""
        doc = self.store.get(kind, id_)
        if doc is None:
            return False
        if doc["status"]["id"] == "voided":
            raise NetSuiteError(400, f"Transaction {id_} is voided already.")
        zero = at_places(Decimal(0), doc["currency"]["refName"])
        doc.update(subtotal=zero, taxTotal=zero, total=zero, memo=reason, lastModifiedDate=now())
        doc["status"] = {"id": "voided", "refName": STATUS_NAMES["voided"]}
        for line in doc.get("item", {}).get("items", []):
            line.update(amount=zero, tax1Amt=zero)
        self.store.put(kind, id_, doc)
        return True

    def _next_transaction_id(self) -> str:
        while True:
            candidate = str(self.store.next_number("transaction", 9001))
            if not any(self.store.get(t, candidate) for t in TRANSACTIONS):
                return candidate

    def seed(self, records: list[Record]) -> None:
        """Store canonical ERP records as NetSuite documents, keeping their ids."""
        customers = [r for r in records if isinstance(r, CustomerRecord)]
        postings = [r for r in records if isinstance(r, Posting)]
        if len(customers) + len(postings) != len(records):
            raise ValueError("the ERP sandbox holds only CustomerRecord and Posting records")
        modified = now()
        for c in customers:
            subsidiary = self._subsidiary_ref(c.legal_entity) if c.legal_entity else None
            self.store.put("customer", c.id, customer_doc(c, subsidiary, modified))
        for p in postings:
            if p.amount.currency != p.tax.currency:
                raise ValueError(f"posting {p.id} mixes {p.amount.currency} and {p.tax.currency}")
            name = (self.store.get("customer", p.customer_id) or {}).get("companyName")
            doc = posting_doc(p, name, self._subsidiary_ref(p.subsidiary), modified)
            self.store.put(COLLECTIONS[p.type], p.id, doc)

    def bulk(self, invoices: int, seed: int) -> dict[str, int]:
        """The ERP's side of ``BenchWorld(invoices, seed)``, its customers and the
        postings of its invoices, made on demand by the seed path's builders
        (``Store.generate``)."""
        world = BenchWorld(invoices, seed)
        modified = now()
        entities = {entity: self._subsidiary_ref(entity) for entity, _ in ENTITIES.values()}

        def customer(c: int) -> dict[str, Any]:
            record = world.customer_record(SystemName.ERP, c)
            return customer_doc(record, dict(entities[record.legal_entity or ""]), modified)

        def posting(p: int) -> dict[str, Any] | None:
            record = world.posting(p)
            if record is None:
                return None
            c = world.erp_customer_position(record.customer_id)
            name = None if c is None else world.customer(c).name
            return posting_doc(record, name, dict(entities[record.subsidiary]), modified)

        customers = Generated(world.customers, world.erp_customer_position, customer)
        self.store.generate("customer", customers)
        self.store.generate("invoice", Generated(world.postings, world.posting_position, posting))
        return {"customers": world.customers, "postings": world.posted}

    def _subsidiary_ref(self, name: str) -> dict[str, str]:
        known = self.store.all("subsidiary", lambda d: d["name"] == name)
        if known:
            return {"id": known[0]["id"], "refName": name}
        id_ = str(len(self.store.all("subsidiary")) + 1)
        self.store.put("subsidiary", id_, {"id": id_, "name": name})
        return {"id": id_, "refName": name}


def _currency_ref(code: str) -> dict[str, str]:
    return {"id": CURRENCY_IDS[code], "refName": code}


def customer_doc(
    c: CustomerRecord, subsidiary: dict[str, str] | None, modified: str
) -> dict[str, Any]:
    """A seeded customer's document."""
    doc: dict[str, Any] = {
        "id": c.id,
        "entityId": c.name,
        "companyName": c.name,
        "externalId": c.ref,
        "email": c.email,
        "currency": _currency_ref(c.currency) if c.currency else None,
        "subsidiary": subsidiary,
        METADATA_FIELD: json.dumps(dict(c.metadata)) if c.metadata else None,
        "lastModifiedDate": modified,
    }
    return {k: v for k, v in doc.items() if v is not None}


def posting_doc(
    p: Posting, customer_name: str | None, subsidiary: dict[str, str], modified: str
) -> dict[str, Any]:
    """A seeded posting's document (an invoice, credit memo or journal entry)."""
    # Text, not the enum: a document made on demand goes into a SuiteQL table as it is, and
    # the collector tracks a row holding an enum member (100,000 such rows: a full
    # collection of the sandbox process took 0.19 s, not 0.03 s).
    status = str(p.status)
    doc = {
        "id": p.id,
        "externalId": p.external_id,
        "entity": {"id": p.customer_id, "refName": customer_name},
        "tranDate": p.tran_date.isoformat(),
        "subsidiary": subsidiary,
        "currency": _currency_ref(p.amount.currency),
        "subtotal": p.amount.amount_str(),
        "taxTotal": p.tax.amount_str(),
        "total": (p.amount + p.tax).amount_str(),
        "status": {"id": status, "refName": STATUS_NAMES.get(status, status)},
        "memo": p.memo,
        "lastModifiedDate": modified,
    }
    return {k: v for k, v in doc.items() if v is not None}


def patched(kind: str, doc: dict[str, Any], body: Any) -> dict[str, Any]:
    """``doc`` with a PATCH body applied: each field named set, or removed by null; any
    field omitted stays as it was."""
    if not isinstance(body, dict):
        raise NetSuiteError(400, "The request body must be a JSON object.")
    for name, value in body.items():
        if name not in PATCHABLE[kind]:
            detail = f"The sandbox cannot change the field {name} of {kind} records."
            raise bad_field(name, detail)
        if name == "tranDate":
            doc[name] = _tran_date(value)
        elif value is None:
            doc.pop(name, None)
        else:
            doc[name] = _text(body, name)
    doc["lastModifiedDate"] = now()
    return doc


def _kept(body: dict[str, Any], fields: frozenset[str] | set[str], path: str = "") -> None:
    """Refuse a field the sandbox does not keep: dropping it would claim it was written."""
    for name in body:
        if name not in fields:
            raise bad_field(path + name, f"The sandbox does not keep the field {path}{name}.")


def _text(body: dict[str, Any], field: str, path: str = "") -> str | None:
    value = body.get(field)
    if value is not None and not isinstance(value, str):
        detail = f"Please enter a text value for: {field}."
        raise bad_field(path + field, detail, "INVALID_FLD_VALUE")
    return value


def _tran_date(value: Any) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except (TypeError, ValueError):
        raise bad_field(
            "tranDate", "Invalid tranDate; use YYYY-MM-DD.", "INVALID_FLD_VALUE"
        ) from None


def _line(n: int, line: dict[str, Any], currency: str) -> dict[str, Any]:
    """One line of a create's ``item`` sublist, as the document keeps it."""
    path = f"item.items[{n}]."
    _kept(line, LINE_FIELDS, path)
    kept: dict[str, Any] = {
        "line": n + 1,
        "amount": at_places(_amount(line, "amount", currency), currency),
        "tax1Amt": at_places(_amount(line, "tax1Amt", currency, Decimal(0)), currency),
    }
    if "item" in line:
        kept["item"] = {"id": _ref_id(line, "item", "Item", path)}
    description = _text(line, "description", path)
    if description is not None:
        kept["description"] = description
    return kept


def _ref_id(body: dict[str, Any], field: str, label: str, path: str = "") -> str:
    ref = body.get(field)
    if not isinstance(ref, dict) or not isinstance(ref.get("id"), str | int):
        raise NetSuiteError(400, f"Please enter value(s) for: {label}.")
    _kept(ref, {"id"}, f"{path}{field}.")
    return str(ref["id"])


def _amount(
    line: dict[str, Any], field: str, currency: str, default: Decimal | None = None
) -> Decimal:
    value = line.get(field)
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise NetSuiteError(400, f"Please enter a number for: {field}.", "INVALID_FLD_VALUE")
    amount = Decimal(value)
    scaled = amount.scaleb(exponent(currency))
    if not amount.is_finite() or scaled != scaled.to_integral_value():
        detail = f"{field} {amount} has more decimal places than {currency} allows."
        raise NetSuiteError(400, detail, "INVALID_FLD_VALUE")
    return amount


def _ref_columns(field: str, doc: dict[str, Any]) -> Row:
    ref = doc.get(field) or {}
    return {field: ref.get("id"), f"{field}@df": ref.get("refName")}


def _customer_row(doc: dict[str, Any], balances: dict[str, Decimal]) -> Row:
    balance = balances.get(doc["id"], Decimal(0))
    return {
        "id": doc["id"],
        "entityid": doc.get("entityId"),
        "companyname": doc.get("companyName"),
        "externalid": doc.get("externalId"),
        "email": doc.get("email"),
        **_ref_columns("currency", doc),
        **_ref_columns("subsidiary", doc),
        "balance": render_number(balance) if "currency" in doc else None,
        METADATA_FIELD: doc.get(METADATA_FIELD),
        "lastmodifieddate": doc.get("lastModifiedDate"),
    }


def _transaction_row(kind: str, doc: dict[str, Any]) -> Row:
    return {
        "id": doc["id"],
        "recordtype": RECORD_TYPES[kind],
        "type": TYPE_CODES[kind],
        "externalid": doc.get("externalId"),
        **_ref_columns("entity", doc),
        "trandate": doc.get("tranDate"),
        **_ref_columns("subsidiary", doc),
        **_ref_columns("currency", doc),
        "subtotal": render_number(Decimal(doc["subtotal"])),
        "taxtotal": render_number(Decimal(doc["taxTotal"])),
        "foreigntotal": render_number(Decimal(doc["total"])),
        **_ref_columns("status", doc),
        "memo": doc.get("memo"),
        "lastmodifieddate": doc.get("lastModifiedDate"),
    }
