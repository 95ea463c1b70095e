"""The billing connector: Stripe through the official SDK in async mode.

Stripe has no batch retrieve, so ``fetch_many`` sends one retrieve per id, concurrently.
Lists page with ``limit`` + ``starting_after``; the opaque cursor is the last object's id.
``fetch_related`` reads invoices and subscriptions of many customers through invoice search
(``related.py``), ten customers a request.
The change feed is ``GET /v1/events``, which Stripe lists newest first: see ``changes``.

Options (``ConnectorConfig.options``): ``dialect`` = ``stripe`` (default) or
``localstripe``, for the stand-in that only has the legacy Plans API (the catalog is read
from ``/v1/plans``) and refuses ``currency`` when creating an invoice.
"""

from __future__ import annotations

import asyncio
import builtins
import ssl
import time
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, TypeVar

import httpx
import stripe

from connectors import transport as transports
from connectors.base import Connector
from connectors.billing import related, wire
from connectors.billing.errors import header, translate
from connectors.billing.webhooks import to_changes
from connectors.errors import UpstreamError, UpstreamNotFound, UpstreamRejected
from connectors.flight import SingleFlight
from connectors.models import (
    ChangeBatch,
    ConnectorConfig,
    Health,
    ObjectKind,
    Page,
    Record,
    SystemName,
    WriteCommand,
    WriteResult,
)
from connectors.money import MoneyError, exponent

T = TypeVar("T")
K = ObjectKind
MAX_LIMIT = 100  # Stripe refuses larger pages

# kind -> the list filters Stripe applies server-side (same names as its list parameters)
_FILTERS: dict[ObjectKind, frozenset[str]] = {
    K.CUSTOMER: frozenset({"email"}),
    K.PLAN: frozenset({"product"}),
    K.SUBSCRIPTION: frozenset({"customer", "status"}),
    K.INVOICE: frozenset({"customer", "status", "subscription"}),
    K.PAYMENT: frozenset({"customer"}),
}


class _Transport(stripe.HTTPXClient):
    """stripe's httpx client on the kit's cancel-safe transport, counting the requests it
    sends.

    stripe-python hands httpx the encoded form as ``data=<str>``, which httpx 0.28
    deprecates (a DeprecationWarning on every POST); ``content=`` is the same bytes."""

    def __init__(self, timeout: float, max_connections: int) -> None:
        super().__init__(timeout=transports.timeout(timeout))
        # The SDK builds a plain client; ours is the same but for the transport.
        verify = ssl.create_default_context(cafile=stripe.ca_bundle_path)
        self._client_async = httpx.AsyncClient(
            transport=transports.transport(max_connections, verify)
        )
        self.calls = 0

    def _get_request_args_kwargs(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ) -> Any:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        body = kwargs.pop("data", None)
        if body:
            kwargs["content"] = body
        return args, kwargs

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        self.calls += 1
        return await super().request_async(method, url, headers, post_data)


def _replayed(obj: Any) -> bool:
    response = getattr(obj, "last_response", None)
    return response is not None and header(response.headers, "Idempotent-Replayed") == "true"


class BillingConnector(Connector):
    system = SystemName.BILLING
    reads = frozenset({K.CUSTOMER, K.PLAN, K.SUBSCRIPTION, K.INVOICE, K.PAYMENT})
    writes = frozenset({K.CUSTOMER, K.INVOICE})
    batch_limit = 100
    feed_limit = MAX_LIMIT  # events per change-feed request
    search_limit = MAX_LIMIT  # invoices per search request

    def __init__(self, config: ConnectorConfig) -> None:
        self._http = _Transport(config.timeout, config.max_connections)
        self._stripe = stripe.StripeClient(
            config.secret,
            base_addresses={"api": config.base_url},
            http_client=self._http,
            max_network_retries=0,  # retries belong to the resilience layer
        )
        self._localstripe = config.options.get("dialect", "stripe") == "localstripe"
        self._searches: SingleFlight[tuple[str, tuple[str, ...]], list[Any]] = SingleFlight()

    @property
    def calls(self) -> int:
        """Upstream requests sent so far."""
        return self._http.calls

    async def _call(self, request: Awaitable[T]) -> T:
        try:
            return await request
        except stripe.StripeError as exc:
            raise translate(exc) from exc

    def _service(self, kind: ObjectKind) -> Any:
        v1 = self._stripe.v1
        if kind is K.PLAN:
            return v1.plans if self._localstripe else v1.prices
        services: dict[ObjectKind, Any] = {
            K.CUSTOMER: v1.customers,
            K.SUBSCRIPTION: v1.subscriptions,
            K.INVOICE: v1.invoices,
            K.PAYMENT: v1.payment_intents,
        }
        return services[kind]

    # reads

    async def fetch_many(
        self, kind: ObjectKind, ids: Sequence[str]
    ) -> builtins.list[Record | None]:
        if kind not in self.reads:
            raise self._refuse(kind)
        service, read = self._service(kind), wire.READERS[kind]
        params = {"expand": ["product"]} if kind is K.PLAN else {}

        async def one(id_: str) -> Record | None:
            try:
                obj = await self._call(service.retrieve_async(id_, params))
            except UpstreamNotFound:
                return None
            return read(obj.to_dict())

        unique = builtins.list(dict.fromkeys(ids))
        # Wait for every retrieve before raising, so none is left running unobserved.
        answers = await asyncio.gather(*(one(i) for i in unique), return_exceptions=True)
        found: dict[str, Record | None] = {}
        for id_, answer in zip(unique, answers, strict=True):
            if isinstance(answer, BaseException):
                raise answer
            found[id_] = answer
        return [found[i] for i in ids]

    def _list_params(
        self, kind: ObjectKind, filters: Mapping[str, str] | None, limit: int
    ) -> dict[str, Any]:
        unknown = sorted(set(filters or {}) - _FILTERS[kind])
        if unknown:
            raise UpstreamRejected(
                f"{self.system} cannot filter {kind} by {', '.join(unknown)}",
                system=self.system.value,
            )
        params: dict[str, Any] = dict(filters or {})
        params["limit"] = max(1, min(limit, MAX_LIMIT))
        if kind is K.PLAN:
            params["expand"] = ["data.product"]
        if kind is K.SUBSCRIPTION:
            params.setdefault("status", "all")  # Stripe hides canceled ones by default
        return params

    async def list(
        self,
        kind: ObjectKind,
        *,
        cursor: str | None = None,
        limit: int = 100,
        filters: Mapping[str, str] | None = None,
    ) -> Page:
        if kind not in self.reads:
            raise self._refuse(kind)
        params = self._list_params(kind, filters, limit)
        if cursor:
            params["starting_after"] = cursor
        try:
            page = await self._call(self._service(kind).list_async(params))
        except UpstreamNotFound:
            if not filters:
                raise
            # localstripe answers 404 when the customer filtered on does not exist.
            return Page(items=[], cursor=None)
        data = page.to_dict()["data"]
        items = [wire.READERS[kind](obj) for obj in data]
        return Page(items=items, cursor=data[-1]["id"] if page.has_more and data else None)

    async def fetch_related(
        self, kind: ObjectKind, parent_ids: Sequence[str]
    ) -> builtins.list[builtins.list[Record]]:
        """Invoices and subscriptions through invoice search, other kinds (and localstripe,
        which has no search) through the default per-customer lists.

        Search trails writes: Stripe makes new and changed objects searchable "in under a
        minute" (longer during incidents). The gateway's related reads are views that
        tolerate that; a read-after-write flow must use ``list``/``list_all``, which are
        consistent."""
        if self._localstripe or kind not in (K.INVOICE, K.SUBSCRIPTION):
            return await super().fetch_related(kind, parent_ids)
        if kind is K.INVOICE:
            return await related.invoices(self._search_invoices, parent_ids)

        async def listed(customer: str) -> builtins.list[Record]:
            return await self.list_all(K.SUBSCRIPTION, filters={"customer": customer})

        return await related.subscriptions(self._search_invoices, listed, parent_ids)

    async def _search_invoices(
        self, query: str, expand: Sequence[str]
    ) -> builtins.list[Mapping[str, Any]]:
        """Every invoice ``query`` finds. An identical search already in flight (a page of
        customers reading invoices and subscriptions in the same tick) is joined, not sent
        again; one reader giving up (its attempt's deadline) leaves it to the others."""
        return await self._searches.run(
            (query, tuple(expand)), lambda: self._search_pages(query, expand)
        )

    async def _search_pages(
        self, query: str, expand: Sequence[str]
    ) -> builtins.list[Mapping[str, Any]]:
        """Every invoice ``query`` finds, following ``next_page``."""
        params: dict[str, Any] = {"query": query, "limit": self.search_limit}
        if expand:
            params["expand"] = builtins.list(expand)
        found: builtins.list[Mapping[str, Any]] = []
        while True:
            # The SDK's raw request: same auth, headers and error mapping, but the JSON
            # stays a dict instead of a tree of StripeObjects converted back to dicts (a
            # page of expanded invoices costs several times less CPU this way).
            response = await self._call(
                self._stripe.raw_request_async("get", "/v1/invoices/search", **params)
            )
            page: Mapping[str, Any] = response.data
            found.extend(page["data"])
            if not (page.get("has_more") and page.get("next_page")):
                return found
            params["page"] = page["next_page"]

    # writes

    async def write(self, command: WriteCommand, idempotency_key: str) -> WriteResult:
        if command.kind not in self.writes:
            raise self._refuse(command.kind, "write")
        actions = {
            (K.CUSTOMER, "create"): self._create_customer,
            (K.INVOICE, "create"): self._create_invoice,
            (K.INVOICE, "create_credit_note"): self._create_credit_note,
        }
        action = actions.get((command.kind, command.action))
        if action is None:
            raise self._refuse(command.kind, command.action)
        return await action(command.payload, idempotency_key)

    def _need(self, payload: Mapping[str, Any], *names: str) -> None:
        missing = [n for n in names if payload.get(n) in (None, "")]
        if missing:
            raise UpstreamRejected(
                f"{self.system} write is missing {', '.join(missing)}", system=self.system.value
            )

    def _amount(self, payload: Mapping[str, Any]) -> int:
        amount = payload.get("amount_minor")
        if type(amount) is not int or amount <= 0:
            raise UpstreamRejected(
                f"{self.system}: amount_minor must be a positive integer",
                system=self.system.value,
            )
        return amount

    def _currency(self, payload: Mapping[str, Any]) -> str:
        currency = str(payload.get("currency") or "").upper()
        try:
            exponent(currency)
        except MoneyError as exc:
            raise UpstreamRejected(str(exc), system=self.system.value) from exc
        return currency

    async def _create_customer(self, payload: Mapping[str, Any], key: str) -> WriteResult:
        self._need(payload, "name")
        metadata = {
            name: str(payload[field])
            for field, name in (
                ("ref", wire.METADATA_REF),
                ("legal_entity", wire.METADATA_LEGAL_ENTITY),
            )
            if payload.get(field)
        }
        if payload.get("currency"):
            metadata[wire.METADATA_CURRENCY] = self._currency(payload)
        params: dict[str, Any] = {"name": payload["name"], "metadata": metadata}
        if payload.get("email"):
            params["email"] = payload["email"]
        created = await self._call(
            self._stripe.v1.customers.create_async(params, {"idempotency_key": key})  # type: ignore[arg-type]
        )
        return self._result(K.CUSTOMER, created, wire.customer(created.to_dict()))

    async def _create_invoice(self, payload: Mapping[str, Any], key: str) -> WriteResult:
        """A one-off invoice: a pending invoice item, then a draft invoice that takes it in.

        Item first because localstripe refuses an invoice with nothing to bill. Each step
        has its own key derived from ``key``, so a retry after a failed second step
        replays the first instead of billing the item twice."""
        self._need(payload, "customer", "currency", "amount_minor")
        item: dict[str, Any] = {
            "customer": payload["customer"],
            "amount": self._amount(payload),
            "currency": self._currency(payload).lower(),
        }
        invoice: dict[str, Any] = {
            "customer": payload["customer"],
            "pending_invoice_items_behavior": "include",
        }
        if not self._localstripe:
            # Without it Stripe bills in the customer's currency and leaves the item out.
            invoice["currency"] = item["currency"]
        if payload.get("description"):
            item["description"] = invoice["description"] = str(payload["description"])
        v1 = self._stripe.v1
        await self._call(v1.invoice_items.create_async(item, {"idempotency_key": f"{key}:item"}))  # type: ignore[arg-type]
        created = await self._call(
            v1.invoices.create_async(invoice, {"idempotency_key": f"{key}:invoice"})  # type: ignore[arg-type]
        )
        return self._result(K.INVOICE, created, wire.invoice(created.to_dict()))

    async def _create_credit_note(self, payload: Mapping[str, Any], key: str) -> WriteResult:
        """A credit note against an invoice (a service credit); the result names the
        credit note, and the invoice's change shows in the feed."""
        self._need(payload, "invoice", "amount_minor")
        params: dict[str, Any] = {"invoice": payload["invoice"], "amount": self._amount(payload)}
        for field in ("reason", "memo"):
            if payload.get(field):
                params[field] = str(payload[field])
        note = await self._call(
            self._stripe.v1.credit_notes.create_async(params, {"idempotency_key": key})  # type: ignore[arg-type]
        )
        return self._result(K.INVOICE, note, None)

    def _result(self, kind: ObjectKind, obj: Any, record: Record | None) -> WriteResult:
        # A replayed key answers with the first response: nothing was written this time.
        return WriteResult(
            system=self.system, kind=kind, id=obj.id, created=not _replayed(obj), record=record
        )

    # changes

    async def changes(self, since: str | None) -> ChangeBatch:
        """Events after ``since`` (an event id), oldest first.

        Stripe lists events newest first. ``ending_before=<id>`` gives the page just newer
        than ``id`` (still newest first, ``has_more`` meaning "newer ones remain"), which
        reversed is the next stretch of the feed. With no cursor, the oldest page is
        reached by walking ``starting_after`` to the end of the retained history (30 days
        on Stripe), once."""
        events = self._stripe.v1.events
        if since:
            page = await self._call(
                events.list_async({"ending_before": since, "limit": self.feed_limit})
            )
            has_more = page.has_more
        else:
            page = await self._call(events.list_async({"limit": self.feed_limit}))
            has_more = False
            while page.has_more and page.data:
                has_more = True
                page = await self._call(
                    events.list_async(
                        {"starting_after": page.data[-1].id, "limit": self.feed_limit}
                    )
                )
        oldest_first = builtins.list(reversed(page.to_dict()["data"]))
        cursor = oldest_first[-1]["id"] if oldest_first else (since or "")
        changed = [change for event in oldest_first for change in to_changes(event)]
        return ChangeBatch(events=changed, cursor=cursor, has_more=has_more)

    async def health(self) -> Health:
        started = time.monotonic()
        try:
            await self._call(self._stripe.v1.balance.retrieve_async())
        except UpstreamError as exc:
            detail: str | None = exc.message
        else:
            detail = None
        return Health(
            system=self.system,
            healthy=detail is None,
            latency_ms=int((time.monotonic() - started) * 1000),
            detail=detail,
        )

    async def aclose(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]
