"""The stream's consumers, on PostgreSQL and a real Redis, over real HTTP to the sandboxes:
replicas share the entries of ``opsgraph:events`` as one consumer group; what a consumer
took and never acknowledged is claimed by another; a gateway process killed (SIGKILL) in
the middle of the stream loses nothing and does nothing twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from connectors.models import Case, ObjectKind, Posting, SystemName
from connectors.sandbox.seed import SeedCustomer
from gateway.data.reads import settled
from gateway.data.services import Services
from gateway.demo import link_customers
from gateway.events.canonical import canonical
from gateway.events.consumer import GROUP, StreamConsumer
from gateway.events.relay import STREAM
from gateway.ownership import OwnershipMap
from gateway.storage.database import sessions
from gateway.storage.migrate import upgrade
from gateway.storage.tables import WorkflowRun
from gateway.workflows.engine import RunStatus
from tests.gateway.events.vendor_events import usage_alert
from tests.identity import identity
from tests.world import Sandboxes, cli_env, gateway_process, sandbox_variables, sandboxes

BILLING, ERP, SUPPORT = SystemName.BILLING, SystemName.ERP, SystemName.SUPPORT
USAGE = "route:usage_over_threshold"


@pytest.fixture(scope="module")
def boxes() -> Iterator[Sandboxes]:
    """Sandboxes of this module's own: it posts invoices and opens tickets."""
    with sandboxes() as running:
        yield running


@pytest.fixture
def linked_pg(boxes: Sandboxes, postgres_database: str) -> str:
    upgrade(postgres_database)
    asyncio.run(link_customers(postgres_database, boxes.world))
    return postgres_database


def replica(boxes: Sandboxes, database: str, redis_url: str, **settings: Any) -> Services:
    built = boxes.settings(
        database, redis_url=redis_url, redis_timeout_s=5, connector={"timeout_s": 5}, **settings
    )
    return Services.build(built, OwnershipMap.load(built.ownership_file))


@pytest.fixture
async def services(boxes: Sandboxes, linked_pg: str, redis_url: str) -> AsyncIterator[Services]:
    built = replica(boxes, linked_pg, redis_url, event_claim_after_s=0.2)
    yield built
    boxes.reset()
    await built.aclose()


def customer_of(boxes: Sandboxes) -> SeedCustomer:
    return next(
        c
        for c in boxes.world.customers
        if c.currency == "USD" and c.legal_entity == "Opsgraph Inc."
    )


async def usage_events(services: Services, customer: SeedCustomer, count: int) -> list[str]:
    """``count`` usage alerts stored and relayed to the stream; their event ids."""
    ids = []
    for n in range(count):
        event = canonical(BILLING, usage_alert(customer, value=1_000 + 50 * (n + 1)))
        await services.intake.store(BILLING, event)
        ids.append(event["id"])
    assert await services.relay.relay_once() == count
    return ids


async def runs(services: Services) -> dict[str, tuple[str, str]]:
    """Every run: subject -> (workflow, status)."""
    async with sessions(services.engine)() as session:
        found = await session.execute(
            select(WorkflowRun.subject_id, WorkflowRun.workflow, WorkflowRun.status)
        )
        return {subject: (workflow, status) for subject, workflow, status in found}


async def test_what_a_dead_consumer_took_is_claimed_and_routed_once_by_another(
    boxes: Sandboxes, services: Services, redis_url: str
) -> None:
    customer = customer_of(boxes)
    ids = await usage_events(services, customer, 3)

    assert services.redis is not None
    # A consumer that read the entries and died before routing them: they are pending
    # under its name, never acknowledged.
    dead = StreamConsumer(services.redis, services.router, claim_after_s=0.2, name="dead")
    await dead._group()
    assert len(await dead._new()) == 3
    client = redis.Redis.from_url(redis_url)
    assert client.xpending(STREAM, GROUP)["pending"] == 3
    alive = StreamConsumer(services.redis, services.router, claim_after_s=0.2, name="alive")
    assert await alive.consume_once() == 0  # nothing new, and not idle long enough yet
    await asyncio.sleep(0.3)
    assert await alive.consume_once() == 3  # claimed, routed, acknowledged
    assert client.xpending(STREAM, GROUP)["pending"] == 0
    assert await runs(services) == {
        f"billing:{event_id}": (USAGE, RunStatus.SUCCEEDED.value) for event_id in ids
    }
    assert await alive.consume_once() == 0  # nothing comes back
    client.close()


async def test_consumers_long_gone_with_nothing_pending_leave_the_group(
    services: Services, redis_url: str
) -> None:
    assert services.redis is not None
    client = redis.Redis.from_url(redis_url)
    # A consumer joins the group with the first entry it reads (here: entries that are no
    # event, read, logged and acknowledged).
    gone = StreamConsumer(services.redis, services.router, claim_after_s=0.2, name="gone")
    client.xadd(STREAM, {"id": "not-an-event-1"})
    assert await gone.consume_once() == 1  # holds nothing now
    alive = StreamConsumer(
        services.redis, services.router, claim_after_s=0.2, name="alive", forget_after_s=0.3
    )
    client.xadd(STREAM, {"id": "not-an-event-2"})
    assert await alive.consume_once() == 1
    named = lambda: {c["name"].decode() for c in client.xinfo_consumers(STREAM, GROUP)}  # noqa: E731
    assert named() == {"gone", "alive"}
    await asyncio.sleep(0.4)
    await alive.consume_once()  # looks again: "gone" has been silent 0.4 s, holding nothing
    assert named() == {"alive"}
    client.close()


async def test_without_a_consumer_an_event_is_routed_from_the_inbox(
    boxes: Sandboxes, services: Services, redis_url: str
) -> None:
    """Redis restarted and lost the stream: the inbox still knows the event is unrouted."""
    customer = customer_of(boxes)
    (event_id,) = await usage_events(services, customer, 1)
    redis.Redis.from_url(redis_url).flushdb()
    assert await services.router.route_pending(older_than=_seconds(60)) == 0  # too young
    assert await services.router.route_pending(older_than=_seconds(0)) == 1
    assert await runs(services) == {f"billing:{event_id}": (USAGE, RunStatus.SUCCEEDED.value)}
    assert await services.router.route_pending(older_than=_seconds(0)) == 0


def _seconds(s: float) -> timedelta:
    return timedelta(seconds=s)


async def test_a_gateway_killed_mid_stream_loses_nothing_and_does_nothing_twice(
    boxes: Sandboxes, services: Services, linked_pg: str, redis_url: str
) -> None:
    customer = customer_of(boxes)
    erp, org = customer.external_ids[ERP], customer.external_ids[SUPPORT]
    tickets_before = await _count_tickets(services, org)
    invoices_before = set(await _usage_invoices(services, erp))
    env = cli_env(
        OPSGRAPH_DATABASE_URL=linked_pg,
        OPSGRAPH_REDIS_URL=redis_url,
        OPSGRAPH_WORKFLOW_INTERVAL_S="0.2",
        OPSGRAPH_WORKFLOW_LEASE_S="2",
        OPSGRAPH_EVENT_CLAIM_AFTER_S="1",
        OPSGRAPH_CHANGE_FEED_INTERVAL_S="3600",
        **sandbox_variables(boxes),
        **identity().variables(),
    )
    # Each event's ERP posting takes 400 ms: the stream is still being worked when killed.
    boxes.faults(ERP, latency_ms=400)
    with gateway_process(env) as (_, gateway):
        ids = await usage_events(services, customer, 6)
        assert await eventually(lambda n: n >= 2, services, within_s=30)
        gateway.kill()  # SIGKILL: entries pending under its name, a run mid-step perhaps
        gateway.wait(timeout=10)
    left = await runs(services)
    assert 2 <= len(left) < 6

    # Another replica takes over: what the dead one held is claimed, its runs resumed.
    deadline = time.monotonic() + 60
    wanted = {f"billing:{event_id}": (USAGE, RunStatus.SUCCEEDED.value) for event_id in ids}
    while await runs(services) != wanted and time.monotonic() < deadline:
        assert services.consumer is not None
        await services.consumer.consume_once()
        await services.workflows.resume_due()
        await asyncio.sleep(0.2)
    assert await runs(services) == wanted

    # Each event reached each owner once: one invoice per alert, one ticket per event.
    invoices = await _usage_invoices(services, erp)
    assert len(invoices) == len(set(invoices))
    assert len(set(invoices) - invoices_before) == 6
    assert await _count_tickets(services, org) == tickets_before + 6
    async with sessions(services.engine)() as session:
        total = await session.scalar(select(func.count()).select_from(WorkflowRun))
    assert total == 6


async def eventually(holds: Callable[[int], bool], services: Services, within_s: float) -> bool:
    """Whether the number of runs comes to satisfy ``holds`` within ``within_s``."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if holds(len(await runs(services))):
            return True
        await asyncio.sleep(0.05)  # noqa: ASYNC110 - another process moves it on
    return holds(len(await runs(services)))


async def _usage_invoices(services: Services, erp: str) -> list[str]:
    """The external ids of the customer's usage invoices in the ERP, one per posting."""
    await services.reader.invalidate(ObjectKind.POSTING, None, parent=erp)
    (read,) = await services.reader.related(ObjectKind.POSTING, [erp], Posting)
    return [
        p.external_id for p in settled(read).value if (p.external_id or "").startswith("usage:")
    ]


async def _count_tickets(services: Services, org: str) -> int:
    await services.reader.invalidate(ObjectKind.CASE, None, parent=org)
    (read,) = await services.reader.related(ObjectKind.CASE, [org], Case)
    return sum(c.subject.startswith("Entitlement changed") for c in settled(read).value)
