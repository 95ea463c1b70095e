"""The contract every connector passes, run against its sandbox over real HTTP.

A connector's test module says what the contract needs to know of its system in a
``ContractSpec``, serves its seeded sandbox as the ``sandbox`` fixture, declares
``case = case_fixture(SPEC)`` (a ``ConnectorCase`` opened from the two) and subclasses
``ConnectorContract``. The suite asserts exact data against the seed, exact upstream request
counts (from the sandbox's own counters), and the error mapping.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from connectors.base import Connector
from connectors.commands import WriteCommand
from connectors.errors import (
    UpstreamAuthError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)
from connectors.models import Booked, ConnectorConfig, ObjectKind, Record, kind_of

SECRET = "sandbox-secret"
# The kinds a ledger holds, and what each record books.
_BOOK: dict[ObjectKind, Callable[[Any], Booked]] = {
    ObjectKind.INVOICE: Booked.of_invoice,
    ObjectKind.POSTING: Booked.of_posting,
}


@dataclass(frozen=True)
class ContractSpec:
    """What the contract needs to know of one system."""

    connect: Callable[[ConnectorConfig], Connector]
    seeded: list[Record]  # exactly what the sandbox is seeded with
    # kinds whose fetch_many costs one upstream request for up to batch_limit ids
    batched_reads: frozenset[ObjectKind]
    # kind -> how a record names its parent customer (for fetch_related)
    related: Mapping[ObjectKind, Callable[[Any], str]]
    # a write the connector accepts, made anew for each case
    write: Callable[[], WriteCommand]


@dataclass
class ConnectorCase:
    connector: Connector
    admin: httpx.Client  # the sandbox's base URL, for /_sandbox admin calls
    seeded: list[Record]  # exactly what was seeded into the sandbox
    # kinds whose fetch_many costs one upstream request for up to batch_limit ids
    batched_reads: frozenset[ObjectKind]
    # kind -> how a record names its parent customer (for fetch_related)
    related: Mapping[ObjectKind, Callable[[Any], str]]
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


@asynccontextmanager
async def contract_case(
    spec: ContractSpec, sandbox: tuple[str, httpx.Client]
) -> AsyncIterator[ConnectorCase]:
    """A connector on ``sandbox`` and what the contract checks it against; the connector
    is closed afterwards."""
    url, admin = sandbox

    def connect(secret: str) -> Connector:
        return spec.connect(ConnectorConfig(base_url=url, secret=secret))

    connector = connect(SECRET)
    try:
        yield ConnectorCase(
            connector=connector,
            admin=admin,
            seeded=spec.seeded,
            batched_reads=spec.batched_reads,
            related=spec.related,
            write=spec.write(),
            make_bad_connector=lambda: connect("wrong-secret"),
        )
    finally:
        await connector.aclose()


def case_fixture(spec: ContractSpec) -> Any:
    """The module's ``case`` fixture: a ``ConnectorCase`` for ``spec`` on its ``sandbox``."""

    @pytest.fixture(name="case")
    async def case(sandbox: tuple[str, httpx.Client]) -> AsyncIterator[ConnectorCase]:
        async with contract_case(spec, sandbox) as opened:
            yield opened

    return case


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

    async def test_calls_count_every_upstream_request(self, case: ConnectorCase) -> None:
        kind = next(iter(case.connector.reads))
        calls = case.connector.calls
        _, sent = await counted(case, case.connector.list_all(kind, limit=2))
        assert case.connector.calls - calls == sent > 0

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
                await bad.list_page(kind)
            assert "sandbox-secret" not in err.value.message
            assert (await bad.health()).healthy is False
        finally:
            await bad.aclose()

    async def test_an_unknown_kind_is_refused_without_a_call(self, case: ConnectorCase) -> None:
        with pytest.raises(UpstreamRejected):
            await case.connector.fetch_many(ObjectKind.AUDIT, ["x"])
        _, calls = await counted(case, _swallow(case.connector.list_page(ObjectKind.AUDIT)))
        assert calls == 0

    async def test_a_ledger_reads_as_its_records_book(self, case: ConnectorCase) -> None:
        """``ledger_page`` is ``list_page`` as ``Booked`` entries, page for page (a connector
        may read them straight from its wire format); a kind no ledger holds is refused
        before anything is sent."""
        for kind in sorted(case.connector.reads):
            if kind not in _BOOK:
                _, calls = await counted(case, _swallow(case.connector.ledger_page(kind)))
                assert calls == 0, kind
                with pytest.raises(UpstreamRejected):
                    await case.connector.ledger_page(kind)
                continue
            cursor, booked = None, []
            while True:
                listed = await case.connector.list_page(kind, cursor=cursor, limit=5)
                page, calls = await counted(
                    case, case.connector.ledger_page(kind, cursor=cursor, limit=5)
                )
                assert page.items == [_BOOK[kind](r) for r in listed.items], kind
                assert (page.cursor, calls) == (listed.cursor, 1), kind
                booked += page.items
                if (cursor := page.cursor) is None:
                    break
            # Every seeded record, and what the contract's writes may have added.
            assert {_BOOK[kind](r) for r in case.expected(kind)} <= set(booked), kind

    async def test_server_errors_and_rate_limits_map_to_typed_errors(
        self, case: ConnectorCase
    ) -> None:
        # Every kind: a connector may read kinds by different paths (billing's invoices).
        for kind in sorted(case.connector.reads):
            case.faults(error_rate=1.0, error_status=503)
            try:
                with pytest.raises(UpstreamUnavailable) as unavailable:
                    await case.connector.list_page(kind)
                assert unavailable.value.system == case.connector.system.value, kind
                case.faults(rate_limit_next=1, retry_after_s=7)
                before = case.requests()
                with pytest.raises(UpstreamRateLimited) as limited:
                    await case.connector.list_page(kind)
                assert limited.value.retry_after == 7, kind
                # Told to wait, the connector asked once and sent nothing more.
                assert case.requests() - before == 1, kind
            finally:
                case.faults()


async def _swallow(call: Awaitable[Any]) -> None:
    try:
        await call
    except UpstreamRejected:
        pass
