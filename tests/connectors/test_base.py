"""The kit's template methods around a connector's hooks: one guard for what a connector
reads and writes, ids de-duplicated and batched, writes dispatched on the command's type,
health timed around the probe. A connector made of hooks that record their calls stands in
for a system."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from connectors.base import Connector, Writer
from connectors.commands import (
    CommentOnCase,
    CreateCase,
    CreateCustomer,
    WriteCommand,
    WriteResult,
)
from connectors.errors import UpstreamRejected, UpstreamUnavailable
from connectors.models import (
    ChangeBatch,
    CustomerRecord,
    Health,
    ObjectKind,
    Page,
    Record,
    SystemName,
)

K = ObjectKind


def customer(id_: str) -> CustomerRecord:
    return CustomerRecord(system=SystemName.SUPPORT, id=id_, name=id_.upper())


class Recording(Connector):
    system = SystemName.SUPPORT
    reads = frozenset({K.CUSTOMER})
    batch_limit = 2

    def __init__(self, probe_error: Exception | None = None) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self.pages: list[str | None] = []
        self.written: list[tuple[WriteCommand, str]] = []
        self.probe_error = probe_error

    def _may_exist(self, kind: ObjectKind, id_: str) -> bool:
        return id_.isalpha()

    async def _fetch_batch(self, kind: ObjectKind, ids: Sequence[str]) -> Mapping[str, Record]:
        self.batches.append(list(ids))
        return {i: customer(i) for i in ids if i != "gone"}

    async def _list_page(
        self, kind: ObjectKind, cursor: str | None, limit: int, filters: Mapping[str, str]
    ) -> Page[Record]:
        self.pages.append(cursor)
        start = int(cursor or 0)
        ids = "abcde"[start : start + limit]
        more = start + limit < 5
        return Page(items=[customer(i) for i in ids], cursor=str(start + limit) if more else None)

    def _writers(self) -> Mapping[type[WriteCommand], Writer]:
        return {CreateCase: self._create}

    async def _create(self, command: CreateCase, key: str) -> WriteResult:
        self.written.append((command, key))
        return WriteResult(system=self.system, kind=K.CASE, id="1", created=True)

    async def changes(self, since: str | None) -> ChangeBatch:
        return ChangeBatch(events=[], cursor="", has_more=False)

    async def _probe(self) -> str | None:
        if self.probe_error is not None:
            raise self.probe_error
        return "42 agents online"


async def test_fetch_many_batches_distinct_possible_ids_and_keeps_the_callers_order() -> None:
    connector = Recording()
    got = await connector.fetch_many(K.CUSTOMER, ["a", "b", "a", "no-1", "c", "gone"])
    assert connector.batches == [["a", "b"], ["c", "gone"]]
    assert got == [customer("a"), customer("b"), customer("a"), None, customer("c"), None]


async def test_ids_that_cannot_exist_cost_no_call() -> None:
    connector = Recording()
    assert await connector.fetch_many(K.CUSTOMER, ["no-1", "no-2"]) == [None, None]
    assert connector.batches == []


async def test_a_kind_the_connector_does_not_read_is_refused_before_any_hook() -> None:
    connector = Recording()
    for read in (connector.fetch_many(K.AUDIT, ["a"]), connector.list_page(K.AUDIT)):
        with pytest.raises(UpstreamRejected) as refused:
            await read
        assert refused.value.message == "support does not read audit"
        assert refused.value.system == "support"
    assert (connector.batches, connector.pages) == ([], [])


async def test_list_all_walks_the_pages_the_hook_names() -> None:
    connector = Recording()
    got = await connector.list_all(K.CUSTOMER, limit=2)
    assert [r.id for r in got] == ["a", "b", "c", "d", "e"]
    assert connector.pages == [None, "2", "4"]


async def test_a_write_goes_to_the_method_for_its_command_type() -> None:
    connector = Recording()
    command = CreateCase(organization_id="1", subject="s", body="b")
    result = await connector.write(command, "key-1")
    assert (result.id, connector.written) == ("1", [(command, "key-1")])
    assert connector.writes == frozenset({K.CASE})


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (CreateCustomer(name="N"), "support does not write customer (CreateCustomer)"),
        (CommentOnCase(case_id="1", body="b"), "support does not write case (CommentOnCase)"),
    ],
    ids=["other-kind", "other-action"],
)
async def test_a_command_the_connector_has_no_method_for_is_refused(
    command: WriteCommand, message: str
) -> None:
    connector = Recording()
    with pytest.raises(UpstreamRejected) as refused:
        await connector.write(command, "k")
    assert refused.value.message == message
    assert connector.written == []


async def test_health_reports_the_probe() -> None:
    health = await Recording().health()
    assert health == Health(
        system=SystemName.SUPPORT,
        healthy=True,
        latency_ms=health.latency_ms,
        detail="42 agents online",
    )
    assert health.latency_ms >= 0


async def test_a_failed_probe_is_unhealthy_with_the_errors_message() -> None:
    down = UpstreamUnavailable("support failed: HTTP 503", system="support")
    health = await Recording(probe_error=down).health()
    assert (health.healthy, health.detail) == (False, "support failed: HTTP 503")


def test_a_connector_without_writers_writes_nothing() -> None:
    class ReadOnly(Recording):
        def _writers(self) -> Mapping[type[WriteCommand], Writer]:
            return {}

    assert ReadOnly().writes == frozenset()
