"""Zendesk Support wire shapes <-> canonical records.

Zendesk ids are integers on the wire and strings in the canonical model. Timestamps are
ISO 8601 in UTC with a ``Z`` and whole seconds ("2026-11-01T09:00:00Z").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.commands import CreateCase, EscalateCase
from connectors.models import (
    Case,
    CasePriority,
    CaseStatus,
    ChangeEvent,
    ChangeType,
    CustomerRecord,
    ObjectKind,
    SlaBreach,
    SystemName,
)

# Zendesk has no sla_breached field on a ticket. The breach state rides on a tag that an
# automation adds ("Hours since last SLA breach > 0" -> add tag), so one ticket read carries
# it; the tag name is configurable (ConnectorConfig.options["breach_tag"]).
DEFAULT_BREACH_TAG = "sla_breached"
# The tag an escalation adds, so that views and triggers can pick escalated tickets out.
ESCALATED_TAG = "escalated"

# Organization fields that hold the canonical fields Zendesk has no column for; any other
# organization field is carried as metadata.
_ORG_FIELD_EMAIL = "billing_email"
_ORG_FIELD_CURRENCY = "currency"
_ORG_FIELD_ENTITY = "legal_entity"
_RESERVED_ORG_FIELDS = frozenset({_ORG_FIELD_EMAIL, _ORG_FIELD_CURRENCY, _ORG_FIELD_ENTITY})


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_zendesk_id(value: str) -> bool:
    """Zendesk record ids are positive integers; anything else cannot exist there."""
    return value.isascii() and value.isdigit() and int(value) > 0


def to_customer(org: Mapping[str, Any]) -> CustomerRecord:
    fields = org.get("organization_fields") or {}
    return CustomerRecord(
        system=SystemName.SUPPORT,
        id=str(org["id"]),
        name=org["name"],
        ref=org.get("external_id") or None,
        email=fields.get(_ORG_FIELD_EMAIL),
        currency=fields.get(_ORG_FIELD_CURRENCY),
        legal_entity=fields.get(_ORG_FIELD_ENTITY),
        metadata={
            k: str(v) for k, v in fields.items() if k not in _RESERVED_ORG_FIELDS and v is not None
        },
    )


def to_case(ticket: Mapping[str, Any], breach_tag: str = DEFAULT_BREACH_TAG) -> Case:
    org = ticket.get("organization_id")
    return Case(
        system=SystemName.SUPPORT,
        id=str(ticket["id"]),
        organization_id="" if org is None else str(org),
        subject=ticket.get("subject") or "",
        # Zendesk leaves priority empty until someone sets it; it is handled as normal.
        priority=CasePriority(ticket.get("priority") or "normal"),
        status=CaseStatus(ticket["status"]),
        created_at=parse_time(ticket["created_at"]),
        updated_at=parse_time(ticket["updated_at"]),
        sla_breached=breach_tag in (ticket.get("tags") or ()),
    )


def ticket_change(ticket: Mapping[str, Any]) -> ChangeEvent:
    """A ticket from the incremental export as a change. Zendesk sends each changed
    ticket's current state, not what changed: a ticket never updated since creation
    (created_at == updated_at) is reported as created."""
    if ticket.get("status") == "deleted":
        change = ChangeType.DELETED
    elif ticket["created_at"] == ticket["updated_at"]:
        change = ChangeType.CREATED
    else:
        change = ChangeType.UPDATED
    return ChangeEvent(
        system=SystemName.SUPPORT,
        kind=ObjectKind.CASE,
        id=str(ticket["id"]),
        occurred_at=parse_time(ticket["updated_at"]),
        type=change,
    )


def is_breach(event: Mapping[str, Any]) -> bool:
    return event.get("type") == "breach" and not event.get("deleted", False)


def to_breach(event: Mapping[str, Any]) -> SlaBreach:
    return SlaBreach(
        system=SystemName.SUPPORT,
        id=str(event["id"]),
        case_id=str(event["ticket_id"]),
        metric=event["metric"],
        breached_at=parse_time(event["time"]),
    )


def ticket_body(command: CreateCase) -> dict[str, Any]:
    """The ``ticket`` object for ``POST /api/v2/tickets``; the organization id is a Zendesk
    id (``is_zendesk_id``)."""
    ticket: dict[str, Any] = {
        "subject": command.subject,
        "comment": {"body": command.body},
        "priority": command.priority.value,
        "organization_id": int(command.organization_id),
    }
    if command.external_id:
        ticket["external_id"] = command.external_id
    return ticket


def escalation(command: EscalateCase) -> dict[str, Any]:
    """The ``ticket`` object of ``PUT /api/v2/tickets/{id}`` that escalates it. The tag goes
    in ``additional_tags``, which Zendesk adds to the ticket's tags: sending ``tags`` would
    replace them with what this client last read, dropping a tag added meanwhile."""
    return {
        "priority": command.priority.value,
        "additional_tags": [ESCALATED_TAG],
        "comment": {"body": command.reason, "public": False},
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaTarget:
    priority: str
    metric: str  # first_reply_time next_reply_time agent_work_time ...
    minutes: int
    business_hours: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaPolicy:
    """A Zendesk SLA policy: which tickets it applies to (``filter``, as Zendesk phrases
    it) and the target per priority and metric."""

    id: str
    title: str
    description: str
    position: int
    filter: Mapping[str, Any]
    targets: tuple[SlaTarget, ...]

    def hours(self, priority: str, metric: str = "first_reply_time") -> float | None:
        for t in self.targets:
            if t.priority == priority and t.metric == metric:
                return t.minutes / 60
        return None


def to_policy(doc: Mapping[str, Any]) -> SlaPolicy:
    return SlaPolicy(
        id=str(doc["id"]),
        title=doc["title"],
        description=doc.get("description") or "",
        position=int(doc.get("position") or 0),
        filter=doc.get("filter") or {},
        targets=tuple(
            SlaTarget(
                priority=m["priority"],
                metric=m["metric"],
                minutes=int(m["target"]),
                business_hours=bool(m.get("business_hours", False)),
            )
            for m in doc.get("policy_metrics") or ()
        ),
    )
