"""The loaders batch: loads made in one tick reach the reader as one call with every key."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.errors import UpstreamUnavailable
from connectors.models import ObjectKind, SystemName
from gateway.reads import Outcome, Sourced
from resolvers.loaders import Loaders

ERP, CRM = SystemName.ERP, SystemName.CRM
AT = datetime(2026, 11, 26, tzinfo=UTC)


class SpyReader:
    def __init__(self, failing: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.calls: list[tuple[str, SystemName, ObjectKind, list[str]]] = []
        self.failing = failing

    def _answer(self, system: SystemName, ids: Sequence[str]) -> list[Outcome[Any]]:
        return [
            UpstreamUnavailable("down", system=system.value)
            if i in self.failing
            else Sourced(f"value-{i}", system, i, AT, cached=False, stale=False)
            for i in ids
        ]

    async def records(self, system: SystemName, kind: ObjectKind, ids: Sequence[str]) -> Any:
        self.calls.append(("records", system, kind, list(ids)))
        return self._answer(system, ids)

    async def related(self, system: SystemName, kind: ObjectKind, ids: Sequence[str]) -> Any:
        self.calls.append(("related", system, kind, list(ids)))
        return self._answer(system, ids)


class FakeServices:
    """Only what the record and related loaders touch."""

    def __init__(self, reader: SpyReader) -> None:
        self.reader = reader


def loaders(reader: SpyReader) -> Loaders:
    services: Any = FakeServices(reader)
    return Loaders(services)


async def test_loads_in_one_tick_are_one_batch_per_system_and_kind() -> None:
    reader = SpyReader()
    load = loaders(reader)
    results = await asyncio.gather(
        load.record(ERP, ObjectKind.BALANCE, "1"),
        load.record(ERP, ObjectKind.BALANCE, "2"),
        load.record(ERP, ObjectKind.BALANCE, "1"),
        load.related(ERP, ObjectKind.POSTING, "1"),
        load.record(CRM, ObjectKind.ACCOUNT, "a"),
    )
    assert [r.value for r in results] == ["value-1", "value-2", "value-1", "value-1", "value-a"]
    assert sorted(reader.calls) == [
        ("records", CRM, ObjectKind.ACCOUNT, ["a"]),
        ("records", ERP, ObjectKind.BALANCE, ["1", "2"]),
        ("related", ERP, ObjectKind.POSTING, ["1"]),
    ]


async def test_a_key_loaded_again_later_is_not_fetched_again() -> None:
    reader = SpyReader()
    load = loaders(reader)
    await load.record(ERP, ObjectKind.BALANCE, "1")
    await load.record(ERP, ObjectKind.BALANCE, "1")
    assert reader.calls == [("records", ERP, ObjectKind.BALANCE, ["1"])]


async def test_one_failed_key_fails_only_its_own_load() -> None:
    reader = SpyReader(failing={"2"})
    load = loaders(reader)
    ok, failed = await asyncio.gather(
        load.record(ERP, ObjectKind.BALANCE, "1"),
        load.record(ERP, ObjectKind.BALANCE, "2"),
        return_exceptions=True,
    )
    assert isinstance(ok, Sourced) and ok.value == "value-1"
    assert isinstance(failed, UpstreamUnavailable)
    assert len(reader.calls) == 1
    with pytest.raises(UpstreamUnavailable):
        await load.record(ERP, ObjectKind.BALANCE, "2")
