"""A NetSuite stand-in: REST web services records and SuiteQL, over the sandbox store.

Served (every route needs ``Authorization: Bearer <config.secret>``)::

    POST /services/rest/query/v1/suiteql?limit=&offset=   SuiteQL (``suiteql`` has the subset);
                                                          pages of 1..1000 with ``hasMore`` and
                                                          ``totalResults``; ``Prefer: transient``
                                                          is insisted on (400 without it), so a
                                                          connector cannot forget it
    GET  /services/rest/record/v1/{type}/{id}             customer (with ``balance``), invoice,
                                                          creditMemo, journalEntry
    POST /services/rest/record/v1/{invoice|creditMemo}    204 + ``Location`` of the new record;
                                                          ``X-NetSuite-Idempotency-Key`` honoured

plus the ``/_sandbox`` admin routes of ``connectors.sandbox.faults``. Every error, injected
faults included, is NetSuite's body (``application/vnd.oracle.resource+json; type=error``)::

    {"type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.2", "title": "Unauthorized",
     "status": 401, "o:errorDetails": [{"detail": "...", "o:errorCode": "INVALID_LOGIN"}]}

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

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp

from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.erp.api import RECORD, SUITEQL, NetSuiteApi, error_body, http_error
from connectors.sandbox.erp.documents import Ledger
from connectors.sandbox.faults import SandboxMiddleware
from connectors.sandbox.store import Store

__all__ = ["create_app"]


def create_app(config: SandboxConfig) -> ASGIApp:
    ledger = Ledger(Store(config.db_path))
    api = NetSuiteApi(ledger, config.secret)
    app = Starlette(
        routes=[
            Route(SUITEQL, api.guarded(api.suiteql), methods=["POST"]),
            Route(RECORD + "/{kind}/{id}", api.guarded(api.get_record), methods=["GET"]),
            Route(RECORD + "/{kind}", api.guarded(api.create_record), methods=["POST"]),
        ],
        exception_handlers={404: http_error, 405: http_error},
    )
    return SandboxMiddleware(app, seeder=ledger.seed, error_body=error_body)
