"""The Stripe v1 endpoints the billing connector uses, over a ``Store``.

Every request is authenticated with the secret key (Bearer, or Basic with the key as user
name); every POST honours ``Idempotency-Key`` the way Stripe does: the same key with the
same parameters replays the first response (``Idempotent-Replayed: true``), with other
parameters it is a 400 ``idempotency_error``. Only successful writes are remembered, as on
Stripe, so a request refused by validation can be retried with its key.

Each write records a Stripe Event (``events.py``); seeding records none: it is history.
"""

from __future__ import annotations

import base64
import binascii
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
from starlette.routing import Route

from connectors.models import Record
from connectors.sandbox.billing import documents, search
from connectors.sandbox.billing.documents import API_VERSION, PREFIXES, Doc
from connectors.sandbox.billing.events import EventLog
from connectors.sandbox.billing.listing import RESOURCES, page
from connectors.sandbox.billing.params import (
    ApiError,
    accept,
    boolean,
    expansions,
    integer,
    mask,
    need,
    no_such,
    parse,
    strings,
)
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.store import Store

CREDIT_REASONS = {"duplicate", "fraudulent", "order_change", "product_unsatisfactory"}


@dataclass(frozen=True)
class Call:
    request_id: str
    idempotency_key: str | None
    method: str
    url: str  # the path, e.g. /v1/customers/cus_1
    id: str  # the {id} in the route, "" for collection routes


class StripeApi:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.store = Store(config.db_path)
        self.events = EventLog(self.store, config, self._new_id)

    # plumbing

    def routes(self) -> list[Route]:
        routes = [
            Route("/v1/balance", self._endpoint(self.balance), methods=["GET"]),
            # before /v1/invoices/{id}, which would take "search" for an id
            Route("/v1/invoices/search", self._endpoint(self.search_invoices), methods=["GET"]),
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
        routes.append(Route("/{path:path}", self._endpoint(self.unknown)))
        return routes

    def seed(self, records: list[Record]) -> None:
        for doc in documents.from_records(records, self.store.get):
            self.store.put(doc["object"], doc["id"], doc)

    def _endpoint(self, handler: Callable[[dict[str, Any], Call], Doc]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            call = Call(
                "req_" + secrets.token_hex(7),
                request.headers.get("idempotency-key"),
                request.method,
                request.url.path,
                request.path_params.get("id", ""),
            )
            try:
                self._authenticate(request)
                raw = (await request.body()).decode() if request.method == "POST" else ""
                params = parse(parse_qsl(raw or request.url.query, keep_blank_values=True))
                key = call.idempotency_key if request.method == "POST" else None
                fingerprint = json.dumps([request.method, request.url.path, params], sort_keys=True)
                if key and (replayed := self._replay(key, fingerprint)) is not None:
                    return replayed
                body = handler(params, call)
                if key:
                    saved = {
                        "fingerprint": fingerprint,
                        "body": body,
                        "request_id": call.request_id,
                    }
                    self.store.remember(key, 200, saved)
                return self._json(200, body, call.request_id)
            except ApiError as error:
                extra = {"WWW-Authenticate": 'Basic realm="Stripe"'} if error.status == 401 else {}
                return self._json(error.status, error.payload(), call.request_id, extra)

        return endpoint

    def _json(
        self, status: int, body: Any, request_id: str, extra: dict[str, str] | None = None
    ) -> Response:
        headers = {"Request-Id": request_id, "Stripe-Version": API_VERSION, **(extra or {})}
        return Response(json.dumps(body, indent=2), status, headers, "application/json")

    def _authenticate(self, request: Request) -> None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        key = value.strip() if scheme.lower() == "bearer" else ""
        if scheme.lower() == "basic":
            try:
                key = base64.b64decode(value).decode().partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
        if not key:
            raise ApiError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for "
                "details, or we can help at https://support.stripe.com/.",
            )
        if not hmac.compare_digest(key.encode(), self.config.secret.encode()):
            raise ApiError(401, f"Invalid API Key provided: {mask(key)}")

    def _replay(self, key: str, fingerprint: str) -> Response | None:
        remembered = self.store.remembered(key)
        if remembered is None:
            return None
        status, saved = remembered
        if saved["fingerprint"] != fingerprint:
            raise ApiError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
                type="idempotency_error",
            )
        original = saved["request_id"]
        return self._json(
            status, saved["body"], original,
            {"Idempotent-Replayed": "true", "Original-Request": original},
        )  # fmt: skip

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
        if not isinstance(doc, dict) or path[0] not in doc:
            raise ApiError(400, f"This property cannot be expanded ({full}).", param="expand")
        value = doc[path[0]]
        if isinstance(value, str):
            prefix = next((p for p in PREFIXES if value.startswith(p)), None)
            loaded = self.store.get(PREFIXES[prefix], value) if prefix else None
            if loaded is None:
                raise ApiError(400, f"This property cannot be expanded ({full}).", param="expand")
            doc[path[0]] = value = loaded
        if len(path) > 1 and value is not None:
            self._expand(value, path[1:], full)

    def _expanded(self, doc: Doc, params: dict[str, Any]) -> Doc:
        for path in expansions(params):
            self._expand(doc, path.split("."), path)
        return doc

    # reads

    def unknown(self, params: dict[str, Any], call: Call) -> Doc:
        raise ApiError(
            404,
            f"Unrecognized request URL ({call.method}: {call.url}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/.",
        )

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
        select = partial(self.store.all, "invoice")
        return self._expanded(search.results(select, params), params)

    # writes

    def create_customer(self, params: dict[str, Any], call: Call) -> Doc:
        accept(params, {"name", "email", "description", "phone", "metadata", "expand"})
        doc = documents.customer(
            self._new_id("cus_"), int(time.time()), name=params.get("name"),
            email=params.get("email"), currency=None, metadata=strings(params, "metadata"),
            description=params.get("description"), phone=params.get("phone"),
        )  # fmt: skip
        self.store.put("customer", doc["id"], doc)
        self.events.emit("customer.created", doc, call.request_id, call.idempotency_key)
        return self._expanded(doc, params)

    def create_invoice_item(self, params: dict[str, Any], call: Call) -> Doc:
        accept(params, {"customer", "amount", "currency", "description", "invoice", "metadata",
                        "expand"})  # fmt: skip
        customer = self._must("customer", need(params, "customer"), "customer")
        amount = integer(params, "amount")
        if amount is None:
            need(params, "amount")
        invoice_id = params.get("invoice")
        if invoice_id and self._must("invoice", invoice_id, "invoice")["status"] != "draft":
            raise ApiError(400, f"Invoice {invoice_id} is no longer editable.", param="invoice")
        now = int(time.time())
        doc = {
            "id": self._new_id("ii_"), "object": "invoiceitem", "amount": amount,
            "currency": str(need(params, "currency")).lower(), "customer": customer["id"],
            "date": now, "description": params.get("description"), "discountable": True,
            "discounts": [], "invoice": None, "livemode": False,
            "metadata": strings(params, "metadata"), "parent": None,
            "period": {"end": now, "start": now}, "pricing": None, "proration": False,
            "quantity": 1, "tax_rates": [], "test_clock": None,
        }  # fmt: skip
        self.store.put("invoiceitem", doc["id"], doc)
        if invoice_id:
            self._bill(self.store.get("invoice", invoice_id) or {}, [doc])
        self.events.emit("invoiceitem.created", doc, call.request_id, call.idempotency_key)
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
            raise ApiError(400, f"Invalid pending_invoice_items_behavior: {behavior}",
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
        self.events.emit("invoice.created", doc, call.request_id, call.idempotency_key)
        return self._expanded(doc, params)

    def create_credit_note(self, params: dict[str, Any], call: Call) -> Doc:
        accept(params, {"invoice", "amount", "reason", "memo", "metadata", "expand"})
        invoice = self._must("invoice", need(params, "invoice"), "invoice")
        if invoice["status"] not in ("open", "paid"):
            raise ApiError(
                400, "Credit notes can only be issued for open or paid invoices.", param="invoice"
            )
        amount = integer(params, "amount")
        if amount is None or amount <= 0:
            raise ApiError(400, f"Invalid positive integer: {params.get('amount')}",
                           param="amount")  # fmt: skip
        credited = invoice["pre_payment_credit_notes_amount"]
        credited += invoice["post_payment_credit_notes_amount"]
        if amount > invoice["total"] - credited:
            raise ApiError(400, "The credit note amount cannot exceed the amount remaining to "
                                "be credited on the invoice.", param="amount")  # fmt: skip
        reason = params.get("reason")
        if reason is not None and reason not in CREDIT_REASONS:
            raise ApiError(400, f"Invalid reason: {reason}", param="reason")
        kind = "pre_payment" if invoice["status"] == "open" else "post_payment"
        count = len(self.store.all("credit_note", lambda d: d["invoice"] == invoice["id"]))
        now, id_ = int(time.time()), self._new_id("cn_")
        note = {
            "id": id_, "object": "credit_note", "amount": amount, "amount_shipping": 0,
            "created": now, "currency": invoice["currency"], "customer": invoice["customer"],
            "customer_balance_transaction": None, "discount_amount": 0,
            "discount_amounts": [], "effective_at": now, "invoice": invoice["id"],
            "lines": {"object": "list", "data": [], "has_more": False, "total_count": 0,
                      "url": f"/v1/credit_notes/{id_}/lines"},
            "livemode": False, "memo": params.get("memo"),
            "metadata": strings(params, "metadata"),
            "number": f"{invoice['number'] or invoice['id']}-CN-{count + 1:02d}",
            "out_of_band_amount": None,
            "post_payment_amount": amount if kind == "post_payment" else 0,
            "pre_payment_amount": amount if kind == "pre_payment" else 0,
            "reason": reason, "refunds": [], "status": "issued", "subtotal": amount,
            "subtotal_excluding_tax": amount, "total": amount, "total_excluding_tax": amount,
            "total_taxes": [], "type": kind, "voided_at": None,
        }  # fmt: skip
        self.store.put("credit_note", id_, note)
        invoice[f"{kind}_credit_notes_amount"] += amount
        if kind == "pre_payment":
            invoice["amount_due"] -= amount
            invoice["amount_remaining"] -= amount
        self.store.put("invoice", invoice["id"], invoice)
        self.events.emit("credit_note.created", note, call.request_id, call.idempotency_key)
        return self._expanded(note, params)
