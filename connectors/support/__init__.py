"""Zendesk Support: organizations (CUSTOMER), tickets (CASE) and SLA breaches from ticket
metric events (SLA_BREACH); writes open tickets and add comments.

``wire`` maps Zendesk JSON to canonical records, ``errors`` reads Zendesk's error bodies,
``webhooks`` verifies Zendesk webhook signatures and turns payloads into change events.
"""

from __future__ import annotations

from connectors.models import ConnectorConfig
from connectors.support.connector import SupportConnector
from connectors.support.wire import SlaPolicy, SlaTarget

__all__ = ["SlaPolicy", "SlaTarget", "SupportConnector", "connect"]


def connect(config: ConnectorConfig) -> SupportConnector:
    return SupportConnector(config)
