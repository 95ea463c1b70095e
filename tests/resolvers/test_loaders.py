"""The loaders batch: loads made in one tick reach the reader as one call with every key,
per kind, routed to the kind's owner."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.errors import UpstreamUnavailable
from connectors.models import ObjectKind, SystemName
from gateway.data.reads import Outcome, Sourced
from gateway.ownership import OwnershipMap
from gateway.settings import DEFAULT_OWNERSHIP
from resolvers.loaders import Loaders

AT = datetime(2026, 11, 26, tzinfo=UTC)


class SpyReader:
    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.calls: list[tuple[str, ObjectKind, list[str]]] = []
        self.failing = failing
        self.ownership = OwnershipMap.load(DEFAULT_OWNERSHIP)

    def owner(self, kind: ObjectKind) -> SystemName:
        return self.ownership.owner(kind)

    def _answer(self, kind: ObjectKind, ids: Sequence[str]) -> list[Outcome[Any]]:
        system = self.owner(kind)
        return [
            UpstreamUnavailable("down", system=system.value)
            if i in self.failing
            else Sourced(f"value-{i}", system, i, AT, cached=False, stale=False)
            for i in ids
        ]

    async def records(self, kind: ObjectKind, ids: Sequence[str], of: type) -> Any:
        self.calls.append(("records", kind, list(ids)))
        return self._answer(kind, ids)

    async def related(self, kind: ObjectKind, ids: Sequence[str], of: type) -> Any:
        self.calls.append(("related", kind, list(ids)))
        return self._answer(kind, ids)


class FakeServices:
    """Only what the record and related loaders touch."""

    def __init__(self, reader: SpyReader) -> None:
        self.reader = reader


def loaders(reader: SpyReader) -> Loaders:
    services: Any = FakeServices(reader)
    return Loaders(services, None)


async def test_loads_in_one_tick_are_one_batch_per_kind() -> None:
    reader = SpyReader()
    load = loaders(reader)
    results = await asyncio.gather(
        load.balance("1"),
        load.balance("2"),
        load.balance("1"),
        load.postings("1"),
        load.account("a"),
    )
    assert [r.value for r in results] == ["value-1", "value-2", "value-1", "value-1", "value-a"]
    assert [r.system for r in results] == [SystemName.ERP] * 4 + [SystemName.CRM]
    assert sorted(reader.calls) == [
        ("records", ObjectKind.ACCOUNT, ["a"]),
        ("records", ObjectKind.BALANCE, ["1", "2"]),
        ("related", ObjectKind.POSTING, ["1"]),
    ]


async def test_a_key_loaded_again_later_is_not_fetched_again() -> None:
    reader = SpyReader()
    load = loaders(reader)
    await load.balance("1")
    await load.balance("1")
    assert reader.calls == [("records", ObjectKind.BALANCE, ["1"])]


async def test_one_failed_key_fails_only_its_own_load() -> None:
    reader = SpyReader(failing=frozenset({"2"}))
    load = loaders(reader)
    ok, failed = await asyncio.gather(load.balance("1"), load.balance("2"), return_exceptions=True)
    assert isinstance(ok, Sourced) and ok.value == "value-1"
    assert isinstance(failed, UpstreamUnavailable)
    assert len(reader.calls) == 1
    with pytest.raises(UpstreamUnavailable):
        await load.balance("2")
