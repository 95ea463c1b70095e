"""The CRM connector (Salesforce REST API shapes): accounts, their owners and health.
``wire`` maps Salesforce rows and SOQL, ``errors`` reads Salesforce's error bodies."""

from __future__ import annotations

from connectors.crm.connector import CrmConnector
from connectors.models import ConnectorConfig

__all__ = ["CrmConnector", "connect"]


def connect(config: ConnectorConfig) -> CrmConnector:
    return CrmConnector(config)
