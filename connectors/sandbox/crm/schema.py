"""The org's schema: its sObjects (Account, the Tasks logged on one, and the Users who own
them) and their fields, with the properties Salesforce's describe phrases them by. Every
part of the sandbox reads it from here: what SOQL may select and compare, what a record
read returns, what a write may set and requires, and what ``describe`` says.

A field's ``type`` is one of Salesforce's (``FieldType``), as describe and SOQL's errors
spell it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from connectors.sandbox.crm.errors import SalesforceError, json_parser


class FieldType(StrEnum):
    ID = "id"
    REFERENCE = "reference"  # the id of another record
    STRING = "string"
    PICKLIST = "picklist"  # text, one of a list of values (the list is not kept here)
    TEXTAREA = "textarea"  # long text: read and written, never filtered or sorted on
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    DOUBLE = "double"

    @property
    def textual(self) -> bool:
        """Whether a value is text: a SOQL literal in quotes, a JSON string."""
        return self.identifier or self in (FieldType.STRING, FieldType.PICKLIST,
                                           FieldType.TEXTAREA)  # fmt: skip

    @property
    def identifier(self) -> bool:
        """Whether a value is a record id: compared as given, never case-insensitively."""
        return self in (FieldType.ID, FieldType.REFERENCE)


_SOAP_TYPES = {FieldType.ID: "tns:ID", FieldType.REFERENCE: "tns:ID",
               FieldType.STRING: "xsd:string", FieldType.PICKLIST: "xsd:string",
               FieldType.TEXTAREA: "xsd:string", FieldType.BOOLEAN: "xsd:boolean",
               FieldType.DATE: "xsd:date", FieldType.DATETIME: "xsd:dateTime",
               FieldType.DOUBLE: "xsd:double"}  # fmt: skip


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    type: FieldType
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    defaulted_on_create: bool = False
    external_id: bool = False
    id_lookup: bool = False
    name_field: bool = False
    length: int = 0  # characters, for ids and strings
    precision: int = 0  # digits, for numbers
    scale: int = 0  # of them after the decimal point; a write is rounded to it
    reference_to: str | None = None
    relationship: str | None = None  # the name SOQL follows to the referenced record
    default: Any = None  # what a record the API creates holds unless the write sets it

    @property
    def required_on_create(self) -> bool:
        return self.createable and not self.nillable and not self.defaulted_on_create

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "soapType": _SOAP_TYPES[self.type],
            "length": self.length,
            "precision": self.precision,
            "scale": self.scale,
            "nillable": self.nillable,
            "createable": self.createable,
            "updateable": self.updateable,
            "defaultedOnCreate": self.defaulted_on_create,
            "externalId": self.external_id,
            "idLookup": self.id_lookup,
            "unique": False,  # no field here is unique: two accounts may share a ref
            "caseSensitive": False,
            "custom": self.name.endswith("__c"),
            "nameField": self.name_field,
            "filterable": self.type is not FieldType.TEXTAREA,
            "sortable": self.type is not FieldType.TEXTAREA,
            "referenceTo": [self.reference_to] if self.reference_to else [],
            "relationshipName": self.relationship,
        }


@dataclass(frozen=True)
class SObject:
    name: str
    label: str
    label_plural: str
    key_prefix: str
    fields: tuple[Field, ...]
    writable: bool  # whether the API creates, updates and deletes it

    def field(self, name: str) -> Field | None:
        """The field called ``name``, compared as Salesforce does: case-insensitively."""
        return next((f for f in self.fields if f.name.lower() == name.lower()), None)

    def relationship(self, name: str) -> Field | None:
        """The reference field whose relationship is called ``name`` (``Owner``: OwnerId)."""
        return next(
            (f for f in self.fields if (f.relationship or "").lower() == name.lower()), None
        )

    def external_id(self, name: str) -> Field | None:
        found = self.field(name)
        return found if found is not None and found.external_id else None

    def describe(self) -> dict[str, Any]:
        """What ``sobjects`` lists and ``sobjects/<name>`` heads its answer with."""
        return {
            "name": self.name,
            "label": self.label,
            "labelPlural": self.label_plural,
            "keyPrefix": self.key_prefix,
            "custom": False,
            "createable": self.writable,
            "updateable": self.writable,
            "deletable": self.writable,
            "undeletable": False,
            "queryable": True,
            "retrieveable": True,
        }


def _read_only(name: str, label: str, type_: FieldType, length: int = 0) -> Field:
    """A field the org sets itself, never nil: an id, a record's dates."""
    id_lookup = type_ is FieldType.ID
    return Field(name, label, type_, nillable=False, createable=False, updateable=False,
                 defaulted_on_create=True, id_lookup=id_lookup, length=length)  # fmt: skip


def _dates() -> tuple[Field, ...]:
    return (
        _read_only("CreatedDate", "Created Date", FieldType.DATETIME),
        _read_only("LastModifiedDate", "Last Modified Date", FieldType.DATETIME),
        _read_only("SystemModstamp", "System Modstamp", FieldType.DATETIME),
    )


ACCOUNT = SObject(
    "Account", "Account", "Accounts", "001",
    (
        _read_only("Id", "Account ID", FieldType.ID, length=18),
        _read_only("IsDeleted", "Deleted", FieldType.BOOLEAN),
        Field("Name", "Account Name", FieldType.STRING, nillable=False, id_lookup=True,
              name_field=True, length=255),
        Field("Opsgraph_Id__c", "Opsgraph Id", FieldType.STRING, external_id=True,
              id_lookup=True, length=255),
        Field("Segment__c", "Segment", FieldType.STRING, length=255),
        Field("OwnerId", "Owner ID", FieldType.REFERENCE, nillable=False,
              defaulted_on_create=True, length=18, reference_to="User", relationship="Owner"),
        Field("Strategic__c", "Strategic", FieldType.BOOLEAN, nillable=False,
              defaulted_on_create=True, default=False),
        Field("Renewal_Date__c", "Renewal Date", FieldType.DATE),
        Field("Health_Score__c", "Health Score", FieldType.DOUBLE, precision=18),
        *_dates(),
    ),
    writable=True,
)  # fmt: skip

# The sandbox's Users are read-only: seeded, or made when a seed names a new owner.
USER = SObject(
    "User", "User", "Users", "005",
    (
        _read_only("Id", "User ID", FieldType.ID, length=18),
        Field("Username", "Username", FieldType.STRING, nillable=False, createable=False,
              updateable=False, id_lookup=True, length=80),
        Field("Name", "Full Name", FieldType.STRING, nillable=False, createable=False,
              updateable=False, name_field=True, length=121),
        Field("IsActive", "Active", FieldType.BOOLEAN, nillable=False, createable=False,
              updateable=False),
        *_dates(),
    ),
    writable=False,
)  # fmt: skip

# An activity on an account's timeline. Salesforce's WhatId may name many kinds of record;
# here the only one is an Account. TaskSubtype is set when a Task is created, never after.
TASK = SObject(
    "Task", "Task", "Tasks", "00T",
    (
        _read_only("Id", "Activity ID", FieldType.ID, length=18),
        _read_only("IsDeleted", "Deleted", FieldType.BOOLEAN),
        Field("WhatId", "Related To ID", FieldType.REFERENCE, length=18,
              reference_to="Account", relationship="What"),
        Field("Subject", "Subject", FieldType.STRING, name_field=True, length=255),
        Field("ActivityDate", "Due Date Only", FieldType.DATE),
        Field("Status", "Status", FieldType.PICKLIST, nillable=False,
              defaulted_on_create=True, length=40, default="Not Started"),
        Field("Priority", "Priority", FieldType.PICKLIST, nillable=False,
              defaulted_on_create=True, length=40, default="Normal"),
        Field("OwnerId", "Assigned To ID", FieldType.REFERENCE, nillable=False,
              defaulted_on_create=True, length=18, reference_to="User", relationship="Owner"),
        Field("Description", "Comments", FieldType.TEXTAREA, length=32000),
        Field("TaskSubtype", "Task Subtype", FieldType.PICKLIST, updateable=False, length=40),
        Field("Opsgraph_Ref__c", "Opsgraph Ref", FieldType.STRING, external_id=True,
              id_lookup=True, length=80),
        *_dates(),
    ),
    writable=True,
)  # fmt: skip

SOBJECTS = {s.name: s for s in (ACCOUNT, TASK, USER)}


def sobject(name: str) -> SObject | None:
    """The sObject called ``name`` (case-insensitively, as in SOQL and URLs)."""
    return next((s for s in SOBJECTS.values() if s.name.lower() == name.lower()), None)


# -- writes


def _invalid(field: Field, code: str, message: str) -> SalesforceError:
    return SalesforceError(400, code, message, fields=[field.name])


def _valid(field: Field, value: Any) -> Any:
    """``value`` as the org keeps it in ``field``, or Salesforce's refusal."""
    if field.type.textual and isinstance(value, str):
        if field.length and len(value) > field.length:
            message = f"{field.label}: data value too large: {value} (max length={field.length})"
            raise _invalid(field, "STRING_TOO_LONG", message)
        return value
    if field.type is FieldType.BOOLEAN and isinstance(value, bool):
        return value
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if field.type is FieldType.DOUBLE and number:
        kept = Decimal(str(value)).quantize(Decimal(1).scaleb(-field.scale), ROUND_HALF_UP)
        if abs(kept) >= Decimal(10) ** (field.precision - field.scale):
            message = f"{field.label}: value outside of valid range on numeric field: {value}"
            raise _invalid(field, "NUMBER_OUTSIDE_VALID_RANGE", message)
        return float(kept)
    if field.type is FieldType.DATE and isinstance(value, str):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise json_parser(f"Cannot deserialize {field.name} from {json.dumps(value)}")


def required_missing(names: list[str]) -> SalesforceError:
    message = f"Required fields are missing: [{', '.join(names)}]"
    return SalesforceError(400, "REQUIRED_FIELD_MISSING", message, fields=names)


def check_fields(
    sobject: SObject, body: Any, *, create: bool, external_id: str | None = None
) -> dict[str, Any]:
    """A write body checked against the schema: every field one the write may set
    (``create``: on a new record), with a value of its type, numbers rounded to their
    scale; on a create, every required field given. An upsert names its ``external_id``
    field in the URL, never in the body."""
    if not isinstance(body, dict):
        raise json_parser("Expected a JSON object of field values")
    fields: dict[str, Any] = {}
    for key, value in body.items():
        field = sobject.field(key)
        if field is None:
            message = f"No such column '{key}' on sobject of type {sobject.name}"
            raise SalesforceError(400, "INVALID_FIELD", message)
        if field.name == external_id:
            message = "The upsert's external ID belongs in the URL, not the body"
            raise SalesforceError(400, "INVALID_FIELD", message)
        if not (field.createable if create else field.updateable):
            message = (
                f"Unable to create/update fields: {field.name}. Please check the security "
                "settings of this field and verify that it is read/write for your profile "
                "or permission set."
            )
            raise _invalid(field, "INVALID_FIELD_FOR_INSERT_UPDATE", message)
        if value == "" and field.type.textual and not field.type.identifier:
            value = None  # Salesforce saves an empty text as no text
        if value is None and not field.nillable:
            raise required_missing([field.name])
        fields[field.name] = None if value is None else _valid(field, value)
    if create:
        missing = [f.name for f in sobject.fields if f.required_on_create and f.name not in fields]
        if missing:
            raise required_missing(missing)
    return fields
