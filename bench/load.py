"""Read-path load benchmark (issue #14): opsgraph's cached reads under wrk beside three floors
that answer the same customer 360 from memory, in one run of interleaved rounds.

    .venv/bin/python -m bench.load [--seconds 10] [--connections 32] [--rounds 3] [--quick]
    .venv/bin/python -m bench.load --soak MINUTES [--soak-rate 40]

The four sandboxes run in a process of their own, seeded with a 60-customer world; the
gateway's database is a fresh SQLite file (the embedded default: no PostgreSQL, no Redis,
the entity cache in process), its crosswalk linking the world's customers. Two gateways
serve it at once: ``opsgraph serve`` (one process) and ``opsgraph serve --workers 2``.
Every system's answers stay cached for the run (``CACHE_TTL_S`` a day) and each case is
warmed first, so no request of a measured round reaches a sandbox (the run counts them).
Cases, each run once a round in this order, by wrk (Debian's; ``make bench-tools``)
``-t2 -c<connections>``:

1. the bare strawberry floor (``bench.floors:bare``): strawberry + Starlette answering the
   ``Customer360`` document with the answer opsgraph gave, from memory;
2. the cached-document floor (``bench.floors:cached``): the same with the parser and
   validation caches opsgraph uses;
3. the bytes floor (``bench.floors:raw``): a Starlette route returning that answer's bytes;
4. opsgraph's ``Customer360`` for one customer (the page's with the most fields), every
   system's answer cached: served by the response cache (``gateway.data.responses``);
5. the same executed (``Cache-Control: no-cache``: GraphQL execution over the caches);
6. ``CustomersPage`` with ``first: 50``, cached (a database page: never response-cached);
7. ``CheckEntitlement`` (``entitlementCheck``) at 50 connections, response cache...
8. ...and executed;
9. 4-8 again on two workers.

The gateway keeps opsgraph's own data in memory for its default ``OWNED_TTL_S`` (5 s), so
every 5 s the answers built from it execute again, as they would in production.

Operations are sent as the dashboards send them: by their persisted hash, with a viewer's
development token. For each case: the median over the rounds of req/s, p50 and p99 (wrk
``--latency``), req/s over the bare floor's, and the server's CPU (utime + stime of its
processes from /proc) per request and per field of the answer (``wrk`` says how). ``--soak``
instead asks for the cached 360 at a steady rate for MINUTES and prints how the one-worker
gateway's RSS moves (least-squares slope). Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from bench.processes import Server, cpu_s, rss_mb, serving
from bench.refusals import free_port
from connectors.sandbox import fleet
from connectors.sandbox.seed import PLANS, generate
from dashboards.operations import MANIFEST
from gateway.auth import dev_tokens
from gateway.auth.scopes import Role
from gateway.demo import link_customers, sandbox_connector
from gateway.storage.migrate import upgrade

WORLD = {"customers": 60, "seed": 7, "as_of": date(2026, 11, 1)}
PAGE = 50
ENTITLEMENT_CONNECTIONS = 50
FLOORS = ("bare", "cached", "raw")  # bench.floors' apps
DAY_S = "86400"


def gateway_env(boxes: fleet.Fleet, database_url: str, secret: str) -> dict[str, str]:
    """The embedded default over ``boxes``, development profile (HS256 tokens); answers cached
    for a day, and the benchmark's own rate not refused."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSGRAPH_")}
    env.update(
        OPSGRAPH_DATABASE_URL=database_url,
        OPSGRAPH_PROFILE="development",
        OPSGRAPH_AUTH__HS256_SECRET=secret,
        OPSGRAPH_PERSISTED_QUERIES__MODE="safelist",
        OPSGRAPH_LIMITS__RATE_LIMIT="100000000/minute",
        OPSGRAPH_LIMITS__COST_BUDGET="100000000000/minute",
        OPSGRAPH_CATALOG_TTL_S=DAY_S,
        OPSGRAPH_HEALTH_INTERVAL_S="3600",
        OPSGRAPH_CHANGE_FEED_INTERVAL_S="3600",
    )
    for system, url in boxes.urls.items():
        prefix = f"OPSGRAPH_{system.value.upper()}__"
        env.update({prefix + k.upper(): v for k, v in sandbox_connector(url).items()})
        env[prefix + "CACHE_TTL_S"] = DAY_S
    return env


def gateway(env: dict[str, str], workers: int) -> AbstractContextManager[Server]:
    port = free_port()
    command = ["-m", "gateway.cli", "serve", "--port", str(port), "--workers", str(workers)]
    name = f"opsgraph, {workers} worker{'s' if workers > 1 else ''}"
    return serving(name, [sys.executable, *command], env, f"http://127.0.0.1:{port}/readyz")


def floor(app: str, answer: Path) -> AbstractContextManager[Server]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", f"bench.floors:{app}", "--port", str(port),
               "--log-level", "warning", "--no-access-log"]  # fmt: skip
    env = {**os.environ, "FLOOR_ANSWER": str(answer)}
    return serving(app, command, env, f"http://127.0.0.1:{port}/ready")


# -- wrk ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    server: Server
    body: bytes
    connections: int
    fields: int  # in the answer's ``data``, counted by ``fields``
    target: str = ""
    executed: bool = False  # sent with Cache-Control: no-cache: past the response cache


@dataclass(frozen=True)
class Sample:
    rate: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float  # the server's, per request
    problems: str = ""


def fields(value: object) -> int:
    """Every member of every object in ``value``: the fields an answer carries."""
    if isinstance(value, dict):
        return sum(1 + fields(v) for v in value.values())
    if isinstance(value, list):
        return sum(fields(v) for v in value)
    return 0


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
wrk.body = [==[{body}]==]
"""
NO_CACHE = 'wrk.headers["Cache-Control"] = "no-cache"\n'
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def wrk(case: Case, token: str, seconds: float) -> Sample:
    """``seconds`` of wrk against ``case``. wrk keeps a request in flight on every connection,
    and the server finishes those after wrk stops: its CPU is counted until it is idle again
    (``settle``), over wrk's requests and one more per connection."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_SCRIPT.format(token=token, body=case.body.decode()))
        if case.executed:
            script.write(NO_CACHE)
        script.flush()
        command = ["wrk", "-t2", f"-c{case.connections}", f"-d{seconds:g}s", "--latency",
                   "--timeout", "60s", "-s", script.name, f"{case.server.url}/graphql"]  # fmt: skip
        before = cpu_s(case.server.pid)
        said = subprocess.run(command, capture_output=True, text=True).stdout
        settle(case.server)
        used = cpu_s(case.server.pid) - before
    done = re.search(r"(\d+) requests in", said)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", said)
    latency = {
        q: float(n) * UNITS_MS[unit]
        for q, n, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", said, re.M)
    }
    if done is None or rate is None or int(done.group(1)) == 0 or len(latency) < 2:
        nan = float("nan")
        return Sample(0, nan, nan, nan, f"no answer in {seconds:g} s; wrk said: {said[-300:]}")
    problems = " ".join(re.findall(r"Non-2xx or 3xx responses: \d+|Socket errors: .*", said))
    requests = int(done.group(1)) + case.connections
    return Sample(float(rate.group(1)), latency["50"], latency["99"], used * 1000 / requests,
                  problems)  # fmt: skip


def settle(server: Server, within_s: float = 120) -> None:
    """Until ``server`` uses less than 5% of a core over half a second. A gateway goes on with
    the requests in flight when wrk stops (32 pages of 50 are seconds of CPU): without this
    they would be the next case's."""
    deadline = time.monotonic() + within_s
    used = cpu_s(server.pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        used, before = cpu_s(server.pid), used
        if used - before < 0.025:
            return


# -- the run --------------------------------------------------------------------------------


def operation(name: str, variables: dict[str, object]) -> bytes:
    """A persisted operation's request, as the dashboards send it: by its hash."""
    (found,) = (o for o in json.loads(MANIFEST.read_text())["operations"] if o["name"] == name)
    persisted = {"version": 1, "sha256Hash": found["id"]}
    request = {
        "operationName": name,
        "variables": variables,
        "extensions": {"persistedQuery": persisted},
    }
    return json.dumps(request).encode()


def document(name: str, variables: dict[str, object]) -> bytes:
    """The same operation with its text, for the floors (which know no hashes)."""
    (found,) = (o for o in json.loads(MANIFEST.read_text())["operations"] if o["name"] == name)
    return json.dumps(
        {"operationName": name, "variables": variables, "query": found["body"]}
    ).encode()


def ask(server: Server, body: bytes, token: str) -> bytes:
    """One answer, with ``data`` and no errors (else the benchmark stops): its bytes."""
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    answer = httpx.post(f"{server.url}/graphql", content=body, headers=headers, timeout=60)
    said = answer.json()
    if answer.status_code != 200 or said.get("errors") or not said.get("data"):
        raise RuntimeError(f"{server.name} answered {answer.status_code}: {answer.text[:500]}")
    return answer.content


@dataclass
class Setup:
    boxes: fleet.Fleet
    token: str
    gateways: dict[int, Server]  # by workers
    customer: str
    feature: str
    answer: Path  # opsgraph's ``Customer360`` answer, for the floors
    bodies: dict[str, bytes] = field(default_factory=dict)


def prepare(stack: ExitStack, workers: Sequence[int]) -> Setup:
    """Sandboxes, the gateway's database and ``workers`` gateways, every cache filled."""
    world = generate(**WORLD)
    boxes = stack.enter_context(fleet.in_process())
    boxes.seed(world)
    scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    database_url = f"sqlite+aiosqlite:///{scratch / 'opsgraph.db'}"
    upgrade(database_url)
    asyncio.run(link_customers(database_url, world))
    secret = secrets.token_hex(32)
    token = dev_tokens.mint(secret, Role.VIEWER)
    env = gateway_env(boxes, database_url, secret)
    gateways = {n: stack.enter_context(gateway(env, n)) for n in workers}
    first = gateways[min(workers)]
    page = operation("CustomersPage", {"first": PAGE})
    ask(first, page, token)  # reads every customer of the page once
    # The customer of the page whose 360 carries the most fields.
    edges = json.loads(ask(first, page, token))["data"]["customers"]["edges"]
    customer = max(edges, key=fields)["node"]["id"]
    (seeded,) = (c for c in world.customers if c.id == customer)
    feature = PLANS[seeded.plan][1][0]
    c360 = operation("Customer360", {"id": customer})
    ask(first, c360, token)
    answer = scratch / "customer360.json"
    answer.write_bytes(ask(first, c360, token))
    bodies = {
        "360": c360,
        "page": page,
        "check": operation("CheckEntitlement", {"customerId": customer, "feature": feature}),
        "document": document("Customer360", {"id": customer}),
    }
    return Setup(boxes, token, gateways, customer, feature, answer, bodies)


def cases(setup: Setup, floors: dict[str, Server], connections: int) -> list[Case]:
    count = {name: fields(json.loads(ask(s, setup.bodies[name], setup.token))["data"])
             for name, s in (("360", setup.gateways[1]), ("page", setup.gateways[1]),
                             ("check", setup.gateways[1]))}  # fmt: skip
    made = [
        Case("bare strawberry floor", floors["bare"], setup.bodies["document"], connections,
             count["360"], "baseline"),
        Case("cached-document floor", floors["cached"], setup.bodies["document"], connections,
             count["360"]),
        Case("Starlette bytes floor", floors["raw"], setup.bodies["document"], connections,
             count["360"]),
    ]  # fmt: skip
    for workers, server in setup.gateways.items():
        label = f"{workers} worker{'s' if workers > 1 else ''}"
        one = workers == 1
        made += [
            Case(f"cached customer 360, response cache, {label}", server, setup.bodies["360"],
                 connections, count["360"], ">= 10x the bare floor" if one else ""),
            Case(f"cached customer 360, executed, {label}", server, setup.bodies["360"],
                 connections, count["360"], ">= 1x the cached-document floor" if one else "",
                 executed=True),
            Case(f"page of {PAGE}, {label}", server, setup.bodies["page"], connections,
                 count["page"]),
            Case(f"entitlementCheck, response cache, {label}", server, setup.bodies["check"],
                 ENTITLEMENT_CONNECTIONS, count["check"], "p99 < 100 ms" if one else ""),
            Case(f"entitlementCheck, executed, {label}", server, setup.bodies["check"],
                 ENTITLEMENT_CONNECTIONS, count["check"], executed=True),
        ]  # fmt: skip
    return made


def machine() -> str:
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    memory = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
    gb = int(memory.group(1)) / 1024**2 if memory else 0
    return f"{os.cpu_count()} cores ({cpu.group(1) if cpu else '?'}), {gb:.0f} GB"


def main(seconds: float, connections: int, rounds: int, warm_s: float) -> None:
    console = Console(width=200)
    with ExitStack() as stack:
        setup = prepare(stack, (1, 2))
        floors = {app: stack.enter_context(floor(app, setup.answer)) for app in FLOORS}
        want = json.loads(setup.answer.read_bytes())["data"]
        for server in floors.values():
            if json.loads(ask(server, setup.bodies["document"], setup.token))["data"] != want:
                raise RuntimeError(f"the {server.name} floor's answer is not opsgraph's")
        run = cases(setup, floors, connections)
        for case in run:
            wrk(case, setup.token, warm_s)
        setup.boxes.reset_stats()
        samples: dict[str, list[Sample]] = {case.name: [] for case in run}
        for n in range(rounds):
            for case in run:
                sample = wrk(case, setup.token, seconds)
                samples[case.name].append(sample)
                console.print(f"round {n + 1}: {case.name}: {sample.rate:,.1f} req/s "
                              f"{sample.problems}")  # fmt: skip
        upstream = sum(setup.boxes.totals().values())
    print_table(console, run, samples)
    console.print(
        f"{machine()}; wrk -t2 -c{connections} (entitlementCheck -c{ENTITLEMENT_CONNECTIONS}) "
        f"{seconds:g} s a case, {rounds} interleaved rounds, medians; each case warmed "
        f"{warm_s:g} s first. opsgraph on the embedded default (SQLite, entity cache in "
        f"process), customer {setup.customer}, feature {setup.feature}; upstream requests "
        f"during the rounds: {upstream}. CPU: utime + stime of the server's processes from "
        "wrk's start until the server is idle again, over wrk's requests + one a connection "
        "(left in flight when wrk stops); per field: over the fields of the answer."
    )


def print_table(console: Console, run: Sequence[Case], samples: dict[str, list[Sample]]) -> None:
    def median(name: str, of: str) -> float:
        return statistics.median(getattr(s, of) for s in samples[name])

    bare = median(run[0].name, "rate")
    cached_floor = median(run[1].name, "rate")
    table = Table(title="read path under load: req/s, latency, CPU (medians)")
    columns = ("case", "conns", "fields", "req/s", "req/s range", "p50 ms", "p99 ms",
               "x bare floor", "CPU ms/req", "CPU µs/field", "target")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column in ("case", "target") else "right")
    for case in run:
        rate, cpu = median(case.name, "rate"), median(case.name, "cpu_ms")
        rates = [s.rate for s in samples[case.name]]
        p99 = median(case.name, "p99_ms")
        target = case.target
        if target.startswith(">= 1x"):
            met = "met" if rate >= cached_floor else "**not met**"
            target = f"{target}: {met} ({rate / cached_floor:.2f}x)"
        elif target.startswith(">= 10x"):
            target = f"{target}: {'met' if rate >= 10 * bare else '**not met**'}"
        elif target.startswith("p99"):
            target = f"{target}: {'met' if p99 < 100 else '**not met**'}"
        table.add_row(
            case.name, str(case.connections), str(case.fields), f"{rate:,.1f}",
            f"{min(rates):,.1f}-{max(rates):,.1f}", f"{median(case.name, 'p50_ms'):,.1f}",
            f"{p99:,.1f}", f"{rate / bare:.2f}", f"{cpu:.2f}", f"{cpu * 1000 / case.fields:.1f}",
            target,
        )  # fmt: skip
    console.print(table)
    gateway_cases = [c for c in run if "worker" in c.name]
    half = len(gateway_cases) // 2
    for one, two in zip(gateway_cases[:half], gateway_cases[half:], strict=False):
        if median(one.name, "rate"):
            ratio = median(two.name, "rate") / median(one.name, "rate")
            console.print(f"{two.name}: {ratio:.2f}x one worker's req/s")
    for case in run:
        for problem in {s.problems for s in samples[case.name] if s.problems}:
            console.print(f"{case.name}: {problem}")


# -- soak -----------------------------------------------------------------------------------

SAMPLE_EVERY_S = 5


@dataclass
class Soak:
    latencies_ms: list[float] = field(default_factory=list)
    failed: int = 0
    rss: list[tuple[float, float]] = field(default_factory=list)  # (minutes, MB)


async def steady(server: Server, body: bytes, token: str, seconds: float, rate: float) -> Soak:
    """``body`` sent to ``server`` at ``rate`` a second for ``seconds``; its RSS sampled."""
    soak = Soak()
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one() -> None:
            started = time.perf_counter()
            try:
                answer = await client.post(f"{server.url}/graphql", content=body, headers=headers)
            except httpx.HTTPError:
                soak.failed += 1
                return
            if answer.status_code != 200:
                soak.failed += 1
                return
            soak.latencies_ms.append((time.perf_counter() - started) * 1000)

        tasks: set[asyncio.Task[None]] = set()
        started = time.perf_counter()
        sent, sampled = 0, -SAMPLE_EVERY_S
        while (elapsed := time.perf_counter() - started) < seconds:
            if elapsed - sampled >= SAMPLE_EVERY_S:
                sampled = elapsed
                soak.rss.append((elapsed / 60, rss_mb(server.pid)))
            task = asyncio.create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
            await asyncio.sleep(max(0.0, started + sent / rate - time.perf_counter()))
        await asyncio.gather(*tasks)
    soak.rss.append(((time.perf_counter() - started) / 60, rss_mb(server.pid)))
    return soak


def soak(minutes: float, rate: float, warm_s: float) -> None:
    console = Console(width=200)
    with ExitStack() as stack:
        setup = prepare(stack, (1,))
        server = setup.gateways[1]
        body = setup.bodies["360"]
        count = fields(json.loads(ask(server, body, setup.token))["data"])
        wrk(Case("warm", server, body, 32, count), setup.token, warm_s)
        found = asyncio.run(steady(server, body, setup.token, minutes * 60, rate))
    at, mb = zip(*found.rss, strict=True)
    slope = statistics.linear_regression(at, mb).slope
    ordered = sorted(found.latencies_ms) or [float("nan")]
    table = Table(title=f"soak: the cached customer 360 at {rate:g}/s, one worker")
    for column in ("minutes", "answered", "failed", "p50 ms", "p99 ms", "RSS first MB",
                   "RSS last MB", "RSS max MB", "slope MB/min"):  # fmt: skip
        table.add_column(column, justify="right")
    table.add_row(
        f"{at[-1]:.1f}", f"{len(found.latencies_ms):,}", str(found.failed),
        f"{ordered[len(ordered) // 2]:.1f}", f"{ordered[int(len(ordered) * 0.99)]:.1f}",
        f"{mb[0]:.1f}", f"{mb[-1]:.1f}", f"{max(mb):.1f}", f"{slope:+.3f}",
    )  # fmt: skip
    console.print(table)
    console.print(
        f"{machine()}; RSS of the gateway process every {SAMPLE_EVERY_S} s ({len(mb)} "
        "samples), slope by least squares; requests from this process (httpx), at a fixed rate."
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="of wrk per case and round")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 5 s, one round")
    parser.add_argument("--soak", type=float, metavar="MINUTES", help="the soak instead")
    parser.add_argument("--soak-rate", type=float, default=40, help="requests a second")
    args = parser.parse_args()
    # SIGTERM ends the run as Ctrl-C does: the servers it started are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: make bench-tools (apt-get install wrk)")
    warm = 3.0
    if args.soak:
        soak(args.soak, args.soak_rate, warm)
    elif args.quick:
        main(5, args.connections, 1, warm)
    else:
        main(args.seconds, args.connections, args.rounds, warm)
