"""Invoice search: the sandbox's ``GET /v1/invoices/search`` and the connector's batched
``fetch_related`` built on it (ten customers a request instead of one)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from connectors.billing import BillingConnector
from connectors.commands import CreateCustomer
from connectors.models import CustomerRecord, Invoice, ObjectKind, Record, Subscription, SystemName
from connectors.sandbox.billing import create_app
from connectors.sandbox.seed import generate
from tests.connectors.billing_helpers import _connector
from tests.connectors.conftest import running_sandbox

WORLD = generate(customers=12, seed=3, as_of=date(2026, 11, 1)).slice(SystemName.BILLING)
CUSTOMERS = [r.id for r in WORLD if isinstance(r, CustomerRecord)]
K = ObjectKind
SEARCH = "GET /v1/invoices/search"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[str, httpx.Client]]:
    with running_sandbox(create_app, WORLD) as running:
        yield running


@pytest.fixture
def admin(sandbox: tuple[str, httpx.Client]) -> httpx.Client:
    return sandbox[1]


@pytest.fixture
async def billing(sandbox: tuple[str, httpx.Client]) -> AsyncIterator[BillingConnector]:
    connector = _connector(sandbox[0])
    yield connector
    await connector.aclose()


def stats(admin: httpx.Client) -> dict[str, Any]:
    answer: dict[str, Any] = admin.get("/_sandbox/stats").json()
    return answer


def faults(admin: httpx.Client, **faults: Any) -> None:
    admin.put("/_sandbox/faults", json=faults).raise_for_status()


async def counted(admin: httpx.Client, call: Awaitable[Any]) -> tuple[Any, dict[str, int]]:
    """The call's result and the upstream requests it cost, per ``METHOD path``."""
    before = Counter(stats(admin)["requests"])
    result = await call
    return result, dict(Counter(stats(admin)["requests"]) - before)


async def listed(billing: BillingConnector, kind: ObjectKind, parents: list[str]) -> list[Any]:
    return [await billing.list_all(kind, filters={"customer": p}) for p in parents]


def seeded(kind: type[Any], customer: str) -> set[Record]:
    return {r for r in WORLD if isinstance(r, kind) and r.customer_id == customer}


# the connector


async def test_related_invoices_equal_listing_each_customer(billing: BillingConnector) -> None:
    parents = CUSTOMERS[:8]
    got = await billing.fetch_related(K.INVOICE, parents)
    assert got == await listed(billing, K.INVOICE, parents)
    assert [set(group) for group in got] == [seeded(Invoice, p) for p in parents]
    assert [len(group) for group in got] == [3] * 8


async def test_related_subscriptions_equal_listing_each_customer(
    billing: BillingConnector,
) -> None:
    parents = CUSTOMERS[:8]
    got = await billing.fetch_related(K.SUBSCRIPTION, parents)
    assert got == await listed(billing, K.SUBSCRIPTION, parents)
    assert [set(group) for group in got] == [seeded(Subscription, p) for p in parents]


async def test_twelve_customers_cost_two_invoice_searches(
    billing: BillingConnector, admin: httpx.Client
) -> None:
    got, calls = await counted(admin, billing.fetch_related(K.INVOICE, CUSTOMERS))
    assert calls == {SEARCH: 2}
    assert [set(group) for group in got] == [seeded(Invoice, p) for p in CUSTOMERS]


async def test_invoices_and_subscriptions_read_together_share_their_searches(
    billing: BillingConnector, admin: httpx.Client
) -> None:
    both = asyncio.gather(
        billing.fetch_related(K.INVOICE, CUSTOMERS),
        billing.fetch_related(K.SUBSCRIPTION, CUSTOMERS),
    )
    (invoices, subscriptions), calls = await counted(admin, both)
    assert calls == {SEARCH: 2}
    assert [set(group) for group in invoices] == [seeded(Invoice, p) for p in CUSTOMERS]
    assert [set(group) for group in subscriptions] == [seeded(Subscription, p) for p in CUSTOMERS]
    _, again = await counted(admin, billing.fetch_related(K.INVOICE, CUSTOMERS))
    assert again == {SEARCH: 2}  # finished searches are not reused: reads stay fresh


async def test_a_reader_giving_up_on_a_shared_search_leaves_it_to_the_other(
    admin: httpx.Client, billing: BillingConnector
) -> None:
    """Invoices and subscriptions of one page share a search; when the invoice read gives
    up (its deadline), the subscription read still gets the answer, from the same single
    request, instead of a bare CancelledError that nothing settles."""
    faults(admin, latency_ms=300)
    try:
        before = Counter(stats(admin)["requests"])
        invoices = asyncio.ensure_future(billing.fetch_related(K.INVOICE, CUSTOMERS[:3]))
        subscriptions = asyncio.ensure_future(billing.fetch_related(K.SUBSCRIPTION, CUSTOMERS[:3]))
        await asyncio.sleep(0.1)  # both are waiting for the one search
        invoices.cancel()
        found = await subscriptions
        assert invoices.cancelled()
        assert [set(f) for f in found] == [seeded(Subscription, c) for c in CUSTOMERS[:3]]
        assert dict(Counter(stats(admin)["requests"]) - before) == {SEARCH: 1}
    finally:
        faults(admin)


async def test_a_search_nobody_waits_for_any_more_is_abandoned(
    admin: httpx.Client, billing: BillingConnector
) -> None:
    faults(admin, latency_ms=2000)
    try:
        read = asyncio.ensure_future(billing.fetch_related(K.INVOICE, CUSTOMERS[:3]))
        await asyncio.sleep(0.1)
        assert stats(admin)["in_flight"] == 1
        read.cancel()
        for _ in range(100):  # the sandbox sees the request go within moments
            if stats(admin)["in_flight"] == 0:
                break
            await asyncio.sleep(0.02)
        assert stats(admin)["in_flight"] == 0
    finally:
        faults(admin)


async def test_a_customer_without_invoices_has_its_subscriptions_listed(
    billing: BillingConnector, admin: httpx.Client
) -> None:
    new = await billing.write(CreateCustomer(name="No Invoices Yet"), "search-unbilled-1")
    parents = [*CUSTOMERS, new.id]
    got, calls = await counted(admin, billing.fetch_related(K.SUBSCRIPTION, parents))
    assert calls == {SEARCH: 2, "GET /v1/subscriptions": 1}
    assert [set(group) for group in got] == [*(seeded(Subscription, p) for p in CUSTOMERS), set()]


async def test_the_searches_for_one_call_run_concurrently(
    billing: BillingConnector, admin: httpx.Client
) -> None:
    _post(admin, "/_sandbox/stats/reset")
    faults(admin, latency_ms=50)
    try:
        await billing.fetch_related(K.INVOICE, CUSTOMERS)
    finally:
        faults(admin)
    assert stats(admin)["max_in_flight"] == 2


async def test_the_connector_follows_next_page(
    billing: BillingConnector, admin: httpx.Client
) -> None:
    billing.search_limit = 2
    parents = CUSTOMERS[:2]
    got, calls = await counted(admin, billing.fetch_related(K.INVOICE, parents))
    assert calls == {SEARCH: 3}  # 6 invoices, 2 a page
    assert got == await listed(billing, K.INVOICE, parents)


async def test_repeated_parents_are_searched_once_and_no_parents_cost_nothing(
    billing: BillingConnector, admin: httpx.Client
) -> None:
    a, b = CUSTOMERS[:2]
    got, calls = await counted(admin, billing.fetch_related(K.INVOICE, [a, b, a]))
    assert calls == {SEARCH: 1}
    assert got == [got[0], got[1], got[0]] and got[0] != got[1]
    assert await counted(admin, billing.fetch_related(K.INVOICE, [])) == ([], {})


async def test_other_kinds_list_per_customer(
    billing: BillingConnector, admin: httpx.Client
) -> None:
    _, calls = await counted(admin, billing.fetch_related(K.PAYMENT, CUSTOMERS[:3]))
    assert calls == {"GET /v1/payment_intents": 3}


async def test_the_localstripe_dialect_lists_per_customer(
    sandbox: tuple[str, httpx.Client],
) -> None:
    connector = _connector(sandbox[0], options={"dialect": "localstripe"})
    try:
        got, calls = await counted(sandbox[1], connector.fetch_related(K.INVOICE, CUSTOMERS[:3]))
    finally:
        await connector.aclose()
    assert calls == {"GET /v1/invoices": 3}
    assert [set(group) for group in got] == [seeded(Invoice, p) for p in CUSTOMERS[:3]]


def _post(admin: httpx.Client, path: str, **data: str) -> dict[str, Any]:
    answer = admin.post(path, data=data, headers={"Authorization": "Bearer sandbox-secret"})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body
