"""A Stripe stand-in: the v1 endpoints the billing connector uses, in Stripe's wire shapes.

Served (all under Bearer auth with the secret key; lists newest first, paged with
``limit`` 1..100 + ``starting_after`` / ``ending_before``, ``{"object": "list", ...}``)::

    GET  /v1/balance                          the cheap health call
    GET  /v1/customers[/{id}]                 filter: email
    POST /v1/customers                        name, email, description, phone, metadata[...]
    GET  /v1/products[/{id}]                  filter: active
    GET  /v1/prices[/{id}]                    filters: active, currency, product, type;
                                              expand[]=product / data.product
    GET  /v1/subscriptions[/{id}]             filters: customer, price, status (default
                                              hides canceled; status=all shows every one)
    GET  /v1/invoices[/{id}]                  filters: customer, status, subscription
    GET  /v1/invoices/search                  query (a subset of Stripe's Search Query
                                              Language: ``query.py``), limit, page;
                                              a ``search_result`` paged by ``next_page``
    POST /v1/invoices                         draft invoice; pending_invoice_items_behavior
    GET  /v1/invoiceitems[/{id}]              filters: customer, invoice, pending
    POST /v1/invoiceitems                     customer, amount, currency, description, invoice
    GET  /v1/payment_intents[/{id}]           filter: customer
    GET  /v1/credit_notes[/{id}]              filters: invoice, customer
    POST /v1/credit_notes                     invoice, amount, reason, memo (localstripe
                                              has no credit notes, hence these)
    GET  /v1/events[/{id}]                    filters: type (``invoice.*``), types[]

Errors are Stripe's JSON (``errors.py``: 404 ``resource_missing``, 400 ``parameter_unknown``
/ ``parameter_missing`` / ``idempotency_error``, 401 with the key masked, 404 "Unrecognized
request URL" for any other path or method); injected 429s are ``rate_limit_error`` and 5xx
``api_error``. Writes replay by ``Idempotency-Key`` (localstripe does not) and, with
``webhook_url`` set, deliver signed Events. Plus the ``/_sandbox`` admin routes
(``connectors.sandbox.admin``).

The modules, as in every sandbox: ``api`` (routes and handlers), ``documents`` (the stored
wire documents, built from canonical records or writes), ``query`` (parameters, list
filters and paging, the search language), ``errors`` (Stripe's error bodies).
"""

from __future__ import annotations

from connectors.sandbox import routing
from connectors.sandbox.billing import errors
from connectors.sandbox.billing.api import StripeApi
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.faults import SandboxMiddleware

__all__ = ["StripeApi", "create_app"]


def create_app(config: SandboxConfig) -> SandboxMiddleware:
    return routing.app(StripeApi(config), errors.fault)
