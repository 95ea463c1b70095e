"""Runnable stand-ins for the four systems of record, served over real HTTP on loopback.

Each sandbox speaks its system's documented wire shapes, keeps its own SQLite storage, signs
its webhooks the way the real system does, and injects faults on request. Every one has the
same shape, ``<system>/``:

    __init__   ``create_app(SandboxConfig)``, and what the stand-in serves
    api        its routes and handlers (``StripeApi``, ``NetSuiteApi``, ``SalesforceApi``,
               ``ZendeskApi``)
    documents  the wire documents it stores, and canonical records -> documents (seeding)
    query      its query, search and filter language (Stripe search and list filters,
               SuiteQL, SOQL, Zendesk search) and its pagination
    errors     the vendor's error bodies

The parts they share live here: ``config`` (how one is run), ``store`` (storage and change
sequence), ``auth`` (one guard for every credential check), ``idempotency`` (replay by key),
``webhooks`` (signed delivery), ``routing`` (an API as an app, with the vendor's answer to
a request no route takes), ``errors`` (the root of the vendors' errors), ``faults`` (fault
injection), ``admin`` (the ``/_sandbox`` routes), ``jsonio`` (JSON with exact decimals),
``serve`` (running apps on loopback ports), ``seed`` (the deterministic demo world) and
``fleet`` (the four together: start, seed, drive).

A sandbox never imports ``connectors/<system>/``: a fake must not share the code it tests.
"""
