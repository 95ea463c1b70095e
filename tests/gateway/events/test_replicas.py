"""Two real gateway processes on two ports, sharing PostgreSQL and Redis: a subscriber on
replica A hears what a webhook or a mutation on replica B caused."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator

import pytest

from gateway.auth.scopes import Role
from gateway.demo import link_customers
from gateway.storage.migrate import upgrade
from tests.gateway.events.subscribers import Subscriber, request_credit
from tests.gateway.events.vendor_events import deliver_signed, invoice_paid
from tests.identity import identity
from tests.resolvers.test_credits import breached
from tests.world import Sandboxes, cli_env, gateway_process, sandbox_variables, sandboxes

WHSEC = "whsec_replicas"
EVENTS = "subscription { eventProcessed { id type } }"
CREDITS = "subscription { creditRequestUpdated { id status } }"


@pytest.fixture(scope="module")
def boxes() -> Iterator[Sandboxes]:
    """Sandboxes of this module's own: it requests a credit."""
    with sandboxes() as running:
        yield running


def test_a_subscriber_on_one_replica_hears_what_the_other_did(
    boxes: Sandboxes, postgres_database: str, redis_url: str
) -> None:
    upgrade(postgres_database)
    asyncio.run(link_customers(postgres_database, boxes.world))
    env = cli_env(
        OPSGRAPH_DATABASE_URL=postgres_database,
        OPSGRAPH_REDIS_URL=redis_url,
        OPSGRAPH_REDIS_TIMEOUT_S="2",
        OPSGRAPH_BILLING__WEBHOOK_SECRET=WHSEC,
        OPSGRAPH_CHANGE_FEED_INTERVAL_S="3600",
        **sandbox_variables(boxes),
        **identity().variables(),
    )
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
