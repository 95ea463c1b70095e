"""The Zendesk Support documents the stand-in stores and serves: organizations, tickets,
audits and ticket metric events, built from canonical records or from writes; the account's
SLA policies; and tickets as the event webhooks phrase them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.models import Case, CustomerRecord, SlaBreach

AGENT_ID = 1000001  # the API token's user: requester and author of what the API writes
ACCOUNT_ID = 9000001
PRIORITIES = ("urgent", "high", "normal", "low")
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
BREACH_TAG = "sla_breached"
# The account's SLA policies, one per support tier: (tier, the plan it was set up for, first
# reply within hours), most urgent first. The seed gives its plans these hours, so that an
# entitlement's SLA is the one the desk measures.
SLA_POLICIES: tuple[tuple[str, str, int], ...] = (
    ("premium", "Enterprise", 4),
    ("priority", "Growth", 24),
    ("standard", "Starter", 48),
)
SLA_HOURS = {tier: hours for tier, _, hours in SLA_POLICIES}
Doc = dict[str, Any]


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def unix(value: str) -> int:
    return int(datetime.fromisoformat(value).timestamp())


def organization(record: CustomerRecord) -> Doc:
    fields: dict[str, Any] = dict(record.metadata)
    for name, value in (("billing_email", record.email), ("currency", record.currency),
                        ("legal_entity", record.legal_entity)):  # fmt: skip
        if value is not None:
            fields[name] = value
    at = now()
    return {
        "id": int(record.id), "name": record.name, "external_id": record.ref,
        "details": "", "notes": "", "domain_names": [], "group_id": None,
        "shared_tickets": False, "shared_comments": False, "tags": [],
        "organization_fields": fields, "created_at": at, "updated_at": at,
    }  # fmt: skip


def seeded_ticket(case: Case) -> Doc:
    return {
        "id": int(case.id), "external_id": None, "via": {"channel": "web"},
        "created_at": ts(case.created_at), "updated_at": ts(case.updated_at), "type": None,
        "subject": case.subject, "raw_subject": case.subject, "description": case.subject,
        "priority": case.priority, "status": case.status, "requester_id": AGENT_ID,
        "submitter_id": AGENT_ID, "assignee_id": None,
        "organization_id": int(case.organization_id) if case.organization_id else None,
        "group_id": None, "tags": [], "custom_fields": [], "is_public": True,
    }  # fmt: skip


def new_ticket(id_: int, ticket: Mapping[str, Any]) -> Doc:
    """The ticket a create makes of a request's ``ticket`` object (already checked)."""
    at = now()
    body = str(ticket["comment"]["body"])
    subject = str(ticket.get("subject") or body[:80])
    return {
        "id": id_, "external_id": ticket.get("external_id"),
        "via": {"channel": "api"}, "created_at": at, "updated_at": at, "type": None,
        "subject": subject, "raw_subject": subject, "description": body,
        "priority": ticket.get("priority", "normal"), "status": ticket.get("status", "new"),
        "requester_id": AGENT_ID, "submitter_id": AGENT_ID, "assignee_id": None,
        "organization_id": ticket.get("organization_id"), "group_id": None,
        "tags": list(ticket.get("tags") or []), "custom_fields": [], "is_public": True,
    }  # fmt: skip


def audit(id_: int, ticket_id: int, comment: Any, custom: Mapping[str, Any], at: str) -> Doc:
    """An audit of a ticket write; a comment with a body is its event, numbered ``id_ + 1``."""
    events = []
    if isinstance(comment, dict) and comment.get("body"):
        events.append({"id": id_ + 1, "type": "Comment", "author_id": AGENT_ID,
                       "body": str(comment["body"]),
                       "public": bool(comment.get("public", True))})  # fmt: skip
    return {"id": id_, "ticket_id": ticket_id, "created_at": at, "author_id": AGENT_ID,
            "metadata": {"system": {"client": "opsgraph sandbox"}, "custom": dict(custom)},
            "events": events}  # fmt: skip


def activation(id_: int, ticket_id: int, at: str) -> Doc:
    return {"id": id_, "ticket_id": ticket_id, "metric": "reply_time", "instance_id": 1,
            "type": "activate", "time": at}  # fmt: skip


def breach(record: SlaBreach) -> Doc:
    return {"id": record.id, "ticket_id": int(record.case_id), "metric": record.metric,
            "instance_id": 1, "type": "breach", "time": ts(record.breached_at),
            "deleted": False}  # fmt: skip


def event(event_id: str, type_: str, doc: Mapping[str, Any], change: Mapping[str, Any]) -> Doc:
    """A ticket event as Zendesk's event webhooks send it: the ticket's ids as strings."""
    org = doc.get("organization_id")
    detail = {
        "id": str(doc["id"]), "subject": doc["subject"], "description": doc["description"],
        "status": str(doc["status"]).upper(), "priority": str(doc["priority"]).upper(),
        "organization_id": "0" if org is None else str(org), "tags": doc["tags"],
        "requester_id": str(doc["requester_id"]), "external_id": doc["external_id"] or "",
        "created_at": doc["created_at"], "updated_at": doc["updated_at"],
        "via": {"channel": doc["via"]["channel"]}, "is_public": doc["is_public"],
    }  # fmt: skip
    return {
        "type": f"zen:event-type:{type_}", "account_id": ACCOUNT_ID, "id": event_id,
        "time": now(), "zendesk_event_version": "2022-11-06",
        "subject": f"zen:ticket:{doc['id']}", "detail": detail, "event": dict(change),
    }  # fmt: skip


def sla_policies(base_url: str) -> list[Doc]:
    """First reply within the tier's hours for urgent, high and normal tickets."""
    return [
        {"url": f"{base_url}/api/v2/slas/policies/{360000100 + n}.json", "id": 360000100 + n,
         "title": f"{tier.title()} support",
         "description": f"{plan} plan: first reply within {hours} hours", "position": n,
         "filter": {"all": [{"field": "current_tags", "operator": "includes",
                             "value": f"support_{tier}"}], "any": []},
         "policy_metrics": [{"priority": p, "metric": "first_reply_time", "target": hours * 60,
                             "business_hours": False} for p in PRIORITIES[:3]],
         "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
        for n, (tier, plan, hours) in enumerate(SLA_POLICIES, start=1)
    ]  # fmt: skip
