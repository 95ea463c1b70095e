"""Writes benchmark: what a governed write costs over real HTTP, and what its replay costs,
against the floor every request pays (``{ __typename }`` as the same principal) in the
same run.

    .venv/bin/python -m bench.writes [--requests 300] [--concurrency 8]
        [--databases sqlite,postgres]

The four sandboxes run in a process of their own, seeded with the six-customer world of the
tests, with no latency added. For each database (a fresh migrated SQLite file; a fresh
PostgreSQL database ``opsgraph_bench_writes`` on 127.0.0.1:5432, dropped afterwards), a
gateway whose crosswalk links the world's customers is served by uvicorn on a loopback port.
A support lead sends ``--requests`` ``requestCredit`` mutations (100.00 EUR for the world's
one SLA-breached case), each under its own idempotency key, from ``--concurrency`` clients
at once; then the same keys again with the same input: replays. A temporary credit policy
makes every credit wait for an approver, so no workflow runs (the request path is what is
measured), and lets thousands of them through. The per-principal request rate and cost
budget are raised so that the benchmark does not refuse itself, and the connectors cache
nothing (``cache_ttl_s=0``; the plan catalog stays cached, as in production): each first
request reads the case and the subscriptions from their owners, as one for a customer
nobody asked about in the last minute would.

The first table gives requests per second, client-side p50 and p99 ms, and p50 as a multiple
of the floor's; the second, the upstream calls per request each sandbox counted, and whether
the answers were what they should be. A request alone reads two (the customer's
subscriptions in billing, its cases in support); concurrent requests for the one customer
share the reads in flight (``gateway.data.reads``), so fewer show per request. Targets:
replay p50 < 1/10 of a first request's, 0 upstream calls per replay (a replay touches no
system of record). The gateway, the clients and their event loops share one interpreter, as
in ``bench.refusals``: a request's p50 includes its wait for the other clients' requests.
Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from bench.postgres import fresh_database
from bench.refusals import UNLIMITED_RATES, served
from connectors.models import Case, SystemName
from connectors.sandbox import fleet
from connectors.sandbox.seed import World, generate
from gateway.auth import dev_tokens
from gateway.auth.scopes import Role
from gateway.demo import link_customers, sandbox_connector
from gateway.settings import Settings, load_settings
from gateway.storage.migrate import upgrade

DATABASES = ("sqlite", "postgres")
PG_DATABASE = "opsgraph_bench_writes"
AMOUNT = "100.00"
# Every EUR credit of 0.01 or more waits for an approver; thousands fit in one quarter.
POLICY = """
[EUR.default]
auto_approve_below = "0.01"
max_per_request = "1000.00"
max_per_customer = "100000000.00"
period = "quarter"

[EUR."Opsgraph B.V."]
auto_approve_below = "0.01"
max_per_request = "1000.00"
max_per_customer = "100000000.00"
period = "quarter"
"""
REQUEST = """mutation($input: RequestCreditInput!, $key: String!) {
  requestCredit(input: $input, idempotencyKey: $key) {
    credit { id status amount { amount currency } requestedBy }
    workflowRun { status }
    userErrors { code message }
  }
}"""
FLOOR = "{ __typename }"


@dataclass
class Figures:
    """One phase: every request's client-side ms, the phase's wall time, the upstream calls
    it caused per system, and what its answers said."""

    timings_ms: list[float]
    elapsed_s: float
    calls: dict[SystemName, int]
    replayed: int
    problems: list[str]

    @property
    def per_second(self) -> float:
        return len(self.timings_ms) / self.elapsed_s

    def pct(self, q: float) -> float:
        ordered = sorted(self.timings_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def breached(world: World) -> tuple[str, str]:
    """The seeded customer with an SLA-breached case (Opsgraph B.V., billed in EUR), and
    that case's id."""
    support = SystemName.SUPPORT
    return next(
        (customer.id, case.id)
        for customer in world.customers
        for case in world.slice(support)
        if isinstance(case, Case)
        and case.sla_breached
        and case.organization_id == customer.external_ids.get(support)
    )


def settings(database_url: str, boxes: fleet.Fleet, secret: str, policy: Path) -> Settings:
    """A development gateway over ``boxes``. The health prober and the workflow and outbox
    pollers go round at start, then not for an hour: none of their calls land in the counts."""
    connector = {"timeout_s": 30, "cache_ttl_s": 0}
    systems = {s.value: {**sandbox_connector(url), **connector} for s, url in boxes.urls.items()}
    return load_settings(
        database_url=database_url,
        profile="development",
        auth={"hs256_secret": secret},
        limits=UNLIMITED_RATES,
        credit_policy_file=policy,
        health_interval_s=3600,
        workflow_interval_s=3600,
        **systems,
    )


@contextmanager
def database(kind: str, folder: Path, world: World) -> Iterator[str]:
    """A fresh migrated gateway database of ``kind`` whose crosswalk links the world's
    customers: its URL. A PostgreSQL one is dropped when the block ends."""
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / 'opsgraph.db'}"
        upgrade(url)
        asyncio.run(link_customers(url, world))
        yield url
        return
    with fresh_database(PG_DATABASE) as url:
        asyncio.run(link_customers(url, world))
        yield url


def credit_body(customer: str, case: str, key: str) -> bytes:
    variables = {
        "input": {
            "customerId": customer,
            "caseId": case,
            "amount": {"amount": AMOUNT, "currency": "EUR"},
            "reason": "SLA breached on a P1",
        },
        "key": key,
    }
    return json.dumps({"query": REQUEST, "variables": variables}).encode()


def floor_body(n: int) -> bytes:
    # Numbered, so that no parser or validation cache answers for a repetition.
    return json.dumps({"query": f"{FLOOR} # {n}"}).encode()


def problem(response: httpx.Response) -> str | None:
    """What is wrong with an answer, or None: not 200, GraphQL errors, refused credits."""
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    body = response.json()
    if body.get("errors"):
        return f"errors: {json.dumps(body['errors'])[:200]}"
    payload = (body.get("data") or {}).get("requestCredit")
    if payload is None:
        return None  # the floor
    if payload["userErrors"]:
        return f"userErrors: {json.dumps(payload['userErrors'])[:200]}"
    if payload["credit"]["status"] != "REQUESTED" or payload["workflowRun"] is not None:
        return f"not waiting for an approver: {json.dumps(payload)[:200]}"
    return None


def replayed(response: httpx.Response) -> bool:
    try:
        entries = response.json().get("extensions", {}).get("idempotency", [])
    except ValueError:
        return False
    return any(e.get("replayed") for e in entries)


async def send_all(
    url: str, token: str, bodies: Sequence[bytes], concurrency: int
) -> tuple[list[float], float, list[httpx.Response]]:
    """``bodies`` posted by ``concurrency`` clients, each taking the next one when its last
    is answered: every request's ms, the wall time, and the answers."""
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    timings: list[float] = [0.0] * len(bodies)
    answers: list[httpx.Response | None] = [None] * len(bodies)
    queue = iter(range(len(bodies)))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def worker() -> None:
            for i in queue:  # shared: each index is taken by one worker
                started = time.perf_counter()
                answer = await client.post(f"{url}/graphql", content=bodies[i], headers=headers)
                timings[i] = (time.perf_counter() - started) * 1000
                answers[i] = answer

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return timings, elapsed, [a for a in answers if a is not None]


def phase(
    url: str, token: str, boxes: fleet.Fleet, bodies: Sequence[bytes], concurrency: int
) -> Figures:
    boxes.reset_stats()
    timings, elapsed, answers = asyncio.run(send_all(url, token, bodies, concurrency))
    calls = boxes.totals()
    found = [p for p in map(problem, answers) if p is not None]
    return Figures(timings, elapsed, calls, sum(map(replayed, answers)), found)


def measured(
    kind: str,
    boxes: fleet.Fleet,
    world: World,
    secret: str,
    policy: Path,
    requests: int,
    concurrency: int,
    with_floor: bool,
) -> dict[str, Figures]:
    customer, case = breached(world)
    token = dev_tokens.mint(secret, Role.SUPPORT_LEAD)
    keys = [f"bench-{kind}-{n}" for n in range(requests)]
    firsts = [credit_body(customer, case, key) for key in keys]
    warm = [credit_body(customer, case, f"warm-{kind}-{n}") for n in range(concurrency)]
    figures: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp), world) as url:
        with served(settings(url, boxes, secret, policy)) as gateway:
            # Warm: connections, lazy imports, the plan catalog, the first sessions.
            phase(gateway, token, boxes, [floor_body(-1 - n) for n in range(20)], concurrency)
            phase(gateway, token, boxes, warm, concurrency)
            phase(gateway, token, boxes, warm, concurrency)  # and their replays
            if with_floor:
                floors = [floor_body(n) for n in range(requests)]
                figures["floor"] = phase(gateway, token, boxes, floors, concurrency)
            figures["first"] = phase(gateway, token, boxes, firsts, concurrency)
            figures["replay"] = phase(gateway, token, boxes, firsts, concurrency)
    return figures


def main(requests: int, concurrency: int, databases: Sequence[str]) -> None:
    console = Console()
    world = generate(customers=6, seed=5, as_of=date(2026, 11, 1))
    secret = secrets.token_hex(32)
    results: dict[str, dict[str, Figures]] = {}
    with fleet.in_process() as boxes, tempfile.TemporaryDirectory() as tmp:
        boxes.seed(world)
        boxes.reset()  # no faults: no latency added
        policy = Path(tmp) / "credit_policy.toml"
        policy.write_text(POLICY)
        for n, kind in enumerate(databases):
            results[kind] = measured(
                kind, boxes, world, secret, policy, requests, concurrency, with_floor=n == 0
            )

    floor = results[databases[0]]["floor"]
    # Two narrow tables rather than one wide one: each fits an 80-column terminal.
    times = Table(title=f"requestCredit: {requests} requests, {concurrency} clients at once")
    for column in ("request", "req/s", "p50 ms", "p99 ms", "x floor", "replay/first"):
        times.add_column(column, justify="left" if column == "request" else "right")
    calls = Table(title="upstream calls per request, and the answers")
    systems = [s.value for s in floor.calls]
    for column in ("request", *systems, "replayed", "problems"):
        calls.add_column(column, justify="left" if column == "request" else "right")

    def row(name: str, f: Figures, ratio: str = "") -> None:
        times.add_row(
            name, f"{f.per_second:.0f}", f"{f.pct(0.5):.1f}", f"{f.pct(0.99):.1f}",
            f"{f.pct(0.5) / floor.pct(0.5):.1f}", ratio,
        )  # fmt: skip
        per_system = (f"{n / len(f.timings_ms):.2f}" for n in f.calls.values())
        calls.add_row(name, *per_system, str(f.replayed), str(len(f.problems)))

    row(f"floor ({databases[0]})", floor)
    for kind, figures in results.items():
        first, replay = figures["first"], figures["replay"]
        row(f"{kind}: new key", first)
        row(f"{kind}: replay", replay, f"{replay.pct(0.5) / first.pct(0.5):.3f}")
    console.print(times)
    console.print(calls)
    console.print(
        "floor: { __typename } as the same principal. x floor: p50 over the floor's p50. "
        "replayed: answers marked in extensions.idempotency. problems: answers not 200, with "
        "errors or userErrors, or not waiting for an approver. Targets: replay/first < 0.100; "
        "0 upstream calls per replay.",
        highlight=False,
    )
    for kind, figures in results.items():
        for name, f in figures.items():
            for said in sorted(set(f.problems))[:3]:
                console.print(f"{kind} {name}: {said}", soft_wrap=True, highlight=False)


def database_kinds(value: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in value.split(",") if k.strip())
    unknown = [k for k in kinds if k not in DATABASES]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"{value!r}: choose from {','.join(DATABASES)}")
    return kinds


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--databases", type=database_kinds, default=DATABASES)
    args = parser.parse_args()
    main(args.requests, args.concurrency, args.databases)
