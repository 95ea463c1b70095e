"""The ERP connector (NetSuite REST web services shapes).

``connect(config)`` returns a ``NetSuiteConnector``: customers, postings (invoices, credit
memos, journal entries) and receivable balances read through SuiteQL; credit memos and
invoices written through the record API with NetSuite's idempotency key. NetSuite has no
signed webhooks, so the gateway polls ``changes``.
"""

from __future__ import annotations

from connectors.erp.connector import NetSuiteConnector, connect

__all__ = ["NetSuiteConnector", "connect"]
