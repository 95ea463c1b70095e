"""What opsgraph owns, kept in memory for the read path (``gateway.data.remembered``): a
cached customer 360 reads nothing from the gateway's database; a link, a credit or an
exception's move is seen by the next read at once, on the replica that wrote it and on the
others (Redis pub/sub), and a read that raced a forget does not keep what it read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event
from starlette.testclient import TestClient

from connectors.models import Case, SystemName
from gateway.app import create_app
from gateway.auth.scopes import Role
from gateway.data.redis_guard import RedisGuard
from gateway.data.remembered import Kind, Remembered
from gateway.demo import link_customers
from gateway.events.broadcast import Broadcast
from gateway.storage.migrate import upgrade
from tests.gateways import AUTH
from tests.gateways import answered as ask
from tests.identity import identity
from tests.world import Sandboxes, migrated_database, sandboxes

ADMIN = identity().headers(Role.INTEGRATION_ADMIN, subject="admin-r")
LEAD = identity().headers(Role.SUPPORT_LEAD, subject="lead-r")
OWN_TABLES = ("customers", "external_ids", "credit_requests", "reconciliation_exceptions")
VIEW = """query($id: ID!) { customer(id: $id) {
  id externalIds { system id } source { fetchedAt cached }
  credits { id status } openExceptions { id }
} }"""
LINK = """mutation($input: ExternalIdInput!, $key: String!) {
  linkExternalId(input: $input, idempotencyKey: $key) { userErrors { code message } }
}"""
REQUEST = """mutation($input: RequestCreditInput!, $key: String!) {
  requestCredit(input: $input, idempotencyKey: $key) {
    credit { id status } userErrors { code message }
  }
}"""
UNLINK = """mutation($input: UnlinkExternalIdInput!, $key: String!) {
  unlinkExternalId(input: $input, idempotencyKey: $key) { userErrors { code message } }
}"""
NOW = datetime(2026, 12, 1, tzinfo=UTC)


# -- in memory ------------------------------------------------------------------------------


def test_what_is_kept_is_answered_until_its_time_is_up() -> None:
    memory = Remembered(ttl_s=0.2)
    memory.put(Kind.CREDITS, "cust_1", ["a"], NOW, memory.generation)
    kept = memory.get(Kind.CREDITS, "cust_1")
    assert kept is not None and (kept.value, kept.read_at) == (["a"], NOW)
    assert memory.get(Kind.EXCEPTIONS, "cust_1") is None  # another kind
    time.sleep(0.25)
    assert memory.get(Kind.CREDITS, "cust_1") is None


def test_a_read_that_began_before_a_forget_is_not_kept() -> None:
    memory = Remembered(ttl_s=60)
    began = memory.generation
    memory.forget_here(Kind.IDENTITIES, ["cust_2"])  # a write lands while the read runs
    memory.put(Kind.IDENTITIES, "cust_1", "old", NOW, began)
    assert memory.get(Kind.IDENTITIES, "cust_1") is None
    memory.put(Kind.IDENTITIES, "cust_1", "new", NOW, memory.generation)
    assert memory.get(Kind.IDENTITIES, "cust_1") is not None


def test_the_least_recently_used_go_first_and_zero_keeps_nothing() -> None:
    memory = Remembered(ttl_s=60, max_entries=2)
    for key in ("a", "b"):
        memory.put(Kind.CREDITS, key, key, NOW, memory.generation)
    assert memory.get(Kind.CREDITS, "a") is not None  # now the most recent
    memory.put(Kind.CREDITS, "c", "c", NOW, memory.generation)
    assert [k for k in "abc" if memory.get(Kind.CREDITS, k)] == ["a", "c"]
    off = Remembered(ttl_s=0)
    off.put(Kind.CREDITS, "a", "a", NOW, off.generation)
    assert off.get(Kind.CREDITS, "a") is None


async def test_a_forget_reaches_the_other_replicas_and_a_reconnect_forgets_all(
    redis_url: str,
) -> None:
    guards = [RedisGuard.from_url(redis_url, 1.0, 1.0) for _ in range(2)]
    casts = [Broadcast(guard) for guard in guards]
    here, there = Remembered(ttl_s=60), Remembered(ttl_s=60)
    there.put(Kind.CREDITS, "before", 1, NOW, there.generation)
    tasks = [asyncio.create_task(m.listen(b)) for m, b in zip((here, there), casts, strict=True)]
    for cast in casts:
        cast.start()
    try:
        # Subscribing to Redis counts as coming back: what was kept before is forgotten.
        await _until(lambda: there.get(Kind.CREDITS, "before") is None)
        for key in ("cust_1", "cust_2"):
            there.put(Kind.CREDITS, key, key, NOW, there.generation)
        await here.forget(Kind.CREDITS, ["cust_1"])
        await _until(lambda: there.get(Kind.CREDITS, "cust_1") is None)
        assert there.get(Kind.CREDITS, "cust_2") is not None
    finally:
        for task in tasks:
            task.cancel()
        for cast in casts:
            await cast.aclose()
        for guard in guards:
            await guard.aclose()


async def _until(done: Any, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not done():
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.02)


# -- through the gateway --------------------------------------------------------------------


@pytest.fixture(scope="module")
def boxes() -> Iterator[Sandboxes]:
    """Sandboxes of this module's own: it links, unlinks and credits."""
    with sandboxes() as running:
        yield running


@pytest.fixture(scope="module")
def own_db(boxes: Sandboxes, tmp_path_factory: pytest.TempPathFactory) -> str:
    return migrated_database(tmp_path_factory.mktemp("remembered") / "gateway.db", boxes.world)


class Statements:
    """The SQL a gateway sends its database that touches opsgraph's own tables."""

    def __init__(self, client: TestClient) -> None:
        self.seen: list[str] = []
        engine = client.app.state.services.engine.sync_engine  # type: ignore[attr-defined]
        event.listen(engine, "before_cursor_execute", self._heard)

    def _heard(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if any(table in statement for table in OWN_TABLES):
            self.seen.append(statement)


def test_a_cached_customer_reads_nothing_of_its_own_from_the_database(
    boxes: Sandboxes, own_db: str
) -> None:
    customer = boxes.world.customers[0]
    with TestClient(create_app(boxes.settings(own_db)), headers=AUTH) as client:
        first = ask(client, VIEW, id=customer.id)["customer"]
        assert first["source"]["cached"] is False
        statements = Statements(client)
        again = ask(client, VIEW, id=customer.id)["customer"]
        assert statements.seen == []
        # Honest provenance: when it was read, not when it was asked for.
        assert again["source"] == {"fetchedAt": first["source"]["fetchedAt"], "cached": True}
        assert again["externalIds"] == first["externalIds"]


def test_a_link_and_a_credit_are_seen_by_the_next_read_at_once(
    boxes: Sandboxes, own_db: str
) -> None:
    customer, case = next(
        (c, x)
        for c in boxes.world.customers
        for x in boxes.world.slice(SystemName.SUPPORT)
        if isinstance(x, Case)
        and x.sla_breached
        and x.organization_id == c.external_ids.get(SystemName.SUPPORT)
    )
    # Kept for an hour: only the writes' forgetting can make the next read fresh.
    settings = boxes.settings(own_db, owned_ttl_s=3600)
    with TestClient(create_app(settings), headers=AUTH) as client:
        before = ask(client, VIEW, id=customer.id)["customer"]
        crm = next(x["id"] for x in before["externalIds"] if x["system"] == "CRM")
        unlink = {"customerId": customer.id, "system": "CRM"}
        assert ask(client, UNLINK, ADMIN, input=unlink, key="r-unlink")["unlinkExternalId"] == {
            "userErrors": []
        }
        after = ask(client, VIEW, id=customer.id)["customer"]
        assert after["externalIds"] == [x for x in before["externalIds"] if x["system"] != "CRM"]
        # Read again since (the unlink's own answer read it first, and kept it).
        assert after["source"]["fetchedAt"] > before["source"]["fetchedAt"]
        link = unlink | {"externalId": crm}
        assert ask(client, LINK, ADMIN, input=link, key="r-link")["linkExternalId"] == {
            "userErrors": []
        }
        assert ask(client, VIEW, id=customer.id)["customer"]["externalIds"] == before["externalIds"]

        given = {
            "customerId": customer.id,
            "caseId": case.id,
            "amount": {"amount": "120.00", "currency": customer.currency},
            "reason": "SLA breached",
        }
        credit = ask(client, REQUEST, LEAD, input=given, key="r-credit")["requestCredit"]
        assert credit["userErrors"] == []
        credits = ask(client, VIEW, id=customer.id)["customer"]["credits"]
        assert credits[0] == {"id": credit["credit"]["id"], "status": "REQUESTED"}
        assert len(credits) == len(before["credits"]) + 1


def test_a_link_on_one_replica_is_seen_by_the_other_at_once(
    boxes: Sandboxes, postgres_database: str, redis_url: str
) -> None:
    upgrade(postgres_database)
    asyncio.run(link_customers(postgres_database, boxes.world))
    customer = boxes.world.customers[2]
    settings = boxes.settings(postgres_database, redis_url=redis_url, owned_ttl_s=3600)
    with (
        TestClient(create_app(settings), headers=AUTH) as a,
        TestClient(create_app(settings), headers=AUTH) as b,
    ):
        time.sleep(0.3)  # both replicas' listeners subscribed
        seen = ask(b, VIEW, id=customer.id)["customer"]["externalIds"]
        assert any(x["system"] == "CRM" for x in seen)
        unlink = {"customerId": customer.id, "system": "CRM"}
        assert ask(a, UNLINK, ADMIN, input=unlink, key="r-unlink-2")["unlinkExternalId"] == {
            "userErrors": []
        }
        deadline = time.monotonic() + 5
        while any(
            x["system"] == "CRM" for x in ask(b, VIEW, id=customer.id)["customer"]["externalIds"]
        ):
            assert time.monotonic() < deadline, "replica B still shows the unlinked CRM id"
            time.sleep(0.05)
