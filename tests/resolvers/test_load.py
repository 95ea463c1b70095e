"""The read path under load and under churn, over real HTTP: concurrent cold reads share
their upstream calls, cancelled requests cost the gateway nothing it cannot get back, a
departed client's upstream work stops, and ``systems`` never calls a system."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import httpx

from connectors.models import SystemName
from tests.gateways import AUTH, Served
from tests.resolvers.test_customer360 import C360, expected_360
from tests.world import Sandboxes

ONE = C360 + "query($id: ID!) { customer(id: $id) { ...C360 } }"


def without_cache_marks(customer: dict[str, Any]) -> dict[str, Any]:
    """A 360 with ``account.source.cached`` dropped: whether one read came from the cache
    or from a shared call depends on when it arrived."""
    account = dict(customer["account"], source=dict(customer["account"]["source"]))
    del account["source"]["cached"]
    return dict(customer, account=account)


async def fire(url: str, count: int, query: str, **variables: Any) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=AUTH) as client:
        responses = await asyncio.gather(
            *(
                client.post("/graphql", json={"query": query, "variables": variables})
                for _ in range(count)
            )
        )
    return [r.json() for r in responses]


def test_concurrent_cold_reads_of_one_customer_share_each_upstream_call(
    boxes: Sandboxes, served: Served
) -> None:
    customer = boxes.world.customers[0].id
    for system in boxes.admin:
        boxes.faults(system, latency_ms=100)  # every request arrives while the first waits
    expected = without_cache_marks(expected_360(boxes, customer))

    one = served(database_pool_size=2, database_max_overflow=0)
    (single,) = asyncio.run(fire(one, 1, ONE, id=customer))
    assert without_cache_marks(single["data"]["customer"]) == expected
    cost_of_one = boxes.requests()
    boxes.reset_stats()

    many = served(database_pool_size=2, database_max_overflow=0)  # a cold cache of its own
    answers = asyncio.run(fire(many, 32, ONE, id=customer))
    assert [a.get("errors") for a in answers] == [None] * 32
    assert [without_cache_marks(a["data"]["customer"]) for a in answers] == [expected] * 32
    assert boxes.requests() == cost_of_one
    assert all(sum(calls.values()) >= 1 for calls in cost_of_one.values())


def test_a_thousand_abandoned_requests_leave_the_gateway_whole(
    boxes: Sandboxes, served: Served
) -> None:
    """Clients that give up after 0-60 ms cancel their requests at every stage: waiting for
    a shared call, for a connection, for an answer. Afterwards a customer 360 answers in
    full, through every system's connection pool."""
    url = served(connector={"timeout_s": 5, "cache_ttl_s": 0, "max_concurrency": 4})
    for system in boxes.admin:
        boxes.faults(system, latency_ms=10, jitter_ms=30)
    customers = [c.id for c in boxes.world.customers]
    draw = random.Random(11)

    async def abandon() -> None:
        async with httpx.AsyncClient(base_url=url, headers=AUTH) as client:

            async def one() -> None:
                query = {"query": ONE, "variables": {"id": draw.choice(customers)}}
                try:
                    await client.post("/graphql", json=query, timeout=draw.uniform(0.0, 0.06))
                except httpx.TimeoutException:
                    pass

            for _ in range(10):  # in waves of a hundred
                await asyncio.gather(*(one() for _ in range(100)))

    asyncio.run(abandon())
    boxes.reset()
    answers = asyncio.run(fire(url, 4, ONE, id=customers[1]))
    expected = without_cache_marks(expected_360(boxes, customers[1]))
    assert [a.get("errors") for a in answers] == [None] * 4
    assert [without_cache_marks(a["data"]["customer"]) for a in answers] == [expected] * 4


def test_a_departed_client_stops_its_upstream_work(boxes: Sandboxes, served: Served) -> None:
    url = served(request_deadline_s=60, connector={"timeout_s": 30})
    boxes.faults(SystemName.CRM, hang_next=10, hang_s=60)
    query = "query($id: ID!) { customer(id: $id) { account { name } } }"
    try:
        httpx.post(
            f"{url}/graphql",
            json={"query": query, "variables": {"id": boxes.world.customers[0].id}},
            timeout=0.5,
            headers=AUTH,
        )
    except httpx.ReadTimeout:
        pass
    crm = boxes.admin[SystemName.CRM]
    assert crm.get("/_sandbox/stats").json()["total"] == 1
    # Neither the request's deadline (60 s) nor the attempt's (30 s) is near: only the
    # client's leaving can have ended the upstream call.
    until = time.monotonic() + 5
    while crm.get("/_sandbox/stats").json()["in_flight"] and time.monotonic() < until:
        time.sleep(0.05)
    assert crm.get("/_sandbox/stats").json() == {
        "requests": {"GET /services/data/v61.0/query": 1},
        "total": 1,
        "in_flight": 0,
        "max_in_flight": 1,
    }


def test_a_thousand_aliases_of_systems_call_no_system(boxes: Sandboxes, served: Served) -> None:
    # Far beyond the default abuse limits (15 aliases, 1,000 tokens): raised for this test.
    url = served(connector={"timeout_s": 5}, limits={"max_aliases": 1000, "max_tokens": 10_000})
    boxes.faults(SystemName.ERP, hang_next=10, hang_s=60)  # probes would wait on it
    query = "{ " + " ".join(f"s{n}: systems {{ name healthy breaker }}" for n in range(1000)) + " }"
    body = httpx.post(f"{url}/graphql", json={"query": query}, timeout=4, headers=AUTH).json()
    assert "errors" not in body
    expected = [
        {"name": name, "healthy": True, "breaker": "CLOSED"}
        for name in ("BILLING", "ERP", "CRM", "SUPPORT")
    ]
    assert body["data"] == {f"s{n}": expected for n in range(1000)}
    assert boxes.totals() == {system: 0 for system in boxes.admin}


def ask(url: str, query: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.post(
        f"{url}/graphql", json={"query": query}, timeout=2, headers=AUTH
    ).json()
    return answer


def test_systems_shows_what_the_background_probe_found(boxes: Sandboxes, served: Served) -> None:
    url = served(health_interval_s=0.1, connector={"timeout_s": 0.3})
    boxes.faults(SystemName.CRM, hang_next=1000, hang_s=60)
    query = "{ systems { name healthy detail } }"
    until = time.monotonic() + 5
    while time.monotonic() < until:
        systems = httpx.post(
            f"{url}/graphql", json={"query": query}, timeout=2, headers=AUTH
        ).json()
        crm = next(s for s in systems["data"]["systems"] if s["name"] == "CRM")
        if not crm["healthy"]:
            break
        time.sleep(0.05)
    assert crm == {"name": "CRM", "healthy": False, "detail": "no answer within 0.3s"}
    boxes.faults(SystemName.CRM)
    until = time.monotonic() + 5
    while not crm["healthy"] and time.monotonic() < until:
        systems = httpx.post(
            f"{url}/graphql", json={"query": query}, timeout=2, headers=AUTH
        ).json()
        crm = next(s for s in systems["data"]["systems"] if s["name"] == "CRM")
        time.sleep(0.05)
    assert crm["healthy"] is True
