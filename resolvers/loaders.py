"""Per-request DataLoaders, one per (system, object kind): every load in one tick of the
event loop becomes one read through ``gateway.reads.Reader``, which the connector turns into
as few upstream calls as its API allows."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from aiodataloader import DataLoader

from connectors.models import ObjectKind, SystemName
from gateway import request_scope
from gateway.crosswalk import CustomerIdentity
from gateway.errors import RequestEnded
from gateway.reads import Outcome, Reader, Sourced
from gateway.services import Services


class _ReadLoader(DataLoader[str, Sourced[Any]]):
    def __init__(self, reader: Reader, system: SystemName, kind: ObjectKind, related: bool):
        super().__init__()
        self.reader, self.system, self.kind, self.related = reader, system, kind, related

    async def batch_load_fn(self, keys: Sequence[str]) -> list[Sourced[Any]]:
        # aiodataloader runs the batch in a task of its own: it stops with the request.
        _owned_by_request()
        outcomes: list[Outcome[Any]]
        try:
            if self.related:
                outcomes = list(await self.reader.related(self.system, self.kind, keys))
            else:
                outcomes = list(await self.reader.records(self.system, self.kind, keys))
        except asyncio.CancelledError:
            # The request ended (its client left): settle every load, so that nothing
            # waits on this batch, instead of leaving the loads pending for ever.
            ended = RequestEnded("the request ended", system=self.system.value)
            outcomes = [ended] * len(keys)
        # An error in place of a value rejects just that key's load: partial answers.
        return cast(list[Sourced[Any]], outcomes)


def _owned_by_request() -> None:
    request = request_scope.current()
    task = asyncio.current_task()
    if request is not None and task is not None:
        request.own(task)


class _CustomerLoader(DataLoader[str, CustomerIdentity | None]):
    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services

    async def batch_load_fn(self, ids: Sequence[str]) -> list[CustomerIdentity | None]:
        return await self.services.crosswalk.get_many(ids)


class _OwnedLoader(DataLoader[str, list[Any]]):
    def __init__(self, fetch: Callable[[Sequence[str]], Awaitable[list[list[Any]]]]) -> None:
        super().__init__()
        self.fetch = fetch

    async def batch_load_fn(self, ids: Sequence[str]) -> list[list[Any]]:
        # Let the upstream reads dispatched in this same tick go out first: they wait on
        # the network, this is a local query that would only delay them.
        await asyncio.sleep(0)
        return await self.fetch(ids)


class Loaders:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._loaders: dict[tuple[SystemName, ObjectKind, bool], _ReadLoader] = {}
        self._customers: _CustomerLoader | None = None
        self._credits: _OwnedLoader | None = None
        self._open_exceptions: _OwnedLoader | None = None

    def _get(self, system: SystemName, kind: ObjectKind, related: bool) -> _ReadLoader:
        key = (system, kind, related)
        loader = self._loaders.get(key)
        if loader is None:
            loader = self._loaders[key] = _ReadLoader(self._services.reader, system, kind, related)
        return loader

    async def record(self, system: SystemName, kind: ObjectKind, id: str) -> Sourced[Any]:
        """The record of ``kind`` with ``id`` in ``system`` (value None: no such record)."""
        return await self._get(system, kind, False).load(id)

    async def related(
        self, system: SystemName, kind: ObjectKind, parent: str
    ) -> Sourced[list[Any]]:
        """All records of ``kind`` that belong to ``parent`` (a customer id in ``system``)."""
        return await self._get(system, kind, True).load(parent)

    def prime_related(self, system: SystemName, kind: ObjectKind, parent: str) -> None:
        """Start loading ``related`` now, so it travels with this tick's batch instead of a
        round trip later. A failure surfaces where the value is awaited, not here."""
        future = self._get(system, kind, True).load(parent)
        future.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def credits(self, customer_id: str) -> list[Any]:
        """The customer's credit requests, newest first (batched across customers)."""
        if self._credits is None:
            self._credits = _OwnedLoader(self._services.owned.credits)
        return await self._credits.load(customer_id)

    async def open_exceptions(self, customer_id: str) -> list[Any]:
        """The customer's open reconciliation exceptions (batched across customers)."""
        if self._open_exceptions is None:
            self._open_exceptions = _OwnedLoader(self._services.owned.open_exceptions)
        return await self._open_exceptions.load(customer_id)

    async def customer(self, id: str) -> CustomerIdentity | None:
        if self._customers is None:
            self._customers = _CustomerLoader(self._services)
        identity: CustomerIdentity | None = await self._customers.load(id)
        return identity
