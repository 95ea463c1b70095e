"""The CRM sandbox's records: Account and User documents in the store, their schema (fields
and types, what a write may set), Salesforce's date formats, and Accounts from canonical
records.

Documents hold the fields a write sets; ``CreatedDate`` and ``LastModifiedDate`` are not
stored but read from the store's change log (``Clock``), the one clock every write goes
through.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any

from connectors.models import Account
from connectors.sandbox.crm.errors import SalesforceError
from connectors.sandbox.store import Store

API = "/services/data/v61.0"
ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
TYPES = {
    "Account": {"Id": "id", "Name": "string", "Opsgraph_Id__c": "string", "Segment__c": "string",
                "OwnerId": "id", "Owner.Name": "string", "Strategic__c": "boolean",
                "Renewal_Date__c": "date", "Health_Score__c": "double",
                "CreatedDate": "datetime", "LastModifiedDate": "datetime"},
    "User": {"Id": "id", "Name": "string", "IsActive": "boolean",
             "CreatedDate": "datetime", "LastModifiedDate": "datetime"},
}  # fmt: skip
WRITABLE = ("Name", "Opsgraph_Id__c", "Segment__c", "OwnerId", "Strategic__c",
            "Renewal_Date__c", "Health_Score__c")  # fmt: skip
NOT_NULL = ("Name", "OwnerId", "Strategic__c")
Doc = dict[str, Any]


def ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def sf_datetime(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def utc(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def attributes(sobject: str, id_: str) -> dict[str, str]:
    return {"type": sobject, "url": f"{API}/sobjects/{sobject}/{id_}"}


def _valid(kind: str, value: Any) -> bool:
    if kind in ("string", "id"):
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "double":
        return isinstance(value, int | float) and not isinstance(value, bool)
    try:
        return isinstance(value, str) and bool(date.fromisoformat(value))
    except ValueError:
        return False


def check_fields(body: Any, *, upsert: bool) -> dict[str, Any]:
    """An Account write body checked against the schema, numbers as Salesforce keeps them."""
    if not isinstance(body, dict):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "Expected a JSON object of field values")
    for key, value in body.items():
        if key not in WRITABLE:
            message = f"No such column '{key}' on sobject of type Account"
            raise SalesforceError(400, "INVALID_FIELD", message)
        if upsert and key == "Opsgraph_Id__c":
            message = "The upsert's external ID belongs in the URL, not the body"
            raise SalesforceError(400, "INVALID_FIELD", message)
        if (value is not None or key in NOT_NULL) and not _valid(TYPES["Account"][key], value):
            message = f"Cannot deserialize {key} from {json.dumps(value)}"
            raise SalesforceError(400, "JSON_PARSER_ERROR", message)
    if body.get("Health_Score__c") is not None:
        return {**body, "Health_Score__c": float(body["Health_Score__c"])}
    return body


def account(record: Account, owner_id: str | None) -> Doc:
    # Salesforce never leaves OwnerId empty; the sandbox does when the seed has no owner,
    # so that every canonical field survives the round trip.
    renewal = record.renewal_date.isoformat() if record.renewal_date else None
    score = None if record.health_score is None else float(record.health_score)
    return {"Id": record.id, "Name": record.name, "Opsgraph_Id__c": record.ref,
            "Segment__c": record.segment, "OwnerId": owner_id, "Strategic__c": record.strategic,
            "Renewal_Date__c": renewal, "Health_Score__c": score}  # fmt: skip


def new_account(id_: str, ref: str, owner_id: str, fields: dict[str, Any]) -> Doc:
    """An Account an upsert creates: what a new Salesforce record holds, then ``fields``."""
    return {"Id": id_, "Name": fields["Name"], "Opsgraph_Id__c": ref, "Segment__c": None,
            "OwnerId": owner_id, "Strategic__c": False, "Renewal_Date__c": None,
            "Health_Score__c": None, **fields}  # fmt: skip


class Clock:
    """Each record's CreatedDate and LastModifiedDate, read from the store's change log."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # id -> (collection, CreatedDate, LastModifiedDate), up to change number _seen
        self.times: dict[str, tuple[str, datetime, datetime]] = {}
        self._seen = 0

    def refresh(self) -> None:
        while rows := self.store.changes(self._seen, limit=1000):
            for _seq, collection, id_, _type, at in rows:
                when = ms(datetime.fromisoformat(at))
                self.times[id_] = (collection, self.times.get(id_, ("", when))[1], when)
            self._seen = rows[-1][0]

    def created(self, id_: str) -> datetime:
        return self.times[id_][1]

    def modified(self, id_: str) -> datetime:
        return self.times[id_][2]
