"""Runnable stand-ins for the four systems of record, served over real HTTP on loopback.

Each sandbox speaks its system's documented wire shapes, keeps its own SQLite storage, signs
its webhooks the way the real system does, and injects faults on request. Every one has the
same core, ``<system>/``:

    __init__   ``create_app(SandboxConfig)``, and what the stand-in serves and where it
               departs from the real system
    api        its routes and handlers (``StripeApi``, ``NetSuiteApi``, ``SalesforceApi``,
               ``ZendeskApi``)
    documents  the wire documents it stores, and canonical records -> documents (seeding)
    query      the request parameters it applies, its query language (SuiteQL, SOQL) and
               its pagination
    errors     the vendor's error bodies

and, where one of those grew past one concept, the same names for the same split:
``search`` (Stripe's and Zendesk's search languages), ``writes`` (the write handlers of
Stripe and Zendesk), and for Salesforce ``schema`` (what ``describe`` says and writes must
pass), ``resources`` (one route table for HTTP and composite subrequests) and
``composite``.

The parts they share live here: ``config`` (how one is run), ``store`` (storage and change
sequence), ``auth`` (one guard for every credential check), ``idempotency`` (replay by key),
``webhooks`` (signed delivery), ``routing`` (an API as an app, with the vendor's answer to
a request no route takes), ``errors`` (the root of the vendors' errors), ``faults`` (fault
injection), ``admin`` (the ``/_sandbox`` routes), ``jsonio`` (JSON with exact decimals),
``serve`` (running apps on loopback ports), ``seed`` (the deterministic demo world),
``bulk`` (the reconciliation benchmark's world of a million invoices, which billing and the
ERP make in their stores themselves) and ``fleet`` (the four together: start, seed, drive).

A sandbox never imports ``connectors/<system>/``: a fake must not share the code it tests.
"""
