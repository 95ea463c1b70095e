"""Vendor events as the vendors send them, for tests that store one without its sandbox."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors.models import SystemName
from connectors.sandbox.billing.documents import event
from connectors.sandbox.billing.writes import signed
from connectors.sandbox.seed import SeedCustomer


def invoice_paid(
    event_id: str, customer: str = "cus_x", invoice: str | None = None
) -> dict[str, Any]:
    """Stripe's ``invoice.paid`` for ``invoice`` (by default ``in_<event_id>``) of the billing
    customer ``customer``, as the billing sandbox would send it."""
    paid = {"id": invoice or f"in_{event_id}", "object": "invoice", "customer": customer}
    return event(
        event_id, int(time.time()), "invoice.paid", paid,
        request_id=f"req_{event_id}", idempotency_key=None, pending_webhooks=1,
    )  # fmt: skip


def deliver_signed(url: str, vendor_event: dict[str, Any], secret: str) -> None:
    """``vendor_event`` delivered to the gateway at ``url`` as Stripe would: signed with
    ``secret``; the gateway must take it (200)."""
    body = json.dumps(vendor_event).encode()
    answer = httpx.post(f"{url}/webhooks/billing", content=body, headers=signed(secret, body))
    assert answer.status_code == 200, answer.text


def usage_alert(customer: SeedCustomer, value: int, threshold: int = 1000) -> dict[str, Any]:
    """Stripe's ``billing.alert.triggered`` for ``customer``'s usage reaching ``value``."""
    alert = f"alrt_{uuid.uuid4().hex[:12]}"
    return {
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(datetime(2026, 12, 7, 9, tzinfo=UTC).timestamp()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "billing.alert.triggered",
        "data": {
            "object": {
                "object": "billing.alert_triggered",
                "alert": {
                    "id": alert,
                    "object": "billing.alert",
                    "alert_type": "usage_threshold",
                    "livemode": False,
                    "status": "active",
                    "title": "API calls over the plan",
                    "usage_threshold": {
                        "filters": None,
                        "gte": threshold,
                        "meter": "mtr_api_calls",
                        "recurrence": "one_time",
                    },
                },
                "created": int(datetime(2026, 12, 7, 9, tzinfo=UTC).timestamp()),
                "customer": customer.external_ids[SystemName.BILLING],
                "livemode": False,
                "value": value,
            }
        },
    }
