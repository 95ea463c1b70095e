"""The Stripe v1 endpoints the billing connector uses, over a ``Store``.

Every request is authenticated with the secret key (Bearer, or Basic with the key as user
name), a request no route takes too, before its 404. Every POST honours
``Idempotency-Key`` the way Stripe does: the same key with the same parameters replays the
first response (``Idempotent-Replayed: true``), with other parameters it is a 400
``idempotency_error``. Only successful writes are remembered, as on Stripe, so a request
refused by validation can be retried with its key.

Each write records a Stripe Event, kept for ``GET /v1/events`` and, with ``webhook_url``
set, delivered signed: ``Stripe-Signature: t=<unix>,v1=<hex>``, the HMAC-SHA256 of
``"<t>.<body>"`` under the endpoint's secret. Seeding records none: it is history.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from connectors.models import Record
from connectors.sandbox.auth import Guard, basic, bearer
from connectors.sandbox.billing import documents
from connectors.sandbox.billing.documents import API_VERSION, PREFIXES, Doc
from connectors.sandbox.billing.errors import (
    StripeError,
    key_reused,
    no_such,
    unauthorized,
    unrecognized,
)
from connectors.sandbox.billing.query import (
    RESOURCES,
    SEARCH_URL,
    accept,
    boolean,
    expansions,
    integer,
    need,
    needed_integer,
    page,
    parse_params,
    search,
    strings,
)
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.idempotency import Replays, fingerprint
from connectors.sandbox.store import Store
from connectors.sandbox.types import Endpoint
from connectors.sandbox.webhooks import Webhooks

CREDIT_REASONS = {"duplicate", "fraudulent", "order_change", "product_unsatisfactory"}


@dataclass(frozen=True)
class Call:
    request_id: str
    idempotency_key: str | None
    method: str
    url: str  # the path, e.g. /v1/customers/cus_1
    id: str  # the {id} in the route, "" for collection routes


Handler = Callable[[dict[str, Any], Call], Doc]


def _key(request: Request) -> str | None:
    """The secret key: the Bearer token, or Basic auth's user name."""
    token = bearer(request)
    if token is not None:
        return token
    credentials = basic(request)
    return None if credentials is None else credentials[0]


def _signed(secret: str, body: bytes) -> dict[str, str]:
    stamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    return {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": f"t={stamp},v1={digest.hexdigest()}",
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }


def _headers(request_id: str) -> dict[str, str]:
    return {"Request-Id": request_id, "Stripe-Version": API_VERSION}


class StripeApi:
    def __init__(self, config: SandboxConfig) -> None:
        self.store = Store(config.db_path)
        self.guard = Guard(config.secret, _key, unauthorized)
        self.replays = Replays(self.store, key_reused)
        self.webhooks = Webhooks(config.webhook_url, partial(_signed, config.webhook_secret))
        self._unknown = self._endpoint(self.unknown)

    # plumbing

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [
            Route("/v1/balance", self._endpoint(self.balance), methods=["GET"]),
            # before /v1/invoices/{id}, which would take "search" for an id
            Route(SEARCH_URL, self._endpoint(self.search_invoices), methods=["GET"]),
        ]
        for plural in RESOURCES:
            routes += [
                Route(f"/v1/{plural}", self._endpoint(self.listing), methods=["GET"]),
                Route(f"/v1/{plural}/{{id}}", self._endpoint(self.retrieve), methods=["GET"]),
            ]
        for plural, create in (
            ("customers", self.create_customer),
            ("invoiceitems", self.create_invoice_item),
            ("invoices", self.create_invoice),
            ("credit_notes", self.create_credit_note),
        ):
            routes.append(Route(f"/v1/{plural}", self._endpoint(create), methods=["POST"]))
        return routes

    async def unrouted(self, request: Request, status: int) -> Response:
        return await self._unknown(request)  # a 404, whatever the status, after the key

    def seed(self, records: list[Record]) -> None:
        for doc in documents.from_records(records, self.store.get):
            self.store.put(doc["object"], doc["id"], doc)

    def _endpoint(self, handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            call = Call(
                "req_" + secrets.token_hex(7),
                request.headers.get("idempotency-key"),
                request.method,
                request.url.path,
                request.path_params.get("id", ""),
            )
            try:
                self.guard.check(request)
                raw = (await request.body()).decode() if request.method == "POST" else ""
                params = parse_params(parse_qsl(raw or request.url.query, keep_blank_values=True))
                outcome = self.replays.once(
                    call.idempotency_key if request.method == "POST" else None,
                    fingerprint(request.method, request.url.path, params),
                    lambda: (200, {"body": handler(params, call), "request_id": call.request_id}),
                )
            except StripeError as error:
                return error.response(_headers(call.request_id))
            first = outcome.answer["request_id"]
            headers = _headers(first)
            if outcome.replayed:
                headers |= {"Idempotent-Replayed": "true", "Original-Request": first}
            body = json.dumps(outcome.answer["body"], indent=2)
            return Response(body, outcome.status, headers, "application/json")

        return endpoint

    def _emit(self, type_: str, obj: Doc, call: Call) -> None:
        event = documents.event(
            self._new_id("evt_"), int(time.time()), type_, obj, request_id=call.request_id,
            idempotency_key=call.idempotency_key,
            pending_webhooks=1 if self.webhooks.enabled else 0,
        )  # fmt: skip
        self.store.put("event", event["id"], event)
        self.webhooks.deliver(json.dumps(event, indent=2).encode())

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}sbx{self.store.next_number(prefix):011d}"

    def _must(self, object_name: str, id_: str, param: str) -> Doc:
        doc = self.store.get(object_name, id_)
        if doc is None:
            raise no_such(object_name, id_, param=param, status=400)
        return doc

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
            prefix = next((p for p in PREFIXES if value.startswith(p)), None)
            loaded = self.store.get(PREFIXES[prefix], value) if prefix else None
            if loaded is None:
                raise unexpandable
            doc[path[0]] = value = loaded
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

    def retrieve(self, params: dict[str, Any], call: Call) -> Doc:
        accept(params, {"expand"})
        object_name = RESOURCES[call.url.split("/")[2]][0]
        doc = self.store.get(object_name, call.id)
        if doc is None:
            raise no_such(object_name, call.id)
        return self._expanded(doc, params)

    def listing(self, params: dict[str, Any], call: Call) -> Doc:
        url = call.url
        object_name, filters = RESOURCES[url.split("/")[2]]
        chosen = [(filters[name], value) for name, value in params.items() if name in filters]
        if object_name == "subscription" and "status" not in params:
            # Stripe leaves ended subscriptions out unless asked for status=all.
            chosen.append((lambda d, v: d["status"] not in v, ("canceled", "incomplete_expired")))
        docs = self.store.all(object_name, lambda d: all(f(d, v) for f, v in chosen))
        return self._expanded(page(object_name, docs, params, url), params)

    def search_invoices(self, params: dict[str, Any], call: Call) -> Doc:
        return self._expanded(search(partial(self.store.all, "invoice"), params), params)

    # writes

    def create_customer(self, params: dict[str, Any], call: Call) -> Doc:
        accept(params, {"name", "email", "description", "phone", "metadata", "expand"})
        doc = documents.customer(
            self._new_id("cus_"), int(time.time()), name=params.get("name"),
            email=params.get("email"), currency=None, metadata=strings(params, "metadata"),
            description=params.get("description"), phone=params.get("phone"),
        )  # fmt: skip
        self.store.put("customer", doc["id"], doc)
        self._emit("customer.created", doc, call)
        return self._expanded(doc, params)

    def create_invoice_item(self, params: dict[str, Any], call: Call) -> Doc:
        accept(params, {"customer", "amount", "currency", "description", "invoice", "metadata",
                        "expand"})  # fmt: skip
        customer = self._must("customer", need(params, "customer"), "customer")
        amount = needed_integer(params, "amount")
        invoice_id = params.get("invoice")
        if invoice_id and self._must("invoice", invoice_id, "invoice")["status"] != "draft":
            raise StripeError(400, f"Invoice {invoice_id} is no longer editable.", param="invoice")
        doc = documents.invoice_item(
            self._new_id("ii_"), int(time.time()), customer_id=customer["id"], amount=amount,
            currency=str(need(params, "currency")), description=params.get("description"),
            metadata=strings(params, "metadata"),
        )  # fmt: skip
        self.store.put("invoiceitem", doc["id"], doc)
        if invoice_id:
            self._bill(self.store.get("invoice", invoice_id) or {}, [doc])
        self._emit("invoiceitem.created", doc, call)
        return self._expanded(doc, params)

    def _bill(self, invoice: Doc, items: list[Doc]) -> Doc:
        """Attach pending items to a draft invoice and recompute its amounts."""
        for item in items:
            item["invoice"] = invoice["id"]
            self.store.put("invoiceitem", item["id"], item)
            line = documents.invoice_line(
                item["id"], invoice["id"], item["amount"], item["currency"], item["period"]
            )
            invoice["lines"]["data"].append(line)
        subtotal = sum(line["amount"] for line in invoice["lines"]["data"])
        invoice["lines"]["total_count"] = len(invoice["lines"]["data"])
        for field in ("subtotal", "subtotal_excluding_tax", "total", "total_excluding_tax",
                      "amount_due", "amount_remaining"):  # fmt: skip
            invoice[field] = subtotal
        self.store.put("invoice", invoice["id"], invoice)
        return invoice

    def create_invoice(self, params: dict[str, Any], call: Call) -> Doc:
        accept(params, {"customer", "currency", "description", "metadata", "auto_advance",
                        "pending_invoice_items_behavior", "expand"})  # fmt: skip
        customer = self._must("customer", need(params, "customer"), "customer")
        behavior = params.get("pending_invoice_items_behavior", "exclude")
        if behavior not in ("include", "exclude"):
            raise StripeError(400, f"Invalid pending_invoice_items_behavior: {behavior}",
                              param="pending_invoice_items_behavior")  # fmt: skip
        pending = self.store.all(
            "invoiceitem", lambda d: d["customer"] == customer["id"] and d["invoice"] is None
        )
        currency = str(
            params.get("currency") or customer.get("currency")
            or (pending[0]["currency"] if pending and behavior == "include" else "usd")
        ).lower()  # fmt: skip
        now = int(time.time())
        doc = documents.invoice(
            self._new_id("in_"), customer_id=customer["id"], currency=currency,
            status="draft", subtotal=0, tax=0, total=0, created=now, number=None,
            period=(now, now), subscription_id=None, lines=[],
            description=params.get("description"),
        )  # fmt: skip
        doc["metadata"] = strings(params, "metadata")
        doc["auto_advance"] = boolean(params, "auto_advance") is not False
        billed = [i for i in pending if i["currency"] == currency] if behavior == "include" else []
        doc = self._bill(doc, billed)
        self._emit("invoice.created", doc, call)
        return self._expanded(doc, params)

    def create_credit_note(self, params: dict[str, Any], call: Call) -> Doc:
        accept(params, {"invoice", "amount", "reason", "memo", "metadata", "expand"})
        invoice = self._must("invoice", need(params, "invoice"), "invoice")
        if invoice["status"] not in ("open", "paid"):
            raise StripeError(
                400, "Credit notes can only be issued for open or paid invoices.", param="invoice"
            )
        amount = integer(params, "amount")
        if amount is None or amount <= 0:
            raise StripeError(400, f"Invalid positive integer: {params.get('amount')}",
                              param="amount")  # fmt: skip
        credited = invoice["pre_payment_credit_notes_amount"]
        credited += invoice["post_payment_credit_notes_amount"]
        if amount > invoice["total"] - credited:
            raise StripeError(400, "The credit note amount cannot exceed the amount remaining "
                                   "to be credited on the invoice.", param="amount")  # fmt: skip
        reason = params.get("reason")
        if reason is not None and reason not in CREDIT_REASONS:
            raise StripeError(400, f"Invalid reason: {reason}", param="reason")
        kind = "pre_payment" if invoice["status"] == "open" else "post_payment"
        count = len(self.store.all("credit_note", lambda d: d["invoice"] == invoice["id"]))
        note = documents.credit_note(
            self._new_id("cn_"), int(time.time()), invoice, amount=amount, kind=kind,
            number=f"{invoice['number'] or invoice['id']}-CN-{count + 1:02d}", reason=reason,
            memo=params.get("memo"), metadata=strings(params, "metadata"),
        )  # fmt: skip
        self.store.put("credit_note", note["id"], note)
        invoice[f"{kind}_credit_notes_amount"] += amount
        if kind == "pre_payment":
            invoice["amount_due"] -= amount
            invoice["amount_remaining"] -= amount
        self.store.put("invoice", invoice["id"], invoice)
        self._emit("credit_note.created", note, call)
        return self._expanded(note, params)
