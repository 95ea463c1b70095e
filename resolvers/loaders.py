"""Per-request DataLoaders, one per thing a resolver asks for (a customer's account, its
subscriptions, its cases...): every load in one tick of the event loop becomes one read
through ``gateway.data.reads.Reader``, which routes it to the system that owns the kind and
turns it into as few upstream calls as that system's API allows.

Each method is named for what it returns and typed with it; the id it takes is the
customer's (or the record's) id in the system that owns that kind (``id_in``).

Customers are read as the request's principal sees them: those of legal entities it may
not see are not there (``Crosswalk`` filters them in its queries), so neither is anything
reached through them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from functools import cached_property
from typing import Any, Generic, TypeVar

from aiodataloader import DataLoader

from connectors.models import (
    Account,
    Balance,
    Case,
    CreditRequest,
    Invoice,
    ObjectKind,
    Plan,
    Posting,
    ReconciliationException,
    Subscription,
    SystemName,
)
from connectors.money import Money
from gateway import request_scope
from gateway.auth.principal import Principal
from gateway.data.crosswalk import CustomerIdentity, Entities
from gateway.data.reads import Outcome, Reader, Sourced
from gateway.data.services import Services
from gateway.errors import RequestEnded
from gateway.rules.credit_policy import CreditRule

V = TypeVar("V")
Read = Callable[[Sequence[str]], Awaitable[Sequence[Outcome[V]]]]


class _ReadLoader(DataLoader[str, Sourced[V]], Generic[V]):
    def __init__(self, kind: ObjectKind, reader: Reader, read: Read[V]) -> None:
        super().__init__()
        self.kind, self.reader, self.read = kind, reader, read

    async def batch_load_fn(self, keys: Sequence[str]) -> list[Outcome[V]]:  # type: ignore[override]
        # aiodataloader runs the batch in a task of its own: it stops with the request.
        _owned_by_request()
        try:
            # An error in place of a value rejects just that key's load: partial answers.
            return list(await self.read(keys))
        except asyncio.CancelledError:
            # The request ended (its client left): settle every load, so that nothing
            # waits on this batch, instead of leaving the loads pending for ever.
            system = self.reader.owner(self.kind).value
            return [RequestEnded("the request ended", system=system)] * len(keys)

    async def get(self, key: str) -> Sourced[V]:
        return await self.load(key)


def _owned_by_request() -> None:
    request = request_scope.current()
    task = asyncio.current_task()
    if request is not None and task is not None:
        request.own(task)


class _OwnedLoader(DataLoader[str, list[V]], Generic[V]):
    """The gateway's own records of many customers, read in one query."""

    def __init__(self, fetch: Callable[[Sequence[str]], Awaitable[list[list[V]]]]) -> None:
        super().__init__()
        self.fetch = fetch

    async def batch_load_fn(self, ids: Sequence[str]) -> list[list[V]]:
        # Let the upstream reads dispatched in this same tick go out first: they wait on
        # the network, this is a local query that would only delay them.
        await asyncio.sleep(0)
        return await self.fetch(ids)

    async def get(self, customer_id: str) -> list[V]:
        return await self.load(customer_id)


class _CustomerLoader(DataLoader[str, CustomerIdentity | None]):
    def __init__(self, services: Services, entities: Entities) -> None:
        super().__init__()
        self.services = services
        self.entities = entities

    async def batch_load_fn(self, ids: Sequence[str]) -> list[CustomerIdentity | None]:
        return await self.services.crosswalk.get_many(ids, entities=self.entities)


Standing = tuple[CreditRule | None, Money]


class _StandingLoader(DataLoader[tuple[CustomerIdentity, str], Standing]):
    """Where customers stand against the credit policy, by (customer, currency): one query
    for a whole approvals queue."""

    def __init__(self, services: Services) -> None:
        super().__init__(get_cache_key=lambda asked: (asked[0].id, asked[1]))
        self.services = services

    async def batch_load_fn(self, asked: Sequence[tuple[CustomerIdentity, str]]) -> list[Standing]:
        return await self.services.credits.standings(asked)


class Loaders:
    def __init__(self, services: Services, principal: Principal | None) -> None:
        self._services = services
        self._reader = services.reader
        # Without a principal (schema execution outside a request) no customer is seen.
        self._entities: Entities = frozenset() if principal is None else principal.entities

    def id_in(self, customer: CustomerIdentity, kind: ObjectKind) -> str | None:
        """The customer's id in the system that owns ``kind``; None when it has none."""
        return customer.external_ids.get(self._reader.owner(kind))

    async def customer(self, id: str) -> CustomerIdentity | None:
        identity: CustomerIdentity | None = await self._customers.load(id)
        return identity

    async def customer_by_external_id(
        self, system: SystemName, external_id: str
    ) -> CustomerIdentity | None:
        crosswalk = self._services.crosswalk
        return await crosswalk.by_external_id(system, external_id, entities=self._entities)

    async def customer_page(
        self, first: int, after: str | None, name_contains: str | None
    ) -> tuple[list[CustomerIdentity], bool, int]:
        """Customers ordered by id after the cursor id; True when more follow; how many
        there are in all (see ``Crosswalk.page``)."""
        crosswalk = self._services.crosswalk
        return await crosswalk.page(first, after, name_contains, entities=self._entities)

    # Records by id, in the system that owns each kind.

    async def account(self, id: str) -> Sourced[Account | None]:
        return await self._accounts.get(id)

    async def balance(self, id: str) -> Sourced[Balance | None]:
        return await self._balances.get(id)

    async def invoice(self, id: str) -> Sourced[Invoice | None]:
        return await self._invoice.get(id)

    async def posting(self, id: str) -> Sourced[Posting | None]:
        return await self._posting.get(id)

    async def plan(self, id: str) -> Sourced[Plan | None]:
        return await self._plans.get(id)

    async def plan_catalog(self) -> Sourced[list[Plan]]:
        """Every plan (read whole and cached: ``plan`` is served from it too)."""
        catalog = await self._reader.catalog(ObjectKind.PLAN, Plan)
        if isinstance(catalog, Exception):
            raise catalog
        return catalog

    # The records of a kind that belong to a customer (its id in the owner).

    async def subscriptions(self, customer_id: str) -> Sourced[list[Subscription]]:
        return await self._subscriptions.get(customer_id)

    async def invoices(self, customer_id: str) -> Sourced[list[Invoice]]:
        return await self._invoices.get(customer_id)

    async def postings(self, customer_id: str) -> Sourced[list[Posting]]:
        return await self._postings.get(customer_id)

    def prime_postings(self, customer_id: str) -> None:
        """Start loading ``postings`` now, so it travels with this tick's batch instead of
        a round trip later. A failure surfaces where the value is awaited, not here."""
        future = self._postings.load(customer_id)
        future.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def cases(self, customer_id: str) -> Sourced[list[Case]]:
        return await self._cases.get(customer_id)

    # What opsgraph owns, by opsgraph customer id.

    async def credits(self, customer_id: str) -> list[CreditRequest]:
        """The customer's credit requests, newest first (batched across customers)."""
        return await self._credits.get(customer_id)

    async def open_exceptions(self, customer_id: str) -> list[ReconciliationException]:
        """The customer's open reconciliation exceptions, largest impact first."""
        return await self._open_exceptions.get(customer_id)

    async def credit_standing(self, customer: CustomerIdentity, currency: str) -> Standing:
        """The credit policy's rule for ``currency`` to ``customer`` and what it has been
        credited in the rule's period (``Credits.standing``; batched across customers)."""
        return await self._standings.load((customer, currency))

    # One loader per read, made on first use.

    @cached_property
    def _standings(self) -> _StandingLoader:
        return _StandingLoader(self._services)

    @cached_property
    def _customers(self) -> _CustomerLoader:
        return _CustomerLoader(self._services, self._entities)

    def _records(self, kind: ObjectKind, of: type[Any]) -> _ReadLoader[Any]:
        return _ReadLoader(kind, self._reader, lambda ids: self._reader.records(kind, ids, of))

    def _related(self, kind: ObjectKind, of: type[Any]) -> _ReadLoader[Any]:
        return _ReadLoader(kind, self._reader, lambda ids: self._reader.related(kind, ids, of))

    @cached_property
    def _accounts(self) -> _ReadLoader[Account | None]:
        return self._records(ObjectKind.ACCOUNT, Account)

    @cached_property
    def _balances(self) -> _ReadLoader[Balance | None]:
        return self._records(ObjectKind.BALANCE, Balance)

    @cached_property
    def _invoice(self) -> _ReadLoader[Invoice | None]:
        return self._records(ObjectKind.INVOICE, Invoice)

    @cached_property
    def _posting(self) -> _ReadLoader[Posting | None]:
        return self._records(ObjectKind.POSTING, Posting)

    @cached_property
    def _plans(self) -> _ReadLoader[Plan | None]:
        return self._records(ObjectKind.PLAN, Plan)

    @cached_property
    def _subscriptions(self) -> _ReadLoader[list[Subscription]]:
        return self._related(ObjectKind.SUBSCRIPTION, Subscription)

    @cached_property
    def _invoices(self) -> _ReadLoader[list[Invoice]]:
        return self._related(ObjectKind.INVOICE, Invoice)

    @cached_property
    def _postings(self) -> _ReadLoader[list[Posting]]:
        return self._related(ObjectKind.POSTING, Posting)

    @cached_property
    def _cases(self) -> _ReadLoader[list[Case]]:
        return self._related(ObjectKind.CASE, Case)

    @cached_property
    def _credits(self) -> _OwnedLoader[CreditRequest]:
        return _OwnedLoader(self._services.owned.credits)

    @cached_property
    def _open_exceptions(self) -> _OwnedLoader[ReconciliationException]:
        return _OwnedLoader(self._services.owned.open_exceptions)
