"""The connector contract: what every system of record must answer.

A connector is a few async methods over canonical records. Paging, retries, timeouts, the
circuit breaker and concurrency limits belong to the kit (``connectors.http`` for wire
plumbing, ``connectors.resilience`` for the policy), not to each connector.
"""

from __future__ import annotations

import asyncio
import builtins
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from connectors.errors import UpstreamRejected
from connectors.models import (
    ChangeBatch,
    Health,
    ObjectKind,
    Page,
    Record,
    SystemName,
    WriteCommand,
    WriteResult,
)


class Connector(ABC):
    system: ClassVar[SystemName]
    # What ``fetch_many`` / ``list`` answer for, and what ``write`` accepts.
    reads: ClassVar[frozenset[ObjectKind]]
    writes: ClassVar[frozenset[ObjectKind]] = frozenset()
    # The most ids one upstream call may carry; callers split larger batches.
    batch_limit: ClassVar[int] = 100

    @abstractmethod
    async def fetch_many(
        self, kind: ObjectKind, ids: Sequence[str]
    ) -> builtins.list[Record | None]:
        """Records for ``ids``, in the same order; None where the system has no such id.

        ``len(ids)`` never exceeds ``batch_limit``; one call should cost one upstream
        request where the system's API allows it."""

    @abstractmethod
    async def list(
        self,
        kind: ObjectKind,
        *,
        cursor: str | None = None,
        limit: int = 100,
        filters: Mapping[str, str] | None = None,
    ) -> Page:
        """One page of ``kind``; pass the returned cursor back for the next page."""

    async def fetch_related(
        self, kind: ObjectKind, parent_ids: Sequence[str]
    ) -> builtins.list[builtins.list[Record]]:
        """All records of ``kind`` that belong to each parent (a customer id in this
        system), in parent order. The default lists per parent concurrently; a connector
        whose API can filter on many parents in one request overrides it."""

        async def one(parent: str) -> builtins.list[Record]:
            return await self.list_all(kind, filters={"customer": parent})

        return builtins.list(await asyncio.gather(*(one(p) for p in parent_ids)))

    async def list_all(
        self, kind: ObjectKind, *, filters: Mapping[str, str] | None = None, limit: int = 100
    ) -> builtins.list[Any]:
        items: builtins.list[Any] = []
        cursor: str | None = None
        while True:
            page = await self.list(kind, cursor=cursor, limit=limit, filters=filters)
            items.extend(page.items)
            if page.cursor is None:
                return items
            cursor = page.cursor

    @abstractmethod
    async def write(self, command: WriteCommand, idempotency_key: str) -> WriteResult:
        """Apply ``command`` exactly once: the same key sent again must not write twice."""

    @abstractmethod
    async def changes(self, since: str | None) -> ChangeBatch:
        """Changes after the opaque cursor ``since`` (None: from the beginning)."""

    @abstractmethod
    async def health(self) -> Health:
        """A cheap authenticated call that proves the system answers."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Release connections; the default has none."""

    def _refuse(self, kind: ObjectKind, verb: str = "read") -> UpstreamRejected:
        return UpstreamRejected(f"{self.system} does not {verb} {kind}", system=self.system.value)
