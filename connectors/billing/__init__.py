"""Billing: Stripe, through the official ``stripe`` SDK in async mode. ``wire`` maps Stripe
objects, ``related`` reads many customers through invoice search, ``errors`` maps the SDK's
exceptions, ``webhooks`` verifies Stripe's signatures."""

from __future__ import annotations

from connectors.billing.connector import BillingConnector
from connectors.models import ConnectorConfig

__all__ = ["BillingConnector", "connect"]


def connect(config: ConnectorConfig) -> BillingConnector:
    return BillingConnector(config)
