"""Two real gateway processes on two ports, sharing PostgreSQL and Redis: a subscriber on
replica A hears what a webhook or a mutation on replica B caused."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from connectors.models import SystemName
from gateway.auth.scopes import Role
from gateway.demo import link_customers
from gateway.persisted.manifest import operations, sha256
from gateway.storage.migrate import upgrade
from tests.gateway.events.subscribers import Subscriber, request_credit
from tests.gateway.events.test_webhooks import SANDBOX, active_subscription
from tests.gateway.events.vendor_events import deliver_signed, invoice_paid
from tests.gateway.telemetry.prometheus import lookups
from tests.identity import identity
from tests.resolvers.test_credits import breached
from tests.world import (
    Sandboxes,
    cli_env,
    gateway_process,
    sandbox_variables,
    sandboxes,
    until,
)

WHSEC = "whsec_replicas"
EVENTS = "subscription { eventProcessed { id type } }"
CREDITS = "subscription { creditRequestUpdated { id status } }"


@pytest.fixture(scope="module")
def boxes() -> Iterator[Sandboxes]:
    """Sandboxes of this module's own: it requests a credit."""
    with sandboxes() as running:
        yield running


def replicas(boxes: Sandboxes, database_url: str, redis_url: str, **more: str) -> dict[str, str]:
    """The environment of gateways sharing ``database_url`` (migrated here, its crosswalk
    linking the world's customers) and Redis, over ``boxes``; ``more`` on top."""
    upgrade(database_url)
    asyncio.run(link_customers(database_url, boxes.world))
    return cli_env(
        OPSGRAPH_DATABASE_URL=database_url,
        OPSGRAPH_REDIS_URL=redis_url,
        OPSGRAPH_REDIS_TIMEOUT_S="2",
        OPSGRAPH_CHANGE_FEED_INTERVAL_S="3600",
        **sandbox_variables(boxes),
        **identity().variables(),
        **more,
    )


def test_a_subscriber_on_one_replica_hears_what_the_other_did(
    boxes: Sandboxes, postgres_database: str, redis_url: str
) -> None:
    env = replicas(boxes, postgres_database, redis_url, OPSGRAPH_BILLING__WEBHOOK_SECRET=WHSEC)
    customer, case = breached(boxes)
    with gateway_process(env) as (a, _), gateway_process(env) as (b, _):
        admin = identity().token(Role.INTEGRATION_ADMIN)
        finance = identity().token(Role.FINANCE_APPROVER, subject="finance-replicas")
        events = Subscriber(a, admin, EVENTS, {}, 1)
        credits = Subscriber(a, finance, CREDITS, {}, 1)
        # A's subscriptions start in their own time, in another process: B acts until A's
        # subscriber has heard (it exits after one message), a few times at most.
        delivered = []
        for n in range(20):
            delivered.append(deliver(b, f"evt_replica_{n}"))
            if _exited(events, within_s=0.5):
                break
        requested = []
        for n in range(5):
            asked = request_credit(b, customer, case.id, "120.00", f"replicas-{n}")
            requested.append(asked["data"]["requestCredit"]["credit"]["id"])
            if _exited(credits, within_s=1):
                break

        heard = events.lines()
        assert heard[1]["next"]["data"]["eventProcessed"]["type"] == "billing.invoice.paid"
        assert heard[1]["next"]["data"]["eventProcessed"]["id"] in delivered
        told = credits.lines()
        assert told[1]["next"]["data"]["creditRequestUpdated"]["status"] == "REQUESTED"
        assert told[1]["next"]["data"]["creditRequestUpdated"]["id"] in requested


def deliver(url: str, event_id: str) -> str:
    """A signed ``invoice.paid`` delivered to the gateway at ``url``; its event id."""
    deliver_signed(url, invoice_paid(event_id), WHSEC)
    return event_id


def _exited(subscriber: Subscriber, within_s: float) -> bool:
    try:
        subscriber.process.wait(timeout=within_s)
    except subprocess.TimeoutExpired:
        return False
    return True


def test_an_answer_one_replica_keeps_is_not_served_once_the_other_processed_a_change(
    boxes: Sandboxes, postgres_database: str, redis_url: str
) -> None:
    # Replica A keeps the 360 in its response cache (gateway.data.responses); billing's
    # webhook for a cancellation reaches replica B, which drops the entity-cache entries
    # (in Redis, shared): A's next answer executes and shows the change.
    env = replicas(
        boxes,
        postgres_database,
        redis_url,
        OPSGRAPH_BILLING__WEBHOOK_SECRET="whsec_sandbox",  # what the sandbox signs with
        OPSGRAPH_BILLING__CACHE_TTL_S="3600",
        OPSGRAPH_OWNED_TTL_S="3600",
    )
    customer, subscription = active_subscription(boxes)
    c360 = next(o for o in operations() if o.name == "Customer360")
    asked = {
        "query": c360.body,
        "variables": {"id": customer},
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(c360.body)}},
    }
    viewer = {"Authorization": f"Bearer {identity().token(Role.VIEWER)}"}

    def status_on(url: str) -> str:
        answer = httpx.post(f"{url}/graphql", json=asked, headers=viewer, timeout=10)
        assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
        subscriptions = answer.json()["data"]["customer"]["subscriptions"]
        return str(next(s["status"] for s in subscriptions if s["id"] == subscription.id))

    with gateway_process(env) as (a, _), gateway_process(env) as (b, _):
        assert [status_on(a) for _ in range(3)] == ["ACTIVE"] * 3
        assert lookups(a, "Customer360") == {"miss": 2, "hit": 1, "changed": 0, "bypassed": 0}
        boxes.deliver(SystemName.BILLING, f"{b}/webhooks/billing")
        try:
            with httpx.Client(base_url=boxes.urls[SystemName.BILLING], headers=SANDBOX) as billing:
                cancelled = billing.delete(f"/v1/subscriptions/{subscription.id}")
                assert cancelled.status_code == 200, cancelled.text
            assert until(lambda: processed(postgres_database, "customer.subscription.deleted"))
        finally:
            boxes.deliver(SystemName.BILLING, None)
        assert status_on(a) == "CANCELED"
        assert lookups(a, "Customer360") == {"miss": 2, "hit": 1, "changed": 1, "bypassed": 0}


def processed(database_url: str, vendor_type: str) -> bool:
    """Whether an event of ``vendor_type`` from billing is in the inbox, processed."""

    async def ask() -> bool:
        url = database_url.replace("postgresql+asyncpg://", "postgresql://")
        connection = await asyncpg.connect(url)
        try:
            found = await connection.fetchval(
                "SELECT count(*) FROM inbound_events WHERE type = $1 AND processed_at IS NOT NULL",
                f"billing.{vendor_type}",
            )
        finally:
            await connection.close()
        return bool(found)

    return asyncio.run(ask())
