"""The ERP connector (NetSuite REST web services shapes).

``connect(config)`` returns an ``ErpConnector``: customers, postings (invoices, credit
memos, journal entries) and receivable balances read through SuiteQL; credit memos and
invoices written through the record API with NetSuite's idempotency key, postings voided
through a RESTlet (the record API has no void). NetSuite has no signed webhooks, so the
gateway polls ``changes``. ``auth`` signs requests (OAuth 2.0 or token-based
authentication), ``errors`` reads NetSuite's error bodies.
"""

from __future__ import annotations

from connectors.erp.connector import ErpConnector, ShadowErpConnector
from connectors.models import ConnectorConfig

__all__ = ["ErpConnector", "ShadowErpConnector", "connect", "connect_shadow"]


def connect(config: ConnectorConfig) -> ErpConnector:
    return ErpConnector(config)


def connect_shadow(config: ConnectorConfig) -> ErpConnector:
    return ShadowErpConnector(config)
