"""The Stripe v1 endpoints of the sandbox, over a ``Store``: routes, request plumbing and
the reads (the writes are ``writes.py``, ``subscriptions.py`` and ``usage.py``).

Every request is authenticated with the secret key (Bearer, or Basic with the key as user
name), a request no route takes too, before its 404. Every POST honours
``Idempotency-Key`` the way Stripe does: the same key with the same parameters replays the
first response (``Idempotent-Replayed: true``), with other parameters it is a 400
``idempotency_error``. Only successful writes are remembered, as on Stripe, so a request
refused by validation can be retried with its key. A DELETE ignores the key, as on Stripe.
Every endpoint takes ``expand`` and expands what it answers (``data.`` paths on lists and
searches).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from connectors.models import Record, SystemName
from connectors.sandbox.auth import Guard, basic, bearer
from connectors.sandbox.billing import documents, usage
from connectors.sandbox.billing.documents import API_VERSION, PREFIXES, Doc
from connectors.sandbox.billing.errors import (
    StripeError,
    key_reused,
    no_such,
    unauthorized,
    unrecognized,
)
from connectors.sandbox.billing.query import (
    BALANCE_TRANSACTIONS,
    LISTS,
    Call,
    Listing,
    Pages,
    accept,
    expansions,
    parse_params,
)
from connectors.sandbox.billing.search import SEARCHES, search
from connectors.sandbox.billing.subscriptions import SubscriptionWrites
from connectors.sandbox.billing.usage import UsageWrites
from connectors.sandbox.billing.writes import Writes, found, signed
from connectors.sandbox.bulk import BenchWorld
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.idempotency import Replays, fingerprint
from connectors.sandbox.store import Generated, Store
from connectors.sandbox.types import Endpoint
from connectors.sandbox.webhooks import Webhooks

Handler = Callable[[dict[str, Any], Call], Doc]
BALANCE_TRANSACTIONS_URL = "/v1/customers/{id}/balance_transactions"
REFERENCES = PREFIXES | usage.PREFIXES  # id prefix -> the object ``expand`` loads


def _key(request: Request) -> str | None:
    """The secret key: the Bearer token, or Basic auth's user name."""
    token = bearer(request)
    if token is not None:
        return token
    credentials = basic(request)
    return None if credentials is None else credentials[0]


def _headers(request_id: str) -> dict[str, str]:
    return {"Request-Id": request_id, "Stripe-Version": API_VERSION}


def _plural(call: Call) -> str:
    return call.url.split("/")[2]


class StripeApi:
    def __init__(self, config: SandboxConfig) -> None:
        self.store = Store(config.db_path)
        self.guard = Guard(config.secret, _key, unauthorized)
        self.replays = Replays(self.store, key_reused)
        self.webhooks = Webhooks(config.webhook_url, partial(signed, config.webhook_secret))
        self.writes = Writes(self.store, self.webhooks)
        self.subscriptions = SubscriptionWrites(self.writes)
        self.usage = UsageWrites(self.writes)
        self.pages = Pages(self.store)
        self._unknown = self._endpoint(self.unknown)

    # plumbing

    def routes(self) -> list[BaseRoute]:
        def get(path: str, handler: Handler) -> Route:
            return Route(path, self._endpoint(handler), methods=["GET"])

        def post(path: str, handler: Handler) -> Route:
            return Route(path, self._endpoint(handler), methods=["POST"])

        def delete(path: str, handler: Handler) -> Route:
            return Route(path, self._endpoint(handler), methods=["DELETE"])

        writes, subscriptions, metered = self.writes, self.subscriptions, self.usage
        # Searches first: /v1/{plural}/{id} would take "search" for an id.
        routes: list[BaseRoute] = [get(s.url, self.searching) for s in SEARCHES.values()]
        routes.append(get("/v1/balance", self.balance))
        for plural, listed in (LISTS | usage.LISTS).items():
            routes += [get(f"/v1/{plural}", partial(self.listing, listed)),
                       get(f"/v1/{plural}/{{id}}", partial(self.retrieve, listed))]  # fmt: skip
        return routes + [
            get(BALANCE_TRANSACTIONS_URL, self.balance_transactions),
            get(BALANCE_TRANSACTIONS_URL + "/{child}", self.balance_transaction),
            post("/v1/customers", writes.create_customer),
            post("/v1/customers/{id}", writes.update_customer),
            post(BALANCE_TRANSACTIONS_URL, writes.create_balance_transaction),
            post("/v1/invoiceitems", writes.create_invoice_item),
            post("/v1/invoices", writes.create_invoice),
            post("/v1/invoices/{id}/finalize", writes.finalize_invoice),
            post("/v1/credit_notes", writes.create_credit_note),
            post("/v1/subscriptions/{id}", subscriptions.update),
            delete("/v1/subscriptions/{id}", subscriptions.cancel),
            post("/v1/billing/meters", metered.create_meter),
            post("/v1/billing/meter_events", metered.create_meter_event),
            post("/v1/billing/alerts", metered.create_alert),
        ]

    async def unrouted(self, request: Request, status: int) -> Response:
        return await self._unknown(request)  # a 404, whatever the status, after the key

    def seed(self, records: list[Record]) -> None:
        for doc in documents.from_records(records, self.store.get):
            self.store.put(doc["object"], doc["id"], doc)

    def bulk(self, invoices: int, seed: int) -> dict[str, int]:
        """Billing's side of ``BenchWorld(invoices, seed)``, its customers and invoices,
        made on demand by the seed path's builders (``Store.generate``)."""
        world = BenchWorld(invoices, seed)
        # As the seed dates customers: at the earliest moment of their history.
        origin = world.invoice_facts(0).issued

        def customer(c: int) -> Doc:
            return documents.seeded_customer(world.customer_record(SystemName.BILLING, c), origin)

        def invoice(n: int) -> Doc:
            # What ``seeded_invoice(world.invoice(n))`` makes, from the facts the ``Invoice``
            # is made of: a list page is mostly this, done a hundred times.
            facts = world.invoice_facts(n)
            return documents.billed_invoice(
                facts.id, customer_id=facts.customer_id, currency=facts.currency,
                status=facts.status, subtotal=facts.subtotal, tax=facts.tax,
                total=facts.subtotal + facts.tax, created=facts.issued, number=facts.number,
                period=facts.period, finalized=facts.issued,
            )  # fmt: skip

        customers = Generated(world.customers, world.billing_customer_position, customer)
        self.store.generate("customer", customers)
        self.store.generate("invoice", Generated(invoices, world.invoice_position, invoice))
        return {"customers": world.customers, "invoices": invoices}

    def _endpoint(self, handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            call = Call(
                "req_" + secrets.token_hex(7),
                request.headers.get("idempotency-key"),
                request.method,
                request.url.path,
                request.path_params.get("id", ""),
                request.path_params.get("child", ""),
            )

            def answer(params: dict[str, Any]) -> tuple[int, Any]:
                body = self._expanded(handler(params, call), params)
                return 200, {"body": body, "request_id": call.request_id}

            try:
                self.guard.check(request)
                raw = (await request.body()).decode() if request.method == "POST" else ""
                params = parse_params(parse_qsl(raw or request.url.query, keep_blank_values=True))
                outcome = self.replays.once(
                    call.idempotency_key if request.method == "POST" else None,
                    fingerprint(request.method, request.url.path, params),
                    partial(answer, params),
                )
            except StripeError as error:
                return error.response(_headers(call.request_id))
            first = outcome.answer["request_id"]
            headers = _headers(first)
            if outcome.replayed:
                headers |= {"Idempotent-Replayed": "true", "Original-Request": first}
            # Stripe pretty-prints; not here: Python's pretty-printer is pure Python, and a
            # page of 100 invoices took 6.5 ms to print that way (~1 ms compact with json,
            # 0.1 ms with orjson), a minute of a million-invoice reconciliation. The JSON
            # is the same.
            body = orjson.dumps(outcome.answer["body"])
            return Response(body, outcome.status, headers, "application/json")

        return endpoint

    def _expand(self, doc: Any, path: list[str], full: str) -> None:
        if isinstance(doc, list):
            for item in doc:
                self._expand(item, path, full)
            return
        unexpandable = StripeError(
            400, f"This property cannot be expanded ({full}).", param="expand"
        )
        if not isinstance(doc, dict) or path[0] not in doc:
            raise unexpandable
        value = doc[path[0]]
        if isinstance(value, str):
            prefix = next((p for p in REFERENCES if value.startswith(p)), None)
            loaded = self.store.get(REFERENCES[prefix], value) if prefix else None
            if loaded is None:
                raise unexpandable
            doc[path[0]] = value = loaded
        elif len(path) == 1 and value is not None and not isinstance(value, dict):
            raise unexpandable  # only a reference (or a null one) expands
        if len(path) > 1 and value is not None:
            self._expand(value, path[1:], full)

    def _expanded(self, doc: Doc, params: dict[str, Any]) -> Doc:
        for path in expansions(params):
            self._expand(doc, path.split("."), path)
        return doc

    # reads

    def unknown(self, params: dict[str, Any], call: Call) -> Doc:
        raise unrecognized(call.method, call.url)

    def balance(self, params: dict[str, Any], call: Call) -> Doc:
        accept(params, {"expand"})
        empty = [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}]
        return {"object": "balance", "available": empty, "livemode": False, "pending": empty}

    def retrieve(self, listed: Listing, params: dict[str, Any], call: Call) -> Doc:
        accept(params, {"expand"})
        return found(self.store, listed.object_name, call.id)

    def listing(self, listed: Listing, params: dict[str, Any], call: Call) -> Doc:
        return self.pages.page(listed.object_name, listed.where(params), params, call.url)

    def searching(self, params: dict[str, Any], call: Call) -> Doc:
        searched = SEARCHES[_plural(call)]
        return search(searched, partial(self.store.all, searched.object_name), params)

    def balance_transactions(self, params: dict[str, Any], call: Call) -> Doc:
        wanted = BALANCE_TRANSACTIONS.where(params)
        customer = found(self.store, "customer", call.id)["id"]
        return self.pages.page(
            BALANCE_TRANSACTIONS.object_name,
            lambda d: d["customer"] == customer and wanted(d),
            params,
            call.url,
            scope=customer,
        )

    def balance_transaction(self, params: dict[str, Any], call: Call) -> Doc:
        accept(params, {"expand"})
        customer = found(self.store, "customer", call.id)["id"]
        adjusted = self.store.get(BALANCE_TRANSACTIONS.object_name, call.child)
        if adjusted is None or adjusted["customer"] != customer:
            raise no_such(BALANCE_TRANSACTIONS.object_name, call.child)
        return adjusted
