"""Events benchmark: what signed webhooks cost a gateway on PostgreSQL and Redis, and how fast
what they cause reaches GraphQL subscribers over WebSocket.

    .venv/bin/python -m bench.events [--deliveries 2000] [--concurrency 32] [--rate 200]
        [--seconds 5] [--subscribers 1000]

The four sandboxes run in a process of their own; the gateway (``opsgraph serve``) in
another, on a fresh PostgreSQL database ``opsgraph_bench_events`` (dropped afterwards) and
the local Redis; this process is the vendors and the subscribers. Three phases:

1. accepted: signed Stripe ``invoice.paid`` events, each new, POSTed to
   ``/webhooks/billing`` from ``--concurrency`` connections at once: deliveries per second,
   p50 and p99 of the answer (stored in the inbox and the outbox, and the cache told to
   forget what each names, before the 200). With ``wrk`` on the PATH (Debian's package;
   ``make bench-tools``) for ``--seconds`` by wrk's one thread, and the same wrk run against
   a floor (``bench.webhook_floor``: the same signature check, then 200, nothing stored) as
   the baseline; else ``--deliveries`` from this process with httpx, which then costs a
   core of its own on this two-core machine;
2. end to end: one subscriber of ``eventProcessed(type: "billing.invoice")`` while
   deliveries are sent at ``--rate`` per second for ``--seconds`` (over 16 kept-alive
   connections by ``Poster``, a lean client: this process shares the cores with the
   gateway): from a delivery's send to its message at the subscriber, p50 and p99, and how
   many arrived;
3. fan-out: ``--subscribers`` WebSocket connections, each with the same subscription, held
   at once; five deliveries, one at a time: from each send to its message at every
   subscriber, p50, p99 and max over all of them, and how many arrived.

Targets (the events issue): >= 1,000 deliveries/s accepted, p99 <= 250 ms at 200/s end to
end, 1,000 subscribers held. Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import asyncpg
import httpx
from rich.console import Console
from rich.table import Table
from websockets.asyncio.client import ClientConnection, connect

from bench.postgres import fresh_database
from bench.processes import Server, cpu_s, serving
from bench.refusals import free_port
from connectors.sandbox import fleet
from connectors.sandbox.billing import documents
from connectors.sandbox.billing.writes import signed
from connectors.sandbox.config import SandboxConfig
from gateway.auth import dev_tokens
from gateway.auth.scopes import Role

PG_DATABASE = "opsgraph_bench_events"
REDIS_URL = "redis://127.0.0.1:6379/0"
WHSEC = "whsec_bench_events"
SANDBOX_SECRET = SandboxConfig.secret  # the fleet's sandboxes' default
SUBSCRIPTION = 'subscription { eventProcessed(type: "billing.invoice") { id } }'


@dataclass
class Figures:
    name: str
    timings_ms: list[float] = field(default_factory=list)
    sent: int = 0
    received: int = 0
    elapsed_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    # Percentiles a load generator reported (wrk), when the timings are not here.
    reported: dict[float, float] = field(default_factory=dict)

    def pct(self, q: float) -> float:
        if q in self.reported:
            return self.reported[q]
        if not self.timings_ms:
            return float("nan")
        ordered = sorted(self.timings_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextmanager
def gateway(database_url: str, boxes: fleet.Fleet, secret: str) -> Iterator[Server]:
    """``opsgraph serve`` in a process of its own, once ``/readyz`` answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSGRAPH_")}
    env.update(
        OPSGRAPH_DATABASE_URL=database_url,
        OPSGRAPH_REDIS_URL=REDIS_URL,
        OPSGRAPH_PROFILE="development",
        OPSGRAPH_AUTH__HS256_SECRET=secret,
        OPSGRAPH_CHANGE_FEED_INTERVAL_S="3600",
        OPSGRAPH_HEALTH_INTERVAL_S="3600",
    )
    for system, url in boxes.urls.items():
        prefix = f"OPSGRAPH_{system.value.upper()}__"
        env[prefix + "BASE_URL"] = url
        env[prefix + "SECRET"] = SANDBOX_SECRET
        env[prefix + "WEBHOOK_SECRET"] = WHSEC
    command = [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)]
    ready = f"http://127.0.0.1:{port}/readyz"
    with serving("the gateway", command, env, ready) as server:
        yield server


def delivery(event_id: str) -> tuple[bytes, dict[str, str]]:
    """A signed ``invoice.paid``, as the billing sandbox sends one."""
    paid = {"id": f"in_{event_id}", "object": "invoice", "customer": "cus_x"}
    body = json.dumps(
        documents.event(
            event_id, int(time.time()), "invoice.paid", paid,
            request_id=f"req_{event_id}", idempotency_key=None, pending_webhooks=1,
        )
    ).encode()  # fmt: skip
    return body, signed(WHSEC, body)


async def accepted(url: str, count: int, concurrency: int) -> Figures:
    figures = Figures("accepted")
    bodies = [delivery(f"evt_a{n}_{secrets.token_hex(4)}") for n in range(count)]
    queue = iter(bodies)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def worker() -> None:
            for body, headers in queue:
                started = time.perf_counter()
                answer = await client.post(f"{url}/webhooks/billing", content=body, headers=headers)
                figures.timings_ms.append((time.perf_counter() - started) * 1000)
                figures.sent += 1
                if answer.status_code != 200:
                    figures.problems.append(f"{answer.status_code} {answer.text[:80]}")
                else:
                    figures.received += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        figures.elapsed_s = time.perf_counter() - started
    return figures


# wrk cycles through pre-signed deliveries, one per line: "<Stripe-Signature>\t<body>".
WRK_SCRIPT = """
local lines = {}
local n = 0
init = function(args)
  for line in io.lines(args[1]) do lines[#lines + 1] = line end
end
request = function()
  n = n + 1
  local line = lines[((n - 1) % #lines) + 1]
  local signature, body = line:match("^([^\t]*)\t(.*)$")
  return wrk.format("POST", "/webhooks/billing",
    {["Content-Type"] = "application/json", ["Stripe-Signature"] = signature}, body)
end
"""


def wrk_accepted(name: str, url: str, seconds: float, connections: int) -> Figures:
    """``seconds`` of wrk (one thread) POSTing new signed deliveries to ``url``."""
    figures = Figures(name)
    with tempfile.TemporaryDirectory() as scratch:
        script, data = os.path.join(scratch, "post.lua"), os.path.join(scratch, "bodies")
        with open(script, "w") as out:
            out.write(WRK_SCRIPT)
        with open(data, "w") as out:
            for n in range(int(seconds * 4000)):  # more than a run can send: each is new
                body, headers = delivery(f"evt_w{n}_{secrets.token_hex(4)}")
                out.write(f"{headers['Stripe-Signature']}\t{body.decode()}\n")
        command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", script]
        run = subprocess.run([*command, url, "--", data], capture_output=True, text=True)
    said = run.stdout
    requests = _wrk_number(said, r"(\d+) requests in ([\d.]+)s")
    if requests is None:
        figures.problems.append(f"wrk said: {said[-300:]} {run.stderr[-300:]}")
        return figures
    figures.sent, figures.elapsed_s = int(requests[0]), float(requests[1])
    failed = _wrk_number(said, r"Non-2xx or 3xx responses: (\d+)")
    figures.received = figures.sent - (int(failed[0]) if failed else 0)
    if failed:
        figures.problems.append(f"{failed[0]} answers were not 2xx")
    for q, label in ((0.5, "50%"), (0.99, "99%")):
        found = _wrk_number(said, rf"{label}\s+([\d.]+)(us|ms|s)\b")
        if found:
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found[1]]
            figures.reported[q] = float(found[0]) * scale
    worst = _wrk_number(said, r"Latency\s+[\d.]+\w+\s+[\d.]+\w+\s+([\d.]+)(us|ms|s)")
    if worst:
        figures.reported[1.0] = float(worst[0]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[worst[1]]
    return figures


def _wrk_number(said: str, pattern: str) -> tuple[str, ...] | None:
    found = re.search(pattern, said)
    return None if found is None else found.groups()


@contextmanager
def floor() -> Iterator[str]:
    """``bench.webhook_floor`` served by uvicorn in a process of its own; its URL."""
    port = free_port()
    env = {**os.environ, "FLOOR_WEBHOOK_SECRET": WHSEC}
    command = [sys.executable, "-m", "uvicorn", "bench.webhook_floor:app", "--port", str(port),
               "--log-level", "warning", "--no-access-log"]  # fmt: skip
    proc = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.post(f"{url}/webhooks/billing", content=b"{}", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


async def settled(database_url: str, within_s: float = 300) -> float:
    """Waits until every stored event is processed, routed and relayed; how long it took."""
    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < within_s:
            left = await connection.fetchval(
                "SELECT (SELECT count(*) FROM inbound_events WHERE processed_at IS NULL "
                "OR routed_at IS NULL) + (SELECT count(*) FROM outbox WHERE published_at IS NULL)"
            )
            if left == 0:
                break
            await asyncio.sleep(0.1)
    finally:
        await connection.close()
    return time.perf_counter() - started


@contextmanager
def uncollected() -> Iterator[None]:
    """This process's garbage collector held off while it times a phase: its full
    collections (150-200 ms here, with a thousand WebSocket clients) would be counted as the
    gateway's latency. Reference counting frees nearly everything meanwhile; what is left is
    collected after."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


async def subscribed(url: str, token: str) -> ClientConnection:
    """A WebSocket with ``SUBSCRIPTION`` running on it (graphql-transport-ws)."""
    socket_ = await connect(
        url.replace("http://", "ws://") + "/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        max_queue=None,
        open_timeout=60,
    )
    await socket_.send(
        json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
    )
    acked = json.loads(await socket_.recv())
    if acked.get("type") != "connection_ack":
        raise RuntimeError(f"not acknowledged: {acked}")
    await socket_.send(
        json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}})
    )
    return socket_


async def _until(done: Callable[[], bool], within_s: float) -> None:
    """Until ``done()``, asked every 10 ms, or ``within_s`` (what is missing then is
    counted as not arrived)."""
    for _ in range(int(within_s / 0.01)):
        if done():
            return
        await asyncio.sleep(0.01)


async def _listen(socket_: ClientConnection, seen: dict[str, float]) -> None:
    async for raw in socket_:
        message = json.loads(raw)
        if message.get("type") == "next":
            event = message["payload"]["data"]["eventProcessed"]
            seen.setdefault(event["id"], time.perf_counter())


class Poster:
    """POSTs over a few kept-alive HTTP/1.1 connections: each request written as bytes, its
    answer read by its Content-Length. For the paced phase, where the client shares the two
    cores with the gateway it measures: httpx took 2.3-3.5 ms of CPU a delivery there, more
    than the gateway's whole work for it."""

    def __init__(self, url: str, connections: int) -> None:
        parsed = httpx.URL(url)
        self.host, self.port = parsed.host, parsed.port or 80
        self.connections = connections
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self._all: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> Poster:
        for _ in range(self.connections):
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self._all.append(writer)
            self._idle.put_nowait((reader, writer))
        return self

    async def __aexit__(self, *_: object) -> None:
        for writer in self._all:
            writer.close()

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """The answer's status and body."""
        reader, writer = await self._idle.get()
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{head}"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        answer = await reader.readuntil(b"\r\n\r\n")
        lines = answer.decode("latin-1").split("\r\n")
        fields = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
        content = await reader.readexactly(int(fields["content-length"]))
        if fields.get("connection") == "close":  # the server closes it: a new one
            writer.close()
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self._all.append(writer)
        self._idle.put_nowait((reader, writer))
        return int(lines[0].split(" ", 2)[1]), content


async def end_to_end(url: str, token: str, rate: float, seconds: float) -> Figures:
    figures = Figures(f"end to end at {rate:g}/s")
    socket_ = await subscribed(url, token)
    received: dict[str, float] = {}
    listener = asyncio.create_task(_listen(socket_, received))
    await asyncio.sleep(0.5)  # the subscription is registered on the server
    sent: dict[str, float] = {}
    total = int(rate * seconds)
    async with Poster(url, connections=16) as client:

        async def send(n: int) -> None:
            event_id = f"evt_e{n}_{secrets.token_hex(4)}"
            body, headers = delivery(event_id)
            sent[event_id] = time.perf_counter()
            status, answer = await client.post("/webhooks/billing", body, headers)
            if status != 200:
                figures.problems.append(f"{status} {answer[:80]!r}")

        started = time.perf_counter()
        sending = []
        for n in range(total):  # each started at its time, not all made up front
            await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
            sending.append(asyncio.create_task(send(n)))
        await asyncio.gather(*sending)
        figures.elapsed_s = time.perf_counter() - started
    # Only this phase's events count: the accepted phase's may still be told meanwhile.
    await _until(lambda: all(event_id in received for event_id in sent), 10)
    if listener.done() and listener.exception() is not None:
        figures.problems.append(f"the subscriber stopped: {listener.exception()!r}")
    listener.cancel()
    await socket_.close()
    figures.sent, figures.received = len(sent), len([e for e in sent if e in received])
    figures.problems += [f"no message for {e}" for e in sent if e not in received]
    figures.timings_ms = [(received[e] - sent[e]) * 1000 for e in sent if e in received]
    return figures


async def fan_out(url: str, token: str, subscribers: int, rounds: int = 5) -> Figures:
    figures = Figures(f"{subscribers} subscribers")
    sockets: list[ClientConnection] = []
    for batch in range(0, subscribers, 50):  # opened 50 at a time, as dashboards come
        sockets += await asyncio.gather(
            *(subscribed(url, token) for _ in range(min(50, subscribers - batch)))
        )
    seen: list[dict[str, float]] = [{} for _ in sockets]
    listeners = [asyncio.create_task(_listen(s, d)) for s, d in zip(sockets, seen, strict=True)]
    await asyncio.sleep(1.0)  # every subscription is registered on the server
    async with httpx.AsyncClient(timeout=60) as client:
        for n in range(rounds):
            event_id = f"evt_f{n}_{secrets.token_hex(4)}"
            body, headers = delivery(event_id)
            started = time.perf_counter()
            answer = await client.post(f"{url}/webhooks/billing", content=body, headers=headers)
            if answer.status_code != 200:
                figures.problems.append(f"{answer.status_code} {answer.text[:80]}")
            await _until(lambda e=event_id: all(e in d for d in seen), 10)
            figures.sent += len(sockets)
            arrived = [d[event_id] for d in seen if event_id in d]
            figures.received += len(arrived)
            figures.timings_ms += [(at - started) * 1000 for at in arrived]
    for listener in listeners:
        listener.cancel()
    await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
    return figures


def main(deliveries: int, concurrency: int, rate: float, seconds: float, subscribers: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, subscribers * 2 + 1024)), hard))
    console = Console()
    secret = secrets.token_hex(32)
    token = dev_tokens.mint(secret, Role.INTEGRATION_ADMIN)
    with (
        fleet.in_process() as boxes,
        fresh_database(PG_DATABASE) as url,
        gateway(url, boxes, secret) as server,
    ):
        served = server.url
        results = []
        if shutil.which("wrk"):
            with floor() as bare:
                results.append(wrk_accepted("floor: verify, 200", bare, seconds, concurrency))
        # The gateway's CPU for each delivery: its answer and everything it causes in the
        # gateway afterwards (telling, relaying, routing), up to when all is settled. Steadier
        # from run to run than deliveries per second on a machine that wrk, PostgreSQL and
        # Redis share.
        before = cpu_s(server.pid)
        if shutil.which("wrk"):
            accepting = wrk_accepted("accepted (wrk)", served, seconds, concurrency)
        else:
            with uncollected():
                accepting = asyncio.run(accepted(served, deliveries, concurrency))
        drained = asyncio.run(settled(url))
        used_s = cpu_s(server.pid) - before
        results.append(accepting)
        with uncollected():
            results.append(asyncio.run(end_to_end(served, token, rate, seconds)))
        with uncollected():
            results.append(asyncio.run(fan_out(served, token, subscribers)))
    table = Table(title="webhooks in, subscriptions out (PostgreSQL + Redis, one gateway process)")
    for column in ("phase", "sent", "arrived", "per s", "p50 ms", "p99 ms", "max ms", "problems"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    for f in results:
        per_s = f"{f.sent / f.elapsed_s:,.0f}" if f.elapsed_s else ""
        worst = f"{max(f.timings_ms):.1f}" if f.timings_ms else ""
        if 1.0 in f.reported:
            worst = f"{f.reported[1.0]:.1f}"
        table.add_row(
            f.name, str(f.sent), str(f.received), per_s, f"{f.pct(0.5):.1f}", f"{f.pct(0.99):.1f}",
            worst, str(len(f.problems)),
        )  # fmt: skip
    console.print(table)
    console.print(
        "accepted: webhook answers (the cache told to forget, then stored processed, before "
        "the 200; telling subscribers follows). floor: the same requests to a "
        "bare app that checks the signature and answers 200. end to end: send to "
        "the subscriber's message. Targets: >= 1,000 deliveries/s accepted; p99 <= 250 ms at "
        "200/s end to end; 1,000 subscribers held (all arrived)."
    )
    for f in results:
        for problem in f.problems[:3]:
            console.print(f"{f.name}: {problem}")
    if accepting.sent:
        console.print(
            f"gateway CPU per accepted delivery (answer, then telling, relaying and routing): "
            f"{used_s * 1000 / accepting.sent:.3f} ms"
        )
    if results[0].timings_ms:
        console.print(f"accepted mean {statistics.fmean(results[0].timings_ms):.1f} ms")
    console.print(
        f"after the accepted phase the gateway took {drained:.1f} s more to process, route "
        "and relay what it had accepted (end to end starts once it has)"
    )
    if results[0].name.startswith("floor") and results[0].elapsed_s and results[1].elapsed_s:
        floor_rate = results[0].sent / results[0].elapsed_s
        gateway_rate = results[1].sent / results[1].elapsed_s
        console.print(f"accepted / floor: {gateway_rate / floor_rate:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--subscribers", type=int, default=1000)
    args = parser.parse_args()
    main(args.deliveries, args.concurrency, args.rate, args.seconds, args.subscribers)
