"""The billing connector: Stripe through the official SDK in async mode.

Stripe has no batch retrieve, so ``fetch_many`` sends one retrieve per id, concurrently.
Lists page with ``limit`` + ``starting_after``; the opaque cursor is the last object's id.
``fetch_related`` reads invoices and subscriptions of many customers through invoice search
(``related.py``), ten customers a request.
The change feed is ``GET /v1/events``, which Stripe lists newest first: see ``changes``.
Writes send the kit's idempotency key as Stripe's ``Idempotency-Key`` (all but a
cancellation now, a DELETE: see ``_cancel``); a subscription's plan change and cancellation
answer the subscription as it is afterwards.

Options (``ConnectorConfig.options``): ``dialect`` = ``stripe`` (default) or
``localstripe``, for the stand-in that only has the legacy Plans API (the catalog is read
from ``/v1/plans``), refuses ``currency`` when creating an invoice and cannot list invoices
by ``created`` (so ``issued_from`` / ``issued_before`` are refused before sending).
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
import orjson
import stripe

from connectors import paging
from connectors import transport as transports
from connectors.base import Connector, Writer
from connectors.billing import related, wire
from connectors.billing.errors import answer_error, header, translate
from connectors.billing.webhooks import to_changes
from connectors.commands import (
    CancelSubscription,
    ChangeSubscriptionPlan,
    CreateCreditNote,
    CreateCustomer,
    CreateInvoice,
    Proration,
    WriteCommand,
    WriteResult,
)
from connectors.errors import UpstreamNotFound
from connectors.flight import SingleFlight
from connectors.http import RequestCounter
from connectors.models import (
    Booked,
    ChangeBatch,
    ConnectorConfig,
    ObjectKind,
    Page,
    Record,
    SubscriptionStatus,
    SystemName,
)

T = TypeVar("T")
K = ObjectKind
Obj = Mapping[str, Any]
MAX_LIMIT = 100  # Stripe refuses larger pages

# kind -> the list filters Stripe applies server-side (same names as its list parameters, but
# for the bounds of ``created`` below)
_FILTERS: dict[ObjectKind, frozenset[str]] = {
    K.CUSTOMER: frozenset({"email"}),
    K.PLAN: frozenset({"product"}),
    K.SUBSCRIPTION: frozenset({"customer", "status"}),
    K.INVOICE: frozenset({"customer", "status", "subscription", "issued_from", "issued_before"}),
    K.PAYMENT: frozenset({"customer"}),
}
# filter -> the bound of Stripe's ``created`` it sets (an invoice is issued when it is created)
_CREATED = {"issued_from": "gte", "issued_before": "lt"}


class _Transport(stripe.HTTPXClient):
    """stripe's httpx client on the kit's cancel-safe transport, counting the requests it
    sends with the connector's event hook.

    stripe-python hands httpx the encoded form as ``data=<str>``, which httpx 0.28
    deprecates (a DeprecationWarning on every POST); ``content=`` is the same bytes."""

    def __init__(
        self, timeout: float, max_connections: int, counter: RequestCounter, traced: bool
    ) -> None:
        super().__init__(timeout=transports.timeout(timeout))
        # The SDK builds a plain client; ours is the same but for the transport and the hook.
        verify = ssl.create_default_context(cafile=stripe.ca_bundle_path)
        self._client_async = httpx.AsyncClient(
            transport=transports.transport(max_connections, verify, traced=traced),
            event_hooks=counter.hooks(),
        )

    def _get_request_args_kwargs(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ) -> Any:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        body = kwargs.pop("data", None)
        if body:
            kwargs["content"] = body
        return args, kwargs


def _replayed(obj: Any) -> bool:
    response = getattr(obj, "last_response", None)
    return response is not None and header(response.headers, "Idempotent-Replayed") == "true"


def _form(params: Mapping[str, Any]) -> str | None:
    """``params`` as Stripe's query string (a dict's entries as ``name[key]``); None for
    any value but text and integers, which the SDK's own encoding is left to."""
    pairs: list[tuple[str, str | int]] = []
    for name, value in params.items():
        entries = value.items() if isinstance(value, Mapping) else [(None, value)]
        for key, entry in entries:
            if isinstance(entry, bool) or not isinstance(entry, str | int):
                return None
            pairs.append((name if key is None else f"{name}[{key}]", entry))
    return urlencode(pairs)


def _stripe_page(body: Obj) -> Page[Obj]:
    """A Stripe list object as a page: while ``has_more``, the cursor is the last id, for
    ``starting_after``."""
    data: list[Obj] = body["data"]
    return Page(items=data, cursor=data[-1]["id"] if body.get("has_more") and data else None)


class BillingConnector(Connector):
    system = SystemName.BILLING
    reads = frozenset({K.CUSTOMER, K.PLAN, K.SUBSCRIPTION, K.INVOICE, K.PAYMENT})
    batch_limit = 100
    feed_limit = MAX_LIMIT  # events per change-feed request
    search_limit = MAX_LIMIT  # invoices per search request

    def __init__(self, config: ConnectorConfig) -> None:
        super().__init__()
        self._http = _Transport(
            config.timeout, config.max_connections, self.requests, config.traced
        )
        self._stripe = stripe.StripeClient(
            config.secret,
            base_addresses={"api": config.base_url},
            http_client=self._http,
            max_network_retries=0,  # retries belong to the resilience layer
        )
        self._secret, self._base_url = config.secret, config.base_url.rstrip("/")
        self._localstripe = config.options.get("dialect", "stripe") == "localstripe"
        self._searches: SingleFlight[tuple[str, tuple[str, ...]], list[Obj]] = SingleFlight()

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

    async def _fetch_batch(self, kind: ObjectKind, ids: Sequence[str]) -> Mapping[str, Record]:
        service, read = self._service(kind), wire.READERS[kind]
        params = {"expand": ["product"]} if kind is K.PLAN else {}

        async def one(id_: str) -> Record | None:
            try:
                obj = await self._call(service.retrieve_async(id_, params))
            except UpstreamNotFound:
                return None
            return read(obj.to_dict())

        answers = await related.settled(one(i) for i in ids)
        return {i: record for i, record in zip(ids, answers, strict=True) if record is not None}

    def _list_params(
        self, kind: ObjectKind, filters: Mapping[str, str], limit: int
    ) -> dict[str, Any]:
        unknown = sorted(set(filters) - _FILTERS[kind])
        if unknown:
            raise self._rejected(f"{self.system} cannot filter {kind} by {', '.join(unknown)}")
        params: dict[str, Any] = {k: v for k, v in filters.items() if k not in _CREATED}
        created = self._created(kind, filters)
        if created:
            params["created"] = created
        params["limit"] = max(1, min(limit, MAX_LIMIT))
        if kind is K.PLAN:
            params["expand"] = ["data.product"]
        if kind is K.SUBSCRIPTION:
            params.setdefault("status", "all")  # Stripe hides canceled ones by default
        return params

    def _created(self, kind: ObjectKind, filters: Mapping[str, str]) -> dict[str, int]:
        """The bounds of Stripe's ``created`` that the issue window filters set."""
        created: dict[str, int] = {}
        for name, bound in _CREATED.items():
            if name not in filters:
                continue
            try:
                created[bound] = wire.unix_seconds(filters[name])
            except ValueError as exc:
                problem = f"{name} must be {exc}, not {filters[name]!r}"
                raise self._rejected(f"{self.system} cannot filter {kind}: {problem}") from None
        if created and self._localstripe:
            # localstripe's invoice list takes no ``created`` and answers it with a 500.
            raise self._rejected(f"{self.system} (localstripe) cannot filter {kind} by issue date")
        return created

    async def _list_page(
        self, kind: ObjectKind, cursor: str | None, limit: int, filters: Mapping[str, str]
    ) -> Page[Record]:
        page = await self._objects(kind, cursor, limit, filters)
        return Page(items=[wire.READERS[kind](obj) for obj in page.items], cursor=page.cursor)

    async def _ledger_page(
        self, kind: ObjectKind, cursor: str | None, limit: int, filters: Mapping[str, str]
    ) -> Page[Booked]:
        """Invoices read straight from Stripe's JSON (``wire.booked_invoices``)."""
        if kind is not K.INVOICE:
            return await super()._ledger_page(kind, cursor, limit, filters)
        page = await self._objects(kind, cursor, limit, filters)
        return Page(items=wire.booked_invoices(page.items), cursor=page.cursor)

    async def _objects(
        self, kind: ObjectKind, cursor: str | None, limit: int, filters: Mapping[str, str]
    ) -> Page[Obj]:
        """One page of a list as Stripe's objects; its cursor for ``starting_after``."""
        params = self._list_params(kind, filters, limit)
        if cursor:
            params["starting_after"] = cursor
        try:
            listed = await self._listed(kind, params)
        except UpstreamNotFound:
            if not filters:
                raise
            # localstripe answers 404 when the customer filtered on does not exist.
            return Page(items=[], cursor=None)
        return _stripe_page(listed)

    async def _listed(self, kind: ObjectKind, params: dict[str, Any]) -> Obj:
        """One page of a list, as Stripe's JSON. Invoices, which reconciliation reads by
        the million, stay dicts instead of a tree of StripeObjects converted back (that
        conversion was half the CPU of reading a ledger): ``_get``."""
        if kind is K.INVOICE:
            return await self._get("/v1/invoices", params)
        listed = await self._call(self._service(kind).list_async(params))
        as_dict: Obj = listed.to_dict()
        return as_dict

    async def _get(self, path: str, params: Mapping[str, Any]) -> Obj:
        """``GET path`` decoded with orjson: the request the SDK's raw request sends (the
        key as a bearer token, the SDK's API version) through the SDK's own HTTP client,
        whose failures are the SDK's errors. The SDK decodes every answer into
        OrderedDicts with the standard library, a third of the CPU of reading a million
        invoices. An answer that is not a 200 is the SDK's error for it
        (``errors.answer_error``), translated; it is never sent again, so a 429 is not
        answered with a second request. Parameters that are not flat go through the SDK's
        raw request."""
        query = _form(params)
        if query is not None:
            headers = {
                "Authorization": f"Bearer {self._secret}",
                "Stripe-Version": stripe.api_version,
            }
            url = f"{self._base_url}{path}?{query}"
            content, status, replied = await self._call(
                self._http.request_async("get", url, headers)
            )
            if status != 200:
                raise translate(answer_error(content, status, replied))
            body: Obj = orjson.loads(content)
            return body
        response = await self._call(self._stripe.raw_request_async("get", path, **params))
        answered: Obj = response.data
        return answered

    async def fetch_related(
        self, kind: ObjectKind, parent_ids: Sequence[str]
    ) -> list[list[Record]]:
        """Invoices and subscriptions through invoice search, other kinds (and localstripe,
        which has no search) through the default per-customer lists.

        Search trails writes: Stripe makes new and changed objects searchable "in under a
        minute" (longer during incidents). The gateway's related reads are views that
        tolerate that; a read-after-write flow must use ``list_page``/``list_all``, which are
        consistent."""
        if self._localstripe or kind not in (K.INVOICE, K.SUBSCRIPTION):
            return await super().fetch_related(kind, parent_ids)
        if kind is K.INVOICE:
            return await related.invoices(self._search_invoices, parent_ids)

        async def listed(customer: str) -> list[Record]:
            return await self.list_all(K.SUBSCRIPTION, filters={"customer": customer})

        return await related.subscriptions(self._search_invoices, listed, parent_ids)

    async def _search_invoices(self, query: str, expand: Sequence[str]) -> list[Obj]:
        """Every invoice ``query`` finds. An identical search already in flight (a page of
        customers reading invoices and subscriptions in the same tick) is joined, not sent
        again; one reader giving up (its attempt's deadline) leaves it to the others."""

        def page(cursor: str | None) -> Awaitable[Page[Obj]]:
            return self._search_page(query, expand, cursor)

        return await self._searches.run((query, tuple(expand)), lambda: paging.collect(page))

    async def _search_page(
        self, query: str, expand: Sequence[str], cursor: str | None
    ) -> Page[Obj]:
        """One page of the invoices ``query`` finds; the cursor is search's ``next_page``."""
        params: dict[str, Any] = {"query": query, "limit": self.search_limit}
        if expand:
            params["expand"] = list(expand)
        if cursor:
            params["page"] = cursor
        # As the invoice list: the JSON stays a dict instead of a tree of StripeObjects
        # converted back to dicts (a page of expanded invoices costs several times less CPU
        # this way).
        page = await self._get("/v1/invoices/search", params)
        more = page.get("has_more") and page.get("next_page")
        return Page(items=page["data"], cursor=page["next_page"] if more else None)

    # writes

    def _writers(self) -> Mapping[type[WriteCommand], Writer]:
        return {
            CreateCustomer: self._create_customer,
            CreateInvoice: self._create_invoice,
            CreateCreditNote: self._create_credit_note,
            ChangeSubscriptionPlan: self._change_plan,
            CancelSubscription: self._cancel,
        }

    async def _create_customer(self, command: CreateCustomer, key: str) -> WriteResult:
        metadata = {
            name: value
            for value, name in (
                (command.ref, wire.METADATA_REF),
                (command.legal_entity, wire.METADATA_LEGAL_ENTITY),
                (command.currency, wire.METADATA_CURRENCY),
            )
            if value
        }
        params: dict[str, Any] = {"name": command.name, "metadata": metadata}
        if command.email:
            params["email"] = command.email
        created = await self._call(
            self._stripe.v1.customers.create_async(params, {"idempotency_key": key})  # type: ignore[arg-type]
        )
        return self._result(K.CUSTOMER, created, wire.customer(created.to_dict()))

    async def _create_invoice(self, command: CreateInvoice, key: str) -> WriteResult:
        """A one-off invoice: a pending invoice item, then a draft invoice that takes it in.

        Item first because localstripe refuses an invoice with nothing to bill. Each step
        has its own key derived from ``key``, so a retry after a failed second step
        replays the first instead of billing the item twice."""
        item: dict[str, Any] = {
            "customer": command.customer,
            "amount": command.amount.amount_minor,
            "currency": command.amount.currency.lower(),
        }
        invoice: dict[str, Any] = {
            "customer": command.customer,
            "pending_invoice_items_behavior": "include",
        }
        if not self._localstripe:
            # Without it Stripe bills in the customer's currency and leaves the item out.
            invoice["currency"] = item["currency"]
        if command.description:
            item["description"] = invoice["description"] = command.description
        v1 = self._stripe.v1
        await self._call(v1.invoice_items.create_async(item, {"idempotency_key": f"{key}:item"}))  # type: ignore[arg-type]
        created = await self._call(
            v1.invoices.create_async(invoice, {"idempotency_key": f"{key}:invoice"})  # type: ignore[arg-type]
        )
        return self._result(K.INVOICE, created, wire.invoice(created.to_dict()))

    async def _create_credit_note(self, command: CreateCreditNote, key: str) -> WriteResult:
        """A credit note against an invoice (a service credit); the result names the
        credit note, and the invoice's change shows in the feed."""
        params: dict[str, Any] = {"invoice": command.invoice, "amount": command.amount.amount_minor}
        if command.reason:
            params["reason"] = command.reason.value
        if command.memo:
            params["memo"] = command.memo
        note = await self._call(
            self._stripe.v1.credit_notes.create_async(params, {"idempotency_key": key})  # type: ignore[arg-type]
        )
        return self._result(K.INVOICE, note, None)

    async def _change_plan(self, command: ChangeSubscriptionPlan, key: str) -> WriteResult:
        """The subscription's one item moved to the plan's price, its quantity kept.

        The subscription is read first for the item's id. Whether it may change (a canceled
        one may not) is left to Stripe: a retry with the same key must get the first
        answer again, which a check of our own, made later, could contradict."""
        subscriptions = self._stripe.v1.subscriptions
        id_ = command.subscription_id
        if self._localstripe and command.proration is Proration.ALWAYS_INVOICE:
            raise self._rejected(f"{self.system} (localstripe) cannot invoice a change at once")
        item = {"id": self._only_item(await self._call(subscriptions.retrieve_async(id_)))}
        params: dict[str, Any]
        if self._localstripe:  # the legacy parameters, all that localstripe takes
            item["plan"] = command.plan_id
            params = {"items": [item], "prorate": command.proration is Proration.CREATE_PRORATIONS}
        else:
            item["price"] = command.plan_id
            params = {"items": [item], "proration_behavior": command.proration.value}
        changed = await self._call(
            subscriptions.update_async(id_, params, {"idempotency_key": key})  # type: ignore[arg-type]
        )
        return self._result(K.SUBSCRIPTION, changed, wire.subscription(changed.to_dict()))

    def _only_item(self, subscription: Any) -> str:
        """The id of the subscription's one item: an opsgraph plan is one price."""
        items = subscription.to_dict()["items"]
        if len(items["data"]) != 1 or items.get("has_more"):
            raise self._rejected(
                f"{self.system}: subscription {subscription.id} has more than one price, and "
                "an opsgraph plan is one price per subscription"
            )
        return str(items["data"][0]["id"])

    async def _cancel(self, command: CancelSubscription, key: str) -> WriteResult:
        """At the period's end: an update (``cancel_at_period_end``), replayed by key like any
        POST. Now: ``DELETE``, which Stripe replays by no key (it ignores one there) and
        answers 404 for a subscription already canceled; a retry finds it canceled and
        answers it, written earlier (``created`` False)."""
        subscriptions = self._stripe.v1.subscriptions
        id_ = command.subscription_id
        if command.at_period_end:
            request = subscriptions.update_async(
                id_, {"cancel_at_period_end": True}, {"idempotency_key": key}
            )
            ending = await self._call(request)
            return self._result(K.SUBSCRIPTION, ending, wire.subscription(ending.to_dict()))
        try:
            ended = await self._call(subscriptions.cancel_async(id_))
        except UpstreamNotFound:
            current = await self._call(subscriptions.retrieve_async(id_))  # unknown: not found
            record = wire.subscription(current.to_dict())
            if record.status is not SubscriptionStatus.CANCELED:
                raise
            return WriteResult(
                system=self.system, kind=K.SUBSCRIPTION, id=record.id, created=False, record=record
            )
        return self._result(K.SUBSCRIPTION, ended, wire.subscription(ended.to_dict()))

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
        newest_first: list[Obj] = []
        if since:
            listed = await self._call(
                self._stripe.v1.events.list_async(
                    {"ending_before": since, "limit": self.feed_limit}
                )
            )
            newest_first, has_more = listed.to_dict()["data"], listed.has_more
        else:
            walked = 0
            async for page in paging.Pages(self._event_page):
                newest_first, walked = page.items, walked + 1
            has_more = walked > 1
        oldest_first = list(reversed(newest_first))
        cursor = oldest_first[-1]["id"] if oldest_first else (since or "")
        changed = [change for event in oldest_first for change in to_changes(event)]
        return ChangeBatch(events=changed, cursor=cursor, has_more=has_more)

    async def _event_page(self, cursor: str | None) -> Page[Obj]:
        """One page of ``GET /v1/events``, newest first, going back in time."""
        events = self._stripe.v1.events
        if cursor:
            request = events.list_async({"limit": self.feed_limit, "starting_after": cursor})
        else:
            request = events.list_async({"limit": self.feed_limit})
        return _stripe_page((await self._call(request)).to_dict())

    async def _probe(self) -> str | None:
        await self._call(self._stripe.v1.balance.retrieve_async())
        return None

    async def aclose(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]
