"""Vendor events as the vendors send them, for tests that store one without its sandbox."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from connectors.models import SystemName
from connectors.sandbox.seed import SeedCustomer


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
