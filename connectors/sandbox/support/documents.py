"""The Zendesk Support documents the stand-in stores and serves: organizations, users,
tickets, comments, audits and ticket metric events, built from canonical records or from
writes; the account's SLA policies; and tickets as the event webhooks phrase them.

Users: the API token's user (an admin, ``AGENT_ID``), who requests and submits what the API
writes and the seeded tickets; and per organization one end-user, its support contact."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.models import Case, CustomerRecord, SlaBreach

AGENT_ID = 1000001  # the API token's user: requester and author of what the API writes
ACCOUNT_ID = 9000001
PRIORITIES = ("urgent", "high", "normal", "low")
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")  # in Zendesk's order
TICKET_TYPES = ("question", "incident", "problem", "task")
ROLES = ("end-user", "agent", "admin")
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


def user(id_: int, name: str, email: str, role: str, org: int | None, at: str) -> Doc:
    return {
        "id": id_, "name": name, "email": email, "created_at": at, "updated_at": at,
        "time_zone": "UTC", "iana_time_zone": "Etc/UTC", "phone": None, "photo": None,
        "locale": "en-US", "locale_id": 1, "organization_id": org, "role": role,
        "verified": True, "external_id": None, "tags": [], "alias": None, "active": True,
        "shared": False, "shared_agent": False, "last_login_at": None, "signature": None,
        "details": "", "notes": "", "custom_role_id": None, "moderator": role != "end-user",
        "ticket_restriction": "requested" if role == "end-user" else None,
        "only_private_comments": False, "restricted_agent": False, "suspended": False,
        "user_fields": {},
    }  # fmt: skip


def agent() -> Doc:
    """The API token's user: any email with the right token is it."""
    return user(AGENT_ID, "Opsgraph Integration", "integration@opsgraph.example", "admin", None,
                "2026-01-01T00:00:00Z")  # fmt: skip


def contact_id(org_id: int) -> int:
    return org_id * 10 + 1


def contact(org: Doc) -> Doc:
    """The organization's support contact, an end-user of it."""
    slug = re.sub(r"[^a-z0-9]+", "-", str(org["name"]).lower()).strip("-")
    return user(contact_id(org["id"]), f"{org['name']} Support", f"support@{slug}.example",
                "end-user", org["id"], org["created_at"])  # fmt: skip


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


def new_ticket(id_: int, fields: Mapping[str, Any], body: str, at: str) -> Doc:
    """The ticket a create makes of a request's (checked) fields and first comment."""
    subject = str(fields.get("subject") or body[:80])
    requester = fields.get("requester_id", AGENT_ID)
    return {
        "id": id_, "external_id": fields.get("external_id"),
        "via": {"channel": "api"}, "created_at": at, "updated_at": at,
        "type": fields.get("type"), "subject": subject, "raw_subject": subject,
        "description": body, "priority": fields.get("priority", "normal"),
        "status": fields.get("status", "new"), "requester_id": requester,
        "submitter_id": AGENT_ID, "assignee_id": fields.get("assignee_id"),
        "organization_id": fields.get("organization_id"), "group_id": None,
        "tags": list(fields.get("tags") or []), "custom_fields": [], "is_public": True,
    }  # fmt: skip


def comment(id_: int, audit_id: int | None, author: int, body: str, public: bool, channel: str,
            at: str) -> Doc:  # fmt: skip
    paragraphs = "".join(
        f'<p dir="auto">{html.escape(p).replace(chr(10), "<br>")}</p>' for p in body.split("\n\n")
    )
    return {"id": id_, "type": "Comment", "author_id": author, "body": body,
            "html_body": f'<div class="zd-comment" dir="auto">{paragraphs}</div>',
            "plain_body": body, "public": public, "attachments": [], "audit_id": audit_id,
            "via": {"channel": channel}, "metadata": {"system": {}, "custom": {}},
            "created_at": at}  # fmt: skip


def comment_event(c: Doc) -> Doc:
    return {k: c[k] for k in ("id", "type", "author_id", "body", "public")}


def change_event(id_: int, field: str, value: Any, previous: Any) -> Doc:
    return {"id": id_, "type": "Change", "field_name": field, "value": value,
            "previous_value": previous}  # fmt: skip


def audit(id_: int, ticket_id: int, events: list[Doc], custom: Mapping[str, Any], at: str) -> Doc:
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


# The event a webhook announces for a change of each property (a comment: comment_added).
_CHANGED = {"status": "status_changed", "priority": "priority_changed", "tags": "tags_changed",
            "subject": "subject_changed", "type": "type_changed",
            "assignee_id": "agent_assignment_changed", "requester_id": "requester_changed",
            "organization_id": "organization_changed",
            "external_id": "external_id_changed"}  # fmt: skip


def changed(field: str, value: Any, previous: Any) -> tuple[str, Doc]:
    """The ticket event type of a change of ``field``, and what the event says of it."""
    if field == "tags":
        added, removed = (
            [t for t in value if t not in previous],
            [t for t in previous if t not in value],
        )
        return "ticket.tags_changed", {"tags_added": added, "tags_removed": removed}
    return f"ticket.{_CHANGED[field]}", {"current": value, "previous": previous}


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
