"""A Stripe stand-in: the v1 endpoints a Stripe integration calls, in Stripe's wire shapes,
faithful enough for Stripe's own SDK.

Served (all under Bearer auth with the secret key; lists newest first, paged with
``limit`` 1..100 + ``starting_after`` / ``ending_before``, ``{"object": "list", ...}``, and
filtered by ``created`` (a Unix time, or ``created[gt|gte|lt|lte]``) besides their own
filters; every endpoint takes ``expand[]``)::

    GET  /v1/balance                          the cheap health call
    GET  /v1/customers[/{id}]                 filter: email
    GET  /v1/customers/search                 query (``search.py``: email, name, phone
                                              exact or ``~``, created compared, metadata),
                                              limit, page; a ``search_result``
    POST /v1/customers[/{id}]                 create / update: name, email, description,
                                              phone, metadata[...] (merged on update)
    GET  /v1/customers/{id}/balance_transactions[/{id}]
                                              filter: invoice
    POST /v1/customers/{id}/balance_transactions
                                              amount, currency, description, metadata
    GET  /v1/products[/{id}]                  filter: active
    GET  /v1/prices[/{id}]                    filters: active, currency, product, type;
                                              expand[]=product / data.product
    GET  /v1/plans[/{id}]                     the legacy view of the recurring prices;
                                              filters: active, product
    GET  /v1/subscriptions[/{id}]             filters: customer, price, status (default
                                              hides ended ones; all, ended)
    POST /v1/subscriptions/{id}               items[n][id|price|quantity] (prorated:
                                              proration_behavior, proration_date),
                                              cancel_at_period_end, metadata
    DELETE /v1/subscriptions/{id}             cancel now (a second time: 404)
    GET  /v1/invoices[/{id}]                  filters: customer, status, subscription
    GET  /v1/invoices/search                  query (customer, status, subscription,
                                              number, metadata), limit, page
    POST /v1/invoices                         draft invoice; pending_invoice_items_behavior
    POST /v1/invoices/{id}/finalize           draft -> open (or paid, with nothing due)
    GET  /v1/invoiceitems[/{id}]              filters: customer, invoice, pending
    POST /v1/invoiceitems                     customer, amount, currency, description, invoice
    GET  /v1/payment_intents[/{id}]           filter: customer
    GET  /v1/credit_notes[/{id}]              filters: invoice, customer
    POST /v1/credit_notes                     invoice, amount, reason, memo (localstripe
                                              has no credit notes, hence these)
    GET  /v1/events[/{id}]                    filters: type (``invoice.*``), types[]
    GET  /v1/billing/meters[/{id}]            filter: status (no ``created``, as on Stripe)
    POST /v1/billing/meters                   display_name, event_name,
                                              default_aggregation[formula] (count, last,
                                              sum), customer_mapping[...], value_settings[...]
    POST /v1/billing/meter_events             event_name, payload[...] (customer and
                                              integer value), identifier (unique), timestamp
    GET  /v1/billing/alerts[/{id}]            filters: alert_type, meter (no ``created``)
    POST /v1/billing/alerts                   alert_type=usage_threshold, title,
                                              usage_threshold[gte|meter|recurrence|filters];
                                              a meter event that brings a customer's usage
                                              to ``gte`` triggers it, once per customer:
                                              the Event ``billing.alert.triggered``

A parameter an endpoint does not apply is refused, never ignored: Stripe's 400
``parameter_unknown`` (``Received unknown parameter: foo``, ``param: foo``). Errors are
Stripe's JSON (``errors.py``: 404 ``resource_missing``, 400 ``parameter_unknown`` /
``parameter_missing`` / ``idempotency_error``, 401 with the key masked, 404 "Unrecognized
request URL" for any other path or method); injected 429s are ``rate_limit_error`` and 5xx
``api_error``. POSTs replay by ``Idempotency-Key`` (localstripe does not) and, with
``webhook_url`` set, deliver signed Events. Plus the ``/_sandbox`` admin routes
(``connectors.sandbox.admin``).

The modules, as in every sandbox: ``api`` (routes, plumbing and reads), ``documents`` (the
stored wire documents, built from canonical records or writes), ``query`` (parameters, list
filters and paging), ``errors`` (Stripe's error bodies); and, as Stripe's share is larger,
``writes`` (the POST handlers and their Events), ``subscriptions`` (a subscription's
changes and cancellation, prorated), ``usage`` (usage-based billing: meters, meter events
and usage alerts) and ``search`` (the Search Query Language).
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
