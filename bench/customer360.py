"""Customer 360 benchmark: upstream calls and latency for pages of customers, opsgraph's
loaders against a naive baseline (same schema, no loaders, sequential upstream calls, no
cache), in the same run against the four sandboxes with a set latency per system.

    .venv/bin/python -m bench.customer360 [--repeat 9]

Prints a table; asserts nothing. The targets (issue #4): upstream calls flat in page size;
p50 of a single customer 360 <= 1.3 x the slowest system's latency; >= 10x fewer upstream
calls than the baseline at 50 customers.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import uvloop
from rich.console import Console
from rich.table import Table

from connectors.models import (
    Account,
    Balance,
    Case,
    Invoice,
    ObjectKind,
    Plan,
    Posting,
    Record,
    Subscription,
    SystemName,
)
from connectors.sandbox import fleet
from connectors.sandbox.seed import World, generate
from dashboards.operations import document
from gateway.auth.principal import Principal, PrincipalKind
from gateway.auth.scopes import Role
from gateway.data.reads import Sourced
from gateway.data.services import Services
from gateway.demo import link_customers, sandbox_connector
from gateway.ownership import OwnershipMap
from gateway.schema import build_schema
from gateway.settings import Settings, load_settings
from gateway.storage.migrate import upgrade
from resolvers.context import Context
from resolvers.loaders import Loaders

R = TypeVar("R", bound=Record)

LATENCY_MS = {
    SystemName.BILLING: 80,
    SystemName.ERP: 60,
    SystemName.CRM: 40,
    SystemName.SUPPORT: 20,
}
PAGES = (1, 10, 50, 200)
C360 = document("customer360")
# The dashboards' principal: every read scope, every legal entity.
VIEWER = Principal.of("bench", PrincipalKind.SERVICE, roles=[Role.VIEWER])


class NaiveLoaders(Loaders):
    """The baseline: every field asks its system itself, one id at a time, one call after
    another (a global lock), nothing batched or cached."""

    lock = asyncio.Lock()

    async def _one(self, kind: ObjectKind, id: str, of: type[R], related: bool) -> Any:
        reader = self._services.reader
        async with self.lock:
            if related:
                (outcome,) = await reader.related(kind, [id], of)
            else:
                (outcome,) = await reader.records(kind, [id], of)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def account(self, id: str) -> Sourced[Account | None]:
        return await self._one(ObjectKind.ACCOUNT, id, Account, False)

    async def balance(self, id: str) -> Sourced[Balance | None]:
        return await self._one(ObjectKind.BALANCE, id, Balance, False)

    async def plan(self, id: str) -> Sourced[Plan | None]:
        return await self._one(ObjectKind.PLAN, id, Plan, False)

    async def subscriptions(self, customer_id: str) -> Sourced[list[Subscription]]:
        return await self._one(ObjectKind.SUBSCRIPTION, customer_id, Subscription, True)

    async def invoices(self, customer_id: str) -> Sourced[list[Invoice]]:
        return await self._one(ObjectKind.INVOICE, customer_id, Invoice, True)

    async def postings(self, customer_id: str) -> Sourced[list[Posting]]:
        return await self._one(ObjectKind.POSTING, customer_id, Posting, True)

    def prime_postings(self, customer_id: str) -> None:
        pass

    async def cases(self, customer_id: str) -> Sourced[list[Case]]:
        return await self._one(ObjectKind.CASE, customer_id, Case, True)


def settings(database_url: str, sandboxes: fleet.Fleet) -> Settings:
    """The gateway over ``sandboxes``. ``cache_ttl_s=0``: every query reads upstream (the
    plan catalog stays cached, as in production); the cache would otherwise hide the
    upstream cost being measured. The health prober's background calls would land in the
    counts: one round at start."""
    connector = {"timeout_s": 30, "cache_ttl_s": 0}
    systems = {
        s.value: {**sandbox_connector(url), **connector} for s, url in sandboxes.urls.items()
    }
    return load_settings(database_url=database_url, health_interval_s=3600, **systems)


async def run(
    services: Services, boxes: fleet.Fleet, world: World, naive: bool, page: int, repeat: int
) -> tuple[dict[SystemName, int], list[float]]:
    schema = build_schema()
    query = C360 + "query($n: Int!) { customers(first: $n) { edges { node { ...C360 } } } }"
    timings: list[float] = []
    calls: dict[SystemName, int] = {}
    for n in range(repeat):
        boxes.reset()
        for system, ms in LATENCY_MS.items():
            boxes.faults(system, latency_ms=ms)
        context = Context(services=services, principal=VIEWER)
        if naive:
            context.loaders = NaiveLoaders(services, VIEWER)
        started = time.perf_counter()
        result = await schema.execute(query, variable_values={"n": page}, context_value=context)
        timings.append((time.perf_counter() - started) * 1000)
        assert not result.errors, result.errors
        assert len(result.data["customers"]["edges"]) == min(page, len(world.customers))  # type: ignore[index]
        if n == 0:
            calls = boxes.totals()
    return calls, timings


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(repeat: int, pages: tuple[int, ...]) -> None:
    console = Console()
    world = generate(customers=max(PAGES), seed=7, as_of=date(2026, 11, 1))
    with fleet.in_process() as boxes, tempfile.TemporaryDirectory() as tmp:
        boxes.seed(world)
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await asyncio.to_thread(upgrade, url)
        await link_customers(url, world)
        gateway = settings(url, boxes)
        services = Services.build(gateway, OwnershipMap.load(gateway.ownership_file))
        await services.start()
        try:
            await run(services, boxes, world, False, 1, 1)  # warm: plan catalog, connections
            table = Table(title="customer 360: upstream calls and latency (ms)")
            for column in ("page", "mode", *(s.value for s in LATENCY_MS), "calls", "p50", "p95"):
                table.add_column(column, justify="right")
            for page in pages:
                for naive in (False, True):
                    # The naive baseline at 50+ customers takes minutes a run: once is enough.
                    reps = repeat if page <= 10 or not naive else 1
                    calls, timings = await run(services, boxes, world, naive, page, reps)
                    table.add_row(
                        str(page), "naive" if naive else "opsgraph",
                        *(str(calls[s]) for s in LATENCY_MS), str(sum(calls.values())),
                        f"{pct(timings, 0.5):.0f}", f"{pct(timings, 0.95):.0f}",
                    )  # fmt: skip
            console.print(table)
            slowest = max(LATENCY_MS.values())
            latencies = ", ".join(f"{s.value} {ms} ms" for s, ms in LATENCY_MS.items())
            console.print(f"set latency per system: {latencies}")
            console.print(f"target: p50 of page 1 <= 1.3 x {slowest} = {1.3 * slowest:.0f} ms")
        finally:
            await services.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--pages", type=int, nargs="+", default=list(PAGES))
    args = parser.parse_args()
    # uvloop, as uvicorn runs the gateway (its default loop when uvloop is installed).
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main(args.repeat, tuple(args.pages)))
