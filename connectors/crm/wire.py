"""Salesforce Account records <-> canonical ``Account``, the Task an activity is logged as,
and the SOQL and timestamps the connector writes.

An Account as a SOQL row (``Owner.Name`` selected)::

    {"attributes": {"type": "Account", "url": "/services/data/v61.0/sobjects/Account/001..."},
     "Id": "001...", "Name": "Acme Labs", "Opsgraph_Id__c": "cust_0001", "Segment__c": "SMB",
     "Owner": {"attributes": {"type": "User", "url": "..."}, "Name": "Ana Ortiz"},
     "Strategic__c": false, "Renewal_Date__c": "2027-03-14", "Health_Score__c": 72.0}

Salesforce returns Number fields as JSON decimals (``72.0``) even with scale 0; the
canonical health score is an int.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from connectors.commands import LogAccountActivity
from connectors.models import Account, ChangeEvent, ChangeType, ObjectKind, SystemName

API = "/services/data/v61.0"
# Selecting Owner.Name makes Salesforce join the owning User into the same row: the
# canonical owner is a person's name, not a User id.
ACCOUNT_FIELDS = (
    "Id",
    "Name",
    "Opsgraph_Id__c",
    "Segment__c",
    "Owner.Name",
    "Strategic__c",
    "Renewal_Date__c",
    "Health_Score__c",
)
# canonical write field -> Account field; ``ref`` travels in the upsert URL and ``owner``
# must first become a User id, so neither is here.
WRITE_FIELDS = {
    "name": "Name",
    "segment": "Segment__c",
    "strategic": "Strategic__c",
    "renewal_date": "Renewal_Date__c",
    "health_score": "Health_Score__c",
}
# The external id of a Task the connector logs: the activity's ``external_ref``.
TASK_REF = "Opsgraph_Ref__c"
# Salesforce sets TaskSubtype only when it creates a Task; an update carrying it is refused.
TASK_CREATE_ONLY = {"TaskSubtype": "Task"}
_RECORD_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
_SOQL_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def is_record_id(value: str) -> bool:
    """A well-formed 15- or 18-character Salesforce id. Comparing ``Id`` with anything else
    is a 400 (INVALID_QUERY_FILTER_OPERATOR), so such values never reach a query."""
    return _RECORD_ID.fullmatch(value) is not None


def soql_literal(value: str) -> str:
    return "'" + value.translate(_SOQL_ESCAPES) + "'"


def soql_in(values: Iterable[str]) -> str:
    return "(" + ",".join(soql_literal(v) for v in values) + ")"


def select(
    fields: Iterable[str],
    where: str = "",
    *,
    sobject: str = "Account",
    order_by: str | None = None,
    limit: int | None = None,
) -> str:
    soql = f"SELECT {', '.join(fields)} FROM {sobject}"
    if where:
        soql += f" WHERE {where}"
    if order_by:
        soql += f" ORDER BY {order_by}"
    if limit is not None:
        soql += f" LIMIT {limit}"
    return soql


def sf_datetime(value: datetime) -> str:
    """Salesforce's dateTime form: UTC, milliseconds, ``+0000``."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def parse_sf_datetime(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def account_from_wire(record: Mapping[str, Any]) -> Account:
    owner = record.get("Owner")
    renewal = record.get("Renewal_Date__c")
    score = record.get("Health_Score__c")
    return Account(
        system=SystemName.CRM,
        id=record["Id"],
        name=record["Name"],
        ref=record.get("Opsgraph_Id__c"),
        segment=record.get("Segment__c"),
        owner=owner["Name"] if owner else None,
        strategic=bool(record.get("Strategic__c")),
        renewal_date=date.fromisoformat(renewal) if renewal else None,
        health_score=None if score is None else round(score),
    )


def account_change(row: Mapping[str, Any], since: datetime) -> ChangeEvent:
    """An account ``updated`` reported (with its dates selected) as a change: created
    when it was created after ``since``, updated otherwise."""
    created = parse_sf_datetime(row["CreatedDate"]) > since
    return ChangeEvent(
        system=SystemName.CRM,
        kind=ObjectKind.ACCOUNT,
        id=row["Id"],
        occurred_at=parse_sf_datetime(row["LastModifiedDate"]),
        type=ChangeType.CREATED if created else ChangeType.UPDATED,
    )


def account_fields(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Wire fields for the canonical fields in ``changes`` (a write command's ``given()``);
    a field left out keeps the value Salesforce has, one given as None clears it."""
    return {
        WRITE_FIELDS[name]: value.isoformat() if isinstance(value, date) else value
        for name, value in changes.items()
        if name in WRITE_FIELDS
    }


def task_fields(activity: LogAccountActivity, on: date) -> dict[str, Any]:
    """The Task an activity is logged as, on the account's timeline (``WhatId``): completed
    ``on`` that day, or a follow-up still to do by its ``follow_up_on``, at high priority
    (its owner is set by the connector). ``TASK_CREATE_ONLY`` joins these when the Task is
    created."""
    if activity.follow_up_on is not None:
        status, due, priority = "Not Started", activity.follow_up_on, "High"
    else:
        status, due, priority = "Completed", on, "Normal"
    return {
        "WhatId": activity.account_id,
        "Subject": activity.subject,
        "Description": activity.description,
        "Status": status,
        "Priority": priority,
        "ActivityDate": due.isoformat(),
    }
