"""Zendesk Support wire shapes <-> canonical records, and how Zendesk phrases an error.

Zendesk ids are integers on the wire and strings in the canonical model. Timestamps are
ISO 8601 in UTC with a ``Z`` and whole seconds ("2026-11-01T09:00:00Z").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors.models import Case, CasePriority, CaseStatus, CustomerRecord, SlaBreach, SystemName

# Zendesk has no sla_breached field on a ticket. The breach state rides on a tag that an
# automation adds ("Hours since last SLA breach > 0" -> add tag), so one ticket read carries
# it; the tag name is configurable (ConnectorConfig.options["breach_tag"]).
DEFAULT_BREACH_TAG = "sla_breached"

# Organization fields that hold the canonical fields Zendesk has no column for; any other
# organization field is carried as metadata.
_ORG_FIELD_EMAIL = "billing_email"
_ORG_FIELD_CURRENCY = "currency"
_ORG_FIELD_ENTITY = "legal_entity"
_RESERVED_ORG_FIELDS = frozenset({_ORG_FIELD_EMAIL, _ORG_FIELD_CURRENCY, _ORG_FIELD_ENTITY})

PRIORITIES = tuple(CasePriority)


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


def ticket_create_body(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The ``ticket`` object for ``POST /api/v2/tickets``; ValueError names what is wrong."""
    missing = [k for k in ("organization_id", "subject", "body") if not payload.get(k)]
    if missing:
        raise ValueError(f"a case needs {', '.join(missing)}")
    org = str(payload["organization_id"])
    if not is_zendesk_id(org):
        raise ValueError(f"organization_id {org!r} is not a Zendesk id")
    priority = payload.get("priority", "normal")
    if priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {', '.join(p.value for p in PRIORITIES)}")
    ticket: dict[str, Any] = {
        "subject": payload["subject"],
        "comment": {"body": payload["body"]},
        "priority": priority,
        "organization_id": int(org),
    }
    if payload.get("external_id"):
        ticket["external_id"] = str(payload["external_id"])
    return ticket


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


def describe(response: httpx.Response) -> str:
    """Zendesk's own words for a failure: ``error`` (a code or a sentence, sometimes an
    object with title/message), ``description`` and the first validation detail."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}"
    parts: list[str] = []
    error = body.get("error")
    if isinstance(error, dict):
        parts += [str(error[k]) for k in ("title", "message") if error.get(k)]
    elif error:
        parts.append(str(error))
    if body.get("description"):
        parts.append(str(body["description"]))
    details = body.get("details")
    if isinstance(details, dict):
        for field, problems in details.items():
            if isinstance(problems, list) and problems and isinstance(problems[0], dict):
                parts.append(f"{field}: {problems[0].get('description', 'invalid')}")
                break
    return ": ".join(parts)[:300] or f"HTTP {response.status_code}"
