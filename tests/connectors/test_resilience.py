"""The shared resilience layer against a real sandbox: each injected fault gives the
documented behaviour, with upstream requests counted by the sandbox itself."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from connectors.crm import CrmConnector
from connectors.errors import (
    CircuitOpen,
    UpstreamAuthError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from connectors.models import Account, ConnectorConfig, ObjectKind, SystemName
from connectors.resilience import Policy, Resilient
from connectors.sandbox import crm as crm_sandbox
from connectors.sandbox import support as sandbox
from connectors.sandbox.seed import generate
from connectors.support import connect
from tests.connectors.conftest import running_sandbox

FAST = Policy(timeout_s=2, attempts=3, backoff_initial_s=0.01, backoff_max_s=0.02)


@pytest.fixture(scope="module")
def zendesk() -> Iterator[tuple[str, httpx.Client]]:
    world = generate(customers=4, seed=5, as_of=date(2026, 11, 1))
    with running_sandbox(sandbox.create_app, world.slice(SystemName.SUPPORT)) as running:
        yield running


@pytest.fixture
def admin(zendesk: tuple[str, httpx.Client]) -> Iterator[httpx.Client]:
    client = zendesk[1]
    client.put("/_sandbox/faults", json={}).raise_for_status()
    client.post("/_sandbox/stats/reset").raise_for_status()
    yield client
    client.put("/_sandbox/faults", json={}).raise_for_status()


def faults(admin: httpx.Client, **values: object) -> None:
    admin.put("/_sandbox/faults", json=values).raise_for_status()


def requests(admin: httpx.Client) -> int:
    total: int = admin.get("/_sandbox/stats").json()["total"]
    return total


class Sleeps:
    """Records the waits the retry loop asks for instead of sleeping through them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
async def make(zendesk: tuple[str, httpx.Client]) -> AsyncIterator[object]:
    made: list[Resilient] = []

    def build(policy: Policy = FAST, secret: str = "sandbox-secret", **kw: object) -> Resilient:
        inner = connect(ConnectorConfig(base_url=zendesk[0], secret=secret, timeout=5))
        made.append(Resilient(inner, policy, **kw))  # type: ignore[arg-type]
        return made[-1]

    yield build
    for r in made:
        await r.aclose()


async def test_a_transient_failure_is_retried_until_it_succeeds(admin, make) -> None:
    faults(admin, error_next=2, error_status=503)
    sleeps = Sleeps()
    page = await make(sleep=sleeps).list_page(ObjectKind.CASE, limit=2)
    assert len(page.items) == 2
    assert requests(admin) == 3
    assert len(sleeps.waits) == 2 and all(0 < w <= 0.02 for w in sleeps.waits)


async def test_retries_stop_after_the_last_attempt(admin, make) -> None:
    faults(admin, error_rate=1.0, error_status=500)
    with pytest.raises(UpstreamUnavailable):
        await make(sleep=Sleeps()).list_page(ObjectKind.CASE)
    assert requests(admin) == 3


async def test_a_refusal_is_not_retried(admin, make) -> None:
    with pytest.raises(UpstreamAuthError):
        await make(secret="wrong", sleep=Sleeps()).list_page(ObjectKind.CASE)
    assert requests(admin) == 1


async def test_429_waits_exactly_retry_after(admin, make) -> None:
    faults(admin, rate_limit_next=1, retry_after_s=3)
    sleeps = Sleeps()
    await make(sleep=sleeps).list_page(ObjectKind.CASE)
    assert sleeps.waits == [3.0]
    assert requests(admin) == 2


async def test_a_retry_after_beyond_the_cap_is_surfaced_not_waited(admin, make) -> None:
    faults(admin, rate_limit_next=1, retry_after_s=120)
    sleeps = Sleeps()
    with pytest.raises(UpstreamRateLimited) as limited:
        await make(sleep=sleeps).list_page(ObjectKind.CASE)
    assert limited.value.retry_after == 120
    assert sleeps.waits == [] and requests(admin) == 1


async def test_a_hang_hits_the_deadline_then_the_retry_answers(admin, make) -> None:
    faults(admin, hang_next=1, hang_s=30)
    policy = Policy(timeout_s=0.3, attempts=2, backoff_initial_s=0.01, backoff_max_s=0.01)
    page = await make(policy, sleep=Sleeps()).list_page(ObjectKind.CASE, limit=1)
    assert len(page.items) == 1
    assert requests(admin) == 2
    faults(admin, hang_next=1, hang_s=30)
    with pytest.raises(UpstreamTimeout) as timeout:
        await make(Policy(timeout_s=0.3, attempts=1)).list_page(ObjectKind.CASE)
    assert timeout.value.message == "support did not answer within 0.3s"


async def test_a_dropped_connection_is_retried(admin, make) -> None:
    faults(admin, drop_next=1)
    page = await make(sleep=Sleeps()).list_page(ObjectKind.CASE, limit=1)
    assert len(page.items) == 1
    assert requests(admin) == 2


async def test_the_breaker_opens_fails_fast_and_half_opens(admin, make) -> None:
    policy = Policy(attempts=1, breaker_threshold=3, breaker_reset_s=0.3)
    connector = make(policy)
    faults(admin, error_rate=1.0, error_status=503)
    for _ in range(3):
        with pytest.raises(UpstreamUnavailable):
            await connector.list_page(ObjectKind.CASE)
    assert await connector.breaker_state() == "open"
    with pytest.raises(CircuitOpen) as opened:
        await connector.list_page(ObjectKind.CASE)
    assert opened.value.code == "CIRCUIT_OPEN" and opened.value.system == "support"
    assert requests(admin) == 3  # the open breaker sent nothing

    faults(admin)
    await asyncio.sleep(0.35)  # past breaker_reset_s: the next call is let through
    page = await connector.list_page(ObjectKind.CASE, limit=1)
    assert len(page.items) == 1
    assert await connector.breaker_state() == "closed"
    assert requests(admin) == 4


async def test_a_failed_probe_reopens_the_breaker(admin, make) -> None:
    connector = make(Policy(attempts=1, breaker_threshold=1, breaker_reset_s=0.2))
    faults(admin, error_rate=1.0, error_status=503)
    with pytest.raises(UpstreamUnavailable):
        await connector.list_page(ObjectKind.CASE)
    await asyncio.sleep(0.25)
    with pytest.raises(UpstreamUnavailable):
        await connector.list_page(ObjectKind.CASE)  # the half-open probe fails
    with pytest.raises(CircuitOpen):
        await connector.list_page(ObjectKind.CASE)
    assert requests(admin) == 2


async def test_the_bulkhead_caps_concurrent_calls(admin, make) -> None:
    faults(admin, latency_ms=100)
    connector = make(Policy(max_concurrency=2))
    await asyncio.gather(*(connector.list_page(ObjectKind.CASE, limit=1) for _ in range(6)))
    stats = admin.get("/_sandbox/stats").json()
    assert stats["total"] == 6
    assert stats["max_in_flight"] == 2


async def test_rate_limits_and_refusals_do_not_open_the_breaker(admin, make) -> None:
    connector = make(Policy(attempts=1, breaker_threshold=2, max_retry_after_s=0))
    faults(admin, rate_limit_next=3, retry_after_s=5)
    for _ in range(3):
        with pytest.raises(UpstreamRateLimited):
            await connector.list_page(ObjectKind.CASE)
    assert await connector.breaker_state() == "closed"


# -- a walk over several pages ------------------------------------------------------------

CRM_WORLD = generate(customers=8, seed=3, as_of=date(2026, 11, 1)).slice(SystemName.CRM)
QUERY = "GET /services/data/v61.0/query"


@pytest.fixture(scope="module")
def salesforce() -> Iterator[tuple[str, httpx.Client]]:
    """Salesforce pages a query by ``nextRecordsUrl``: every page has a path of its own
    (``.../query/<locator>-<offset>``), so the sandbox's counts per path are per page."""
    with running_sandbox(crm_sandbox.create_app, CRM_WORLD) as running:
        yield running


class FaultAfterFirstPage(httpx.AsyncBaseTransport):
    """Sends requests to the sandbox; once the first page has been served, injects
    ``faults`` there, so that they hit the walk's second page."""

    def __init__(self, admin: httpx.Client, **faults: Any) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._admin = admin
        self._faults: dict[str, Any] | None = faults

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        pending, self._faults = self._faults, None
        if pending is not None:
            await asyncio.to_thread(faults, self._admin, **pending)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.mark.parametrize(
    "fault",
    [{"error_next": 1, "error_status": 503}, {"hang_next": 1, "hang_s": 30}],
    ids=["server-error", "hang"],
)
async def test_a_retry_on_page_two_does_not_start_the_walk_again(
    salesforce: tuple[str, httpx.Client], fault: dict[str, Any]
) -> None:
    """Each page is a call of its own: its own deadline (0.5 s here) and its own retries.
    A failure on page 2 sends page 2 again, not page 1."""
    url, admin = salesforce
    faults(admin)
    admin.post("/_sandbox/stats/reset").raise_for_status()
    config = ConnectorConfig(base_url=url, secret="sandbox-secret")
    inner = CrmConnector(config, transport=FaultAfterFirstPage(admin, **fault))
    policy = Policy(timeout_s=0.5, attempts=2, backoff_initial_s=0.01, backoff_max_s=0.01)
    connector = Resilient(inner, policy, sleep=Sleeps())
    try:
        got = await connector.list_all(ObjectKind.ACCOUNT, limit=3)
    finally:
        await connector.aclose()
        faults(admin)
    accounts = [r for r in CRM_WORLD if isinstance(r, Account)]
    assert sorted(r.id for r in got) == sorted(a.id for a in accounts)
    served: dict[str, int] = admin.get("/_sandbox/stats").json()["requests"]
    assert served.pop(QUERY) == 1  # page 1, once
    per_offset = {path.rsplit("-", 1)[1]: n for path, n in served.items()}
    pages = math.ceil(len(accounts) / 3)
    assert per_offset == {str(3 * p): 2 if p == 1 else 1 for p in range(1, pages)}
    assert inner.calls == pages + 1
