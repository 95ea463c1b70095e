"""The contract every connector passes, run against its sandbox over real HTTP.

A connector's test module subclasses ``ConnectorContract`` and provides a ``case`` fixture
(a ``ConnectorCase``): the connector, its seeded sandbox, and what to check. The suite asserts
exact data against the seed, exact upstream request counts (from the sandbox's own counters),
and the error mapping.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from connectors.base import Connector
from connectors.errors import (
    UpstreamAuthError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)
from connectors.models import ObjectKind, Record, WriteCommand, kind_of


@dataclass
class ConnectorCase:
    connector: Connector
    admin: httpx.Client  # the sandbox's base URL, for /_sandbox admin calls
    seeded: list[Record]  # exactly what was seeded into the sandbox
    # kinds whose fetch_many costs one upstream request for up to batch_limit ids
    batched_reads: frozenset[ObjectKind]
    # kind -> how a record names its parent customer (for fetch_related)
    related: dict[ObjectKind, Callable[[Any], str]]
    # a write the connector accepts, and how to find the record it creates
    write: WriteCommand
    make_bad_connector: Callable[[], Connector]
    extra: dict[str, Any] = field(default_factory=dict)

    def expected(self, kind: ObjectKind) -> list[Record]:
        return [r for r in self.seeded if kind_of(r) is kind]

    def requests(self) -> int:
        total: int = self.admin.get("/_sandbox/stats").json()["total"]
        return total

    def faults(self, **faults: Any) -> None:
        self.admin.put("/_sandbox/faults", json=faults).raise_for_status()


async def counted(case: ConnectorCase, call: Awaitable[Any]) -> tuple[Any, int]:
    before = case.requests()
    result = await call
    return result, case.requests() - before


class ConnectorContract:
    async def test_fetch_many_returns_seeded_records_in_order(self, case: ConnectorCase) -> None:
        for kind in case.connector.reads:
            expected = list(reversed(case.expected(kind)))[: case.connector.batch_limit - 1]
            if not expected:
                continue
            ids = [r.id for r in expected] + ["does-not-exist-0"]
            got, calls = await counted(case, case.connector.fetch_many(kind, ids))
            assert got == [*expected, None], kind
            if kind in case.batched_reads:
                assert calls == 1, f"{kind}: {calls} requests for one batch"

    async def test_list_pages_through_every_record(self, case: ConnectorCase) -> None:
        for kind in case.connector.reads:
            expected = case.expected(kind)
            if not expected:
                continue
            got, calls = await counted(case, case.connector.list_all(kind, limit=5))
            assert sorted(got, key=lambda r: r.id) == sorted(expected, key=lambda r: r.id), kind
            assert calls == max(1, math.ceil(len(expected) / 5)), kind

    async def test_fetch_related_groups_records_by_customer(self, case: ConnectorCase) -> None:
        for kind, parent_of in case.related.items():
            records = case.expected(kind)
            parents = sorted({parent_of(r) for r in records})[:4] + ["no-such-parent"]
            got = await case.connector.fetch_related(kind, parents)
            for parent, group in zip(parents, got, strict=True):
                want = [r for r in records if parent_of(r) == parent]
                assert sorted(group, key=lambda r: r.id) == sorted(want, key=lambda r: r.id)

    async def test_write_with_the_same_key_writes_once(self, case: ConnectorCase) -> None:
        kind = case.write.kind
        before = len(await case.connector.list_all(kind))
        first = await case.connector.write(case.write, "contract-key-1")
        again = await case.connector.write(case.write, "contract-key-1")
        assert again.id == first.id
        assert len(await case.connector.list_all(kind)) == before + 1
        other = await case.connector.write(case.write, "contract-key-2")
        assert other.id != first.id

    async def test_changes_feed_reports_a_new_write(self, case: ConnectorCase) -> None:
        batch = await case.connector.changes(None)
        while batch.has_more:
            batch = await case.connector.changes(batch.cursor)
        written = await case.connector.write(case.write, "contract-key-changes")
        after = await case.connector.changes(batch.cursor)
        mine = [(e.id, e.type) for e in after.events if e.kind is case.write.kind]
        assert mine == [(written.id, "created")]
        assert after.has_more is False

    async def test_health_reports_healthy(self, case: ConnectorCase) -> None:
        health = await case.connector.health()
        assert health.healthy is True
        assert health.system is case.connector.system

    async def test_bad_credentials_are_an_auth_error(self, case: ConnectorCase) -> None:
        bad = case.make_bad_connector()
        try:
            kind = next(iter(case.connector.reads))
            with pytest.raises(UpstreamAuthError) as err:
                await bad.list(kind)
            assert "sandbox-secret" not in err.value.message
            assert (await bad.health()).healthy is False
        finally:
            await bad.aclose()

    async def test_an_unknown_kind_is_refused_without_a_call(self, case: ConnectorCase) -> None:
        with pytest.raises(UpstreamRejected):
            await case.connector.fetch_many(ObjectKind.AUDIT, ["x"])
        _, calls = await counted(case, _swallow(case.connector.list(ObjectKind.AUDIT)))
        assert calls == 0

    async def test_server_errors_and_rate_limits_map_to_typed_errors(
        self, case: ConnectorCase
    ) -> None:
        kind = next(iter(case.connector.reads))
        case.faults(error_rate=1.0, error_status=503)
        try:
            with pytest.raises(UpstreamUnavailable) as unavailable:
                await case.connector.list(kind)
            assert unavailable.value.system == case.connector.system.value
            case.faults(rate_limit_next=1, retry_after_s=7)
            with pytest.raises(UpstreamRateLimited) as limited:
                await case.connector.list(kind)
            assert limited.value.retry_after == 7
        finally:
            case.faults()


async def _swallow(call: Awaitable[Any]) -> None:
    try:
        await call
    except UpstreamRejected:
        pass
