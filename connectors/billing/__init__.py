"""Billing: Stripe, through the official ``stripe`` SDK in async mode."""

from __future__ import annotations

from connectors.base import Connector
from connectors.billing.connector import BillingConnector
from connectors.models import ConnectorConfig

__all__ = ["BillingConnector", "connect"]


def connect(config: ConnectorConfig) -> Connector:
    return BillingConnector(config)
