"""Tracing benchmark: what traces cost a request, measured side by side in one run.

    .venv/bin/python -m bench.tracing [--requests 300]

First the span bookkeeping a connector attempt always does (``connectors.tracing``), with
no tracer provider in the process, against an empty loop. Then a gateway served over HTTP
in this process against the four sandboxes in a process of their own, asked for the same
page of 10 customers (account, subscriptions, cases; entity cache off, so that every
request calls every system) ``--requests`` times, one after another, three ways:

    off            the default: no provider, no instrumentation
    on             spans made by every layer and handed to a batch processor whose
                   exporter drops them (an OTLP exporter's work is off this process's path)
    off, provider  tracing off in a process that has a provider (a test process): only
                   opsgraph's own spans are made

The table gives the CPU time this process spent per request (the gateway and the client;
the sandboxes are elsewhere) and the median and 95th percentile latency. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from rich.console import Console
from rich.table import Table

from connectors import tracing as connector_tracing
from connectors.models import ObjectKind, SystemName
from connectors.sandbox import fleet
from connectors.sandbox.seed import generate
from connectors.sandbox.serve import serve_in_thread
from gateway.app import create_app
from gateway.auth import dev_tokens
from gateway.auth.scopes import Role
from gateway.demo import SANDBOX_SECRET, link_customers
from gateway.settings import Profile, load_settings
from gateway.storage.migrate import upgrade

PAGE = """
query Page { customers(first: 10) { edges { node {
  name account { name } subscriptions { status } cases(first: 5) { edges { node { subject } } }
} } } }
"""


class _Dropped(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def attempt_cost(n: int = 200_000) -> tuple[float, float]:
    """Microseconds per connector attempt's span bookkeeping, and per empty iteration."""
    started = time.perf_counter()
    for _ in range(n):
        pass
    empty = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(n):
        with connector_tracing.attempt(SystemName.CRM, "fetch_many", 1, ObjectKind.ACCOUNT, i):
            connector_tracing.breaker_state("closed")
    spent = time.perf_counter() - started
    return spent / n * 1e6, empty / n * 1e6


def measure(url: str, token: str, requests: int) -> tuple[float, list[float]]:
    """CPU milliseconds per request, and each request's latency in milliseconds."""
    headers = {"authorization": f"Bearer {token}"}
    latencies = []
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for _ in range(10):  # warm: parser caches, connections
            client.post("/graphql", json={"query": PAGE}).raise_for_status()
        cpu = time.process_time()
        for _ in range(requests):
            started = time.perf_counter()
            answer = client.post("/graphql", json={"query": PAGE})
            latencies.append((time.perf_counter() - started) * 1000)
            assert "errors" not in answer.json(), answer.text
        cpu = time.process_time() - cpu
    return cpu / requests * 1000, latencies


def serve(database: str, urls: dict[SystemName, str], secret: str, traced: bool) -> Any:
    connector = {"secret": SANDBOX_SECRET, "cache_ttl_s": 0, "timeout_s": 10}
    settings = load_settings(
        database_url=database,
        profile=Profile.DEVELOPMENT,
        auth={"hs256_secret": secret},
        limits={"rate_limit": "1000000/minute", "cost_budget": "1000000000/minute"},
        telemetry={"enabled": traced},
        change_feed_interval_s=3600,
        **{s.value: {"base_url": u, **connector} for s, u in urls.items()},
    )
    return serve_in_thread(create_app(settings), lifespan="on")


def main(requests: int) -> None:
    per_attempt, per_iteration = attempt_cost()
    world = generate(customers=10, seed=5)
    rows: list[tuple[str, float, list[float]]] = []
    upstream = 0.0
    with tempfile.TemporaryDirectory() as state, fleet.in_process(Path(state)) as boxes:
        boxes.seed(world)
        database = f"sqlite+aiosqlite:///{Path(state) / 'gateway.db'}"
        upgrade(database)
        asyncio.run(link_customers(database, world))
        secret = "bench-secret-" + "x" * 32
        token = dev_tokens.mint(secret, Role.VIEWER)
        for name, traced, provider in [
            ("off", False, False),
            ("on", True, True),
            ("off, provider", False, True),
        ]:
            if provider and not isinstance(trace.get_tracer_provider(), TracerProvider):
                installed = TracerProvider()
                installed.add_span_processor(BatchSpanProcessor(_Dropped()))
                trace.set_tracer_provider(installed)
            running = serve(database, boxes.urls, secret, traced)
            try:
                boxes.reset_stats()
                cpu, latencies = measure(running.url, token, requests)
                upstream = sum(boxes.totals().values()) / (requests + 10)
            finally:
                running.stop()
            rows.append((name, cpu, latencies))

    console = Console()
    off_cpu_us = rows[0][1] * 1000
    console.print(
        f"connector attempt span, no provider: {per_attempt:.2f} µs (empty loop "
        f"{per_iteration:.3f} µs); {upstream:.1f} upstream requests per page: "
        f"{per_attempt * upstream:.0f} µs of {off_cpu_us:.0f} µs CPU per request "
        f"({per_attempt * upstream / off_cpu_us:.2%})"
    )
    table = Table(title=f"a page of 10 customers, {requests} requests each")
    for column in ("tracing", "CPU ms/request", "vs off", "p50 ms", "p95 ms"):
        table.add_column(column, justify="right")
    base = rows[0][1]
    for name, cpu, latencies in rows:
        ordered = sorted(latencies)
        table.add_row(
            name,
            f"{cpu:.2f}",
            f"{cpu / base:.2f}x",
            f"{statistics.median(ordered):.1f}",
            f"{ordered[int(len(ordered) * 0.95) - 1]:.1f}",
        )
    console.print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    main(parser.parse_args().requests)
