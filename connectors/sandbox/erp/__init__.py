"""A NetSuite stand-in: REST web services records and SuiteQL, over the sandbox store.

Served (every route needs ``Authorization: Bearer <config.secret>``)::

    POST /services/rest/query/v1/suiteql?limit=&offset=   SuiteQL (``query`` has the subset);
                                                          pages of 1..1000 with ``hasMore`` and
                                                          ``totalResults``; ``Prefer: transient``
                                                          is insisted on (400 without it), so a
                                                          connector cannot forget it
    GET  /services/rest/record/v1/{type}/{id}             customer (with ``balance``), invoice,
                                                          creditMemo, journalEntry
    POST /services/rest/record/v1/{invoice|creditMemo}    204 + ``Location`` of the new record;
                                                          ``X-NetSuite-Idempotency-Key`` honoured

plus the ``/_sandbox`` admin routes (``connectors.sandbox.admin``). Every error, injected
faults and requests no route takes included, is NetSuite's body (``errors``)::

    {"type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.2", "title": "Unauthorized",
     "status": 401, "o:errorDetails": [{"detail": "...", "o:errorCode": "INVALID_LOGIN"}]}

The modules, as in every sandbox: ``api`` (routes and handlers), ``documents`` (record
documents, the flat tables SuiteQL reads, balances, seeding), ``query`` (SuiteQL), ``errors``
(NetSuite's error body).

Where the sandbox departs from NetSuite, on purpose:
- SuiteQL reads flat tables: ``customer``, ``transaction`` (invoices, credit memos and journal
  entries with body-level entity and amounts, which real NetSuite keeps on
  ``transactionline``), ``subsidiary``, ``currency`` and ``change``. ``change`` is the store's
  change sequence: real NetSuite has no such table, and an integration there polls
  ``lastmodifieddate`` per record type or a saved search instead.
- Dates come back as ISO 8601, as if wrapped in ``TO_CHAR``; NetSuite uses the user's format.
  Status columns hold the record API's status id (``open``, ``paidInFull``), not SuiteQL's
  one-letter codes.
- Currencies are named by their ISO code, so ``BUILTIN.DF(currency)`` is the ISO code.
- A duplicate ``externalId`` is accepted: NetSuite refuses one, but the seed plants a duplicate
  posting for the reconciler to find, and that must be representable here.
- NetSuite documents idempotency keys for asynchronous requests, where a reused key is refused;
  here a synchronous create replays its first answer (204, same ``Location``), writing nothing.
- No webhooks: NetSuite has no signed outbound webhooks (accounts write SuiteScript User Event
  scripts for that), so ``config.webhook_url`` is ignored and opsgraph polls ``change``.
"""

from __future__ import annotations

from connectors.sandbox import routing
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.erp import errors
from connectors.sandbox.erp.api import NetSuiteApi
from connectors.sandbox.faults import SandboxMiddleware

__all__ = ["NetSuiteApi", "create_app"]


def create_app(config: SandboxConfig) -> SandboxMiddleware:
    return routing.app(NetSuiteApi(config), errors.fault)
