"""The CRM sandbox's records: Account, Task and User documents in the store (``Records``),
as Salesforce answers them (``Records.row``), the API versions their URLs carry, Salesforce's
ids and date formats, and Accounts from canonical records.

Documents hold the fields a write sets; ``CreatedDate`` and ``LastModifiedDate`` are not
stored but read from the store's change log (``Clock``), the one clock every write goes
through.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from connectors.models import Account, Record
from connectors.sandbox.crm import errors, schema
from connectors.sandbox.crm.errors import SalesforceError, not_found
from connectors.sandbox.store import Store

# The org answers every API version from Summer '14 (31.0, the oldest Salesforce still
# serves) to Summer '24 (61.0); any other is a path it does not know.
FIRST_VERSION, LATEST_VERSION = 31, 61
INTEGRATION_USER = "Integration User"  # owns what the API creates without an OwnerId
ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
# Read from the clock or always the same (``Records.value``), never stored.
UNSTORED = frozenset({"IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp"})
Doc = dict[str, Any]


def api_version(text: str) -> int:
    """The major version of ``61.0`` (as a URL's ``v61.0`` carries it), if it is served."""
    major, dot, minor = text.partition(".")
    if not (major.isdigit() and dot and minor == "0"):
        raise not_found()
    if not FIRST_VERSION <= int(major) <= LATEST_VERSION:
        raise not_found()
    return int(major)


def api_path(version: int) -> str:
    return f"/services/data/v{version}.0"


def release(version: int) -> str:
    """The release that brought ``version``: three a year, Winter '15 being 32.0."""
    n = version - 32
    return f"{('Winter', 'Spring', 'Summer')[n % 3]} '{15 + n // 3:02d}"


def same_id(stored: str, given: str) -> bool:
    """Whether ``given`` names the record ``stored``: an 18-character id exactly, a
    15-character one as the case-sensitive prefix it is."""
    return stored == given or (len(given) == 15 and stored[:15] == given)


def ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def sf_datetime(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def utc(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def attributes(sobject: str, id_: str, version: int) -> dict[str, str]:
    return {"type": sobject, "url": f"{api_path(version)}/sobjects/{sobject}/{id_}"}


def account(record: Account, owner_id: str | None) -> Doc:
    # Salesforce never leaves OwnerId empty; the sandbox does when the seed has no owner,
    # so that every canonical field survives the round trip.
    renewal = record.renewal_date.isoformat() if record.renewal_date else None
    score = None if record.health_score is None else float(record.health_score)
    return {"Id": record.id, "Name": record.name, "Opsgraph_Id__c": record.ref,
            "Segment__c": record.segment, "OwnerId": owner_id, "Strategic__c": record.strategic,
            "Renewal_Date__c": renewal, "Health_Score__c": score}  # fmt: skip


def new_record(sobject: schema.SObject, id_: str, owner_id: str, fields: Doc) -> Doc:
    """A record the API creates: each field's default, owned by ``owner_id``, then
    ``fields``."""
    doc = {f.name: f.default for f in sobject.fields if f.name not in UNSTORED}
    return {**doc, "Id": id_, "OwnerId": owner_id, **fields}


class Clock:
    """Each record's CreatedDate and LastModifiedDate, read from the store's change log,
    and the ids of the records deleted."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # id -> (collection, CreatedDate, LastModifiedDate), up to change number _seen
        self.times: dict[str, tuple[str, datetime, datetime]] = {}
        self.deleted: set[str] = set()
        self._seen = 0

    def refresh(self) -> None:
        while rows := self.store.changes(self._seen, limit=1000):
            for _seq, collection, id_, change, at in rows:
                if change == "deleted":
                    self.times.pop(id_, None)
                    self.deleted.add(id_)
                    continue
                when = ms(datetime.fromisoformat(at))
                self.times[id_] = (collection, self.times.get(id_, ("", when))[1], when)
            self._seen = rows[-1][0]

    def reset(self) -> None:
        """Forget everything read: the change log was rolled back."""
        self.times.clear()
        self.deleted.clear()
        self._seen = 0

    def created(self, id_: str) -> datetime:
        return self.times[id_][1]

    def modified(self, id_: str) -> datetime:
        return self.times[id_][2]


class Records:
    """The org's records in the store: found by id (15 characters or 18) or external id,
    read field by field as Salesforce answers them, written after the schema's checks."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.clock = Clock(store)
        if not self.users(INTEGRATION_USER):
            self.add_user(INTEGRATION_USER)

    def users(self, name: str | None = None) -> list[Doc]:
        return self.store.all("User", lambda u: name is None or u["Name"] == name)

    def add_user(self, name: str) -> str:
        id_ = f"005{self.store.next_number('User'):012d}AAA"
        login = name.lower().replace(" ", ".") + "@opsgraph.sandbox"
        self.store.put("User", id_, {"Id": id_, "Name": name, "Username": login, "IsActive": True})
        return id_

    def seed(self, records: list[Record]) -> None:
        accounts = [r for r in records if isinstance(r, Account)]
        if len(accounts) != len(records):
            raise ValueError("the CRM sandbox holds accounts only")
        for a in accounts:
            owner = None
            if a.owner is not None:
                known = self.users(a.owner)
                owner = known[0]["Id"] if known else self.add_user(a.owner)
            self.store.put("Account", a.id, account(a, owner))

    def find(self, sobject: str, id_: str) -> Doc | None:
        if len(id_) == 18:
            return self.store.get(sobject, id_)
        if not ID.fullmatch(id_):
            return None
        found = self.store.all(sobject, lambda d: same_id(d["Id"], id_))
        return found[0] if found else None

    def existing(self, sobject: schema.SObject, id_: str) -> Doc:
        """The record a write or delete names: one deleted is ENTITY_IS_DELETED, one never
        there NOT_FOUND."""
        doc = self.find(sobject.name, id_)
        if doc is not None:
            return doc
        self.clock.refresh()
        if ID.fullmatch(id_) and any(same_id(gone, id_) for gone in self.clock.deleted):
            raise errors.deleted()
        raise not_found()

    def matching(self, sobject: schema.SObject, name: str, value: str) -> tuple[str, list[Doc]]:
        """The external id field called ``name``, and the records whose value it is."""
        field = sobject.external_id(name)
        if field is None:
            raise not_found(external_id_field=name)
        # External ids match case-insensitively unless the field is marked case-sensitive.
        matches = self.store.all(
            sobject.name, lambda d: (d.get(field.name) or "").casefold() == value.casefold()
        )
        return field.name, matches

    def value(self, sobject: schema.SObject, doc: Doc, name: str) -> Any:
        """A field's value: ``Owner.Name`` through the relationship, dates from the clock
        (``refresh`` it first)."""
        head, dot, tail = name.partition(".")
        if dot:
            target, related = self._related(sobject, doc, head)
            return None if related is None else self.value(target, related, tail)
        if name == "IsDeleted":
            return False
        if name == "CreatedDate":
            return self.clock.created(doc["Id"])
        if name in ("LastModifiedDate", "SystemModstamp"):
            return self.clock.modified(doc["Id"])
        return doc.get(name)

    def row(self, sobject: schema.SObject, doc: Doc, fields: list[str], version: int) -> Doc:
        """``doc`` as Salesforce answers it: ``attributes``, then ``fields`` in their order,
        a relationship's fields nested in its record (``clock`` refreshed first)."""
        row: Doc = {"attributes": attributes(sobject.name, doc["Id"], version)}
        for name in fields:
            head, dot, tail = name.partition(".")
            if dot:
                target, related = self._related(sobject, doc, head)
                nested = None if related is None else self.row(target, related, [tail], version)
                row[head] = None if nested is None else {**(row.get(head) or {}), **nested}
                continue
            value = self.value(sobject, doc, name)
            row[name] = sf_datetime(value) if isinstance(value, datetime) else value
        return row

    def _related(
        self, sobject: schema.SObject, doc: Doc, relationship: str
    ) -> tuple[schema.SObject, Doc | None]:
        """The sObject ``relationship`` leads to, and the record of it ``doc`` refers to."""
        via = sobject.relationship(relationship)
        if via is None or via.reference_to is None:
            raise KeyError(relationship)  # SOQL's parser lets only relationships through
        target = schema.SOBJECTS[via.reference_to]
        return target, self.find(target.name, doc.get(via.name) or "")

    def fields(
        self, sobject: schema.SObject, body: Any, *, create: bool, external_id: str | None = None
    ) -> Doc:
        """A write body checked against the schema (``schema.check_fields``), each record
        it refers to (an owner, a Task's account) one the org has."""
        fields = schema.check_fields(sobject, body, create=create, external_id=external_id)
        for field in sobject.fields:
            if field.reference_to is not None and fields.get(field.name) is not None:
                fields[field.name] = self._referred(field, fields[field.name])
        return fields

    def _referred(self, field: schema.Field, value: str) -> str:
        """The 18-character id of the record ``value`` names in ``field``. Not an id at all
        is MALFORMED_ID; the id of another sObject FIELD_INTEGRITY_EXCEPTION; an id the org
        has no record for (never had, or deleted) INVALID_CROSS_REFERENCE_KEY."""
        target = schema.SOBJECTS[field.reference_to or ""]
        wrong = f"{field.label}: id value of incorrect type: {value}"
        if not ID.fullmatch(value):
            raise SalesforceError(400, "MALFORMED_ID", wrong, fields=[field.name])
        if not value.startswith(target.key_prefix):
            raise SalesforceError(400, "FIELD_INTEGRITY_EXCEPTION", wrong, fields=[field.name])
        found = self.find(target.name, value)
        if found is None:
            message = "invalid cross reference id"
            raise SalesforceError(400, "INVALID_CROSS_REFERENCE_KEY", message, fields=[field.name])
        return str(found["Id"])

    def create(self, sobject: schema.SObject, fields: Doc) -> str:
        """A new record holding ``fields``, owned by the API's user unless they say."""
        id_ = f"{sobject.key_prefix}{self.store.next_number(sobject.name):012d}AAA"
        while self.store.get(sobject.name, id_) is not None:
            id_ = f"{sobject.key_prefix}{self.store.next_number(sobject.name):012d}AAA"
        owner = self.users(INTEGRATION_USER)[0]["Id"]
        self.store.put(sobject.name, id_, new_record(sobject, id_, owner, fields))
        return id_
