"""Zendesk webhooks: proving a request came from Zendesk, and what it says changed.

Zendesk signs ``timestamp + body`` with HMAC-SHA256 under the webhook's signing secret and
sends the base64 digest in ``X-Zendesk-Webhook-Signature``, the timestamp (ISO 8601) in
``X-Zendesk-Webhook-Signature-Timestamp``. A stale timestamp is refused so that a captured
request cannot be replayed later.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.errors import WebhookRejected
from connectors.models import ChangeEvent, ChangeType, ObjectKind, SystemName
from connectors.support.wire import parse_time

SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"

_SYSTEM = SystemName.SUPPORT.value
_KINDS = {"ticket": ObjectKind.CASE, "organization": ObjectKind.CUSTOMER}
_DELETED = {"soft_deleted", "permanently_deleted", "deleted"}


def sign(body: bytes, timestamp: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(
    body: bytes,
    signature: str,
    timestamp: str,
    secret: str,
    tolerance_s: float = 300,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The decoded payload of a genuine, fresh webhook; ``WebhookRejected`` otherwise
    (code ``WEBHOOK_SIGNATURE_INVALID`` or ``WEBHOOK_TIMESTAMP_STALE``)."""
    if not hmac.compare_digest(sign(body, timestamp, secret).encode(), signature.encode()):
        raise WebhookRejected(
            "webhook signature does not match", system=_SYSTEM, code="WEBHOOK_SIGNATURE_INVALID"
        )
    try:
        sent = parse_time(timestamp)
    except ValueError:
        raise WebhookRejected(
            "webhook timestamp is unreadable", system=_SYSTEM, code="WEBHOOK_TIMESTAMP_STALE"
        ) from None
    age = ((now or datetime.now(UTC)) - sent).total_seconds()
    if abs(age) > tolerance_s:
        raise WebhookRejected(
            f"webhook timestamp is {age:.0f}s old (tolerance {tolerance_s:.0f}s)",
            system=_SYSTEM,
            code="WEBHOOK_TIMESTAMP_STALE",
        )
    try:
        payload = json.loads(body)
    except ValueError:
        raise WebhookRejected(
            "webhook body is not JSON", system=_SYSTEM, code="WEBHOOK_MALFORMED"
        ) from None
    if not isinstance(payload, dict):
        raise WebhookRejected(
            "webhook body is not an object", system=_SYSTEM, code="WEBHOOK_MALFORMED"
        )
    return payload


def to_changes(payload: Mapping[str, Any]) -> list[ChangeEvent]:
    """``zen:event-type:ticket.created`` -> a created CASE, other ticket events -> updated,
    deletions -> deleted; organization events likewise for CUSTOMER. Unknown domains (users,
    articles ...) carry nothing opsgraph reads, so they yield no event."""
    event_type = str(payload.get("type", ""))
    domain, _, action = event_type.removeprefix("zen:event-type:").partition(".")
    kind = _KINDS.get(domain)
    detail = payload.get("detail") or {}
    if kind is None or "id" not in detail:
        return []
    if action == "created":
        change = ChangeType.CREATED
    elif action in _DELETED:
        change = ChangeType.DELETED
    else:
        change = ChangeType.UPDATED
    when = payload.get("time") or detail.get("updated_at")
    # A ticket's organization ("0": none) holds it in its list of cases.
    organization = str(detail.get("organization_id") or "0") if kind is ObjectKind.CASE else "0"
    return [
        ChangeEvent(
            system=SystemName.SUPPORT,
            kind=kind,
            id=str(detail["id"]),
            occurred_at=parse_time(when) if when else datetime.now(UTC),
            type=change,
            parent=None if organization == "0" else organization,
        )
    ]
