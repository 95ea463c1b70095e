"""A NetSuite stand-in: REST web services records and SuiteQL, over the sandbox store.

Every route takes either NetSuite credential: ``Authorization: Bearer <config.secret>``
(OAuth 2.0), or token-based authentication, OAuth 1.0a signed with HMAC-SHA256
(``OAuth realm="<config.tba_account>", oauth_consumer_key=..., oauth_token=...``), verified
by recomputing the signature (``connectors.sandbox.auth.OAuth1``) with the consumer and token
secrets of ``config.tba_*``, within five minutes of the sandbox's clock and with a nonce
never used before with its timestamp. Served::

    POST   /services/rest/query/v1/suiteql?limit=&offset=  SuiteQL (``query`` has the subset);
                                                           pages of 1..1000 with ``hasMore``
                                                           and ``totalResults``, the offset a
                                                           multiple of the limit; ``Prefer:
                                                           transient`` is insisted on (400
                                                           without it), so a connector cannot
                                                           forget it
    GET    /services/rest/record/v1/{type}/{id}            customer (with ``balance``), invoice,
           ?fields=&expandSubResources=                    creditMemo, journalEntry, subsidiary,
                                                           currency; ``fields`` names the fields
                                                           to answer, ``expandSubResources``
                                                           shows a created transaction's lines
    POST   /services/rest/record/v1/{invoice|creditMemo}   204 + ``Location`` of the new record
    PATCH  /services/rest/record/v1/{type}/{id}            204 + ``Location``; ``documents.
                                                           PATCHABLE`` says what may change
    DELETE /services/rest/record/v1/{transaction}/{id}     204
    POST   /app/site/hosting/restlet.nl                    the RESTlet opsgraph deploys to void
           ?script=customscript_opsgraph_void&deploy=1     a transaction (SuiteScript's
                                                           ``transaction.void``): JSON ``{"type":
                                                           "invoice" | "creditmemo" |
                                                           "journalentry", "id", "reason"}`` in,
                                                           200 ``{"id": "...", "voided": true}``
                                                           out; 404 for no such transaction of
                                                           that type, 400 for another type or a
                                                           transaction voided already

Writes honour ``X-NetSuite-Idempotency-Key`` (per method and path). Whatever a request carries
is applied or refused with NetSuite's 400 naming it (``o:errorQueryParam``, ``o:errorHeader``,
``o:errorPath``): another query parameter, ``Prefer: respond-async``, an idempotency key on a
read, ``X-NetSuite-PropertyNameValidation`` other than ``Error``, a body that is not
``application/json``, a body field the sandbox does not keep.

Plus the ``/_sandbox`` admin routes (``connectors.sandbox.admin``). Every error, injected
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
  here a synchronous write replays its first answer (204, same ``Location``), writing nothing.
- Records keep a few body fields and one sublist, ``item`` (lines of the transactions created
  here; seeded ones have none), shown only when expanded: NetSuite links every sublist from
  the record, and the sandbox serves no sublist routes. A line's ``item`` is not checked
  against an item catalogue, which the sandbox does not have.
- No record lists (``GET .../record/v1/{type}`` with ``q=``) and no upsert (``PUT``): those
  are refused as unrouted (405). No ``eid:<external id>`` in place of an id: a 400 says so.
- A void is a direct void: amounts (lines included) to zero, status ``voided``, the record
  kept, and the reason written to the memo. There are no payments, so a paid invoice voids
  as an open one does (NetSuite refuses one with payments applied). A RESTlet's refusals are
  NetSuite's error body above; a real RESTlet that throws answers ``{"error": {"code",
  "message"}}``. NetSuite itself applies no idempotency key to a RESTlet (the script has to);
  here the RESTlet honours ``X-NetSuite-Idempotency-Key`` as the record writes do.
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
