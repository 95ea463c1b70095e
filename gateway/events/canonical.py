"""What a system's webhook says, as one canonical event: a CloudEvents 1.0 envelope made with
the ``cloudevents`` SDK, whatever the vendor's own shape.

    id       the vendor's event id (Stripe's ``evt_…``, Zendesk's event id): what a delivery
             is de-duplicated by, with ``source``
    source   ``/systems/<system>``
    type     ``<system>.<the vendor's event type>``: ``billing.customer.subscription.updated``,
             ``support.ticket.status_changed``
    subject  the record it is about, ``<kind>/<id>`` (``subscription/sub_123``), when opsgraph
             models it
    time     when the vendor says it happened
    data     the vendor's event, as it was delivered

The changes an event names (``ChangeEvent``: kind, id and the parent whose list holds the
record) come from the connector that reads that vendor. A system without webhooks (NetSuite,
Salesforce) is polled instead (``gateway.events.feeds``): each change it reports becomes an
event of its own (``from_change``), ``<system>.<kind>.<created|updated|deleted>``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloudevents.conversion import to_dict
from cloudevents.http import CloudEvent, from_dict

from connectors.billing import webhooks as billing
from connectors.errors import WebhookRejected
from connectors.models import ChangeEvent, ChangeType, ObjectKind, SystemName
from connectors.support import webhooks as support
from connectors.support.wire import parse_time


@dataclass(frozen=True)
class Vendor:
    """How one system's events read: their id, type and time, and the changes they name."""

    event_id: Callable[[Mapping[str, Any]], object]
    event_type: Callable[[Mapping[str, Any]], object]
    occurred_at: Callable[[Mapping[str, Any]], datetime]
    changes: Callable[[Mapping[str, Any]], list[ChangeEvent]]


def _stripe_time(event: Mapping[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(event["created"]), UTC)


def _zendesk_time(event: Mapping[str, Any]) -> datetime:
    return parse_time(str(event["time"]))


VENDORS = {
    SystemName.BILLING: Vendor(
        event_id=lambda e: e.get("id"),
        event_type=lambda e: e.get("type"),
        occurred_at=_stripe_time,
        changes=billing.to_changes,
    ),
    SystemName.SUPPORT: Vendor(
        event_id=lambda e: e.get("id"),
        event_type=lambda e: str(e.get("type") or "").removeprefix("zen:event-type:") or None,
        occurred_at=_zendesk_time,
        changes=support.to_changes,
    ),
}


def source_of(system: SystemName) -> str:
    return f"/systems/{system.value}"


def canonical(system: SystemName, event: Mapping[str, Any]) -> CloudEvent:
    """The CloudEvent of a vendor's event that passed its signature check; an event without
    an id, a type or a readable time is ``WebhookRejected`` (``WEBHOOK_MALFORMED``)."""
    vendor = VENDORS[system]
    try:
        event_id, event_type = vendor.event_id(event), vendor.event_type(event)
        occurred_at = vendor.occurred_at(event)
        changes = vendor.changes(event)
    except (KeyError, TypeError, ValueError) as exc:
        raise _malformed(system, f"its time or object cannot be read ({exc!r})") from None
    if not isinstance(event_id, str) or not event_id or len(event_id) > 255:
        raise _malformed(system, "it has no event id of 1-255 characters")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 100:
        raise _malformed(system, "it has no event type of 1-100 characters")
    attributes = {
        "id": event_id,
        "source": source_of(system),
        "type": f"{system.value}.{event_type}",
        "time": occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
    }
    if changes:
        attributes["subject"] = f"{changes[0].kind.value}/{changes[0].id}"
    return CloudEvent(attributes, dict(event))


def _malformed(system: SystemName, why: str) -> WebhookRejected:
    return WebhookRejected(
        f"{system.value} webhook is not an event opsgraph can read: {why}",
        system=system.value,
        code="WEBHOOK_MALFORMED",
    )


def stored(event: CloudEvent) -> dict[str, Any]:
    """The event as the inbox and the outbox keep it: the structured JSON form."""
    return to_dict(event)


def restored(row: Mapping[str, Any]) -> CloudEvent:
    return from_dict(dict(row))


def from_change(change: ChangeEvent) -> CloudEvent:
    """The CloudEvent of a change read from a change feed (a system without webhooks). Its
    id is the change itself (kind, id, type, time), so a window read twice (a poll that
    stopped before it saved its watermark) gives the same events, which the inbox holds
    once."""
    when = change.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    subject = f"{change.kind.value}/{change.id}"
    attributes = {
        "id": f"{subject}@{when}#{change.type.value}",
        "source": source_of(change.system),
        "type": f"{change.system.value}.{change.kind.value}.{change.type.value}",
        "subject": subject,
        "time": when,
        "datacontenttype": "application/json",
    }
    data = {
        "kind": change.kind.value,
        "id": change.id,
        "type": change.type.value,
        "parent": change.parent,
        "occurredAt": when,
    }
    return CloudEvent(attributes, data)


def changes_of(event: CloudEvent) -> list[ChangeEvent]:
    """What a canonical event says changed: read from its vendor's event (a webhook), or
    the change itself (a change feed's)."""
    system = SystemName(str(event["source"]).removeprefix("/systems/"))
    data = event.get_data()
    if not isinstance(data, Mapping):
        return []
    if system in VENDORS:
        return VENDORS[system].changes(data)
    return [
        ChangeEvent(
            system=system,
            kind=ObjectKind(data["kind"]),
            id=str(data["id"]),
            occurred_at=datetime.fromisoformat(str(data["occurredAt"])),
            type=ChangeType(data["type"]),
            parent=data.get("parent"),
        )
    ]
