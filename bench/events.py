"""Events benchmark: what signed webhooks cost a gateway on PostgreSQL and Redis, and how fast
what they cause reaches GraphQL subscribers over WebSocket.

    .venv/bin/python -m bench.events [--deliveries 2000] [--concurrency 32] [--rate 200]
        [--seconds 5] [--subscribers 1000]

The four sandboxes run in a process of their own; the gateway (``opsgraph serve``) in
another, on a fresh PostgreSQL database ``opsgraph_bench_events`` (dropped afterwards) and
the local Redis; this process is the vendors and the subscribers. Three phases:

1. accepted: ``--deliveries`` signed Stripe ``invoice.paid`` events, each new, POSTed to
   ``/webhooks/billing`` from ``--concurrency`` clients at once: deliveries per second, p50
   and p99 of the answer (stored in the inbox and the outbox, processed, before the 200);
2. end to end: one subscriber of ``eventProcessed(type: "billing.invoice")`` while
   deliveries are sent at ``--rate`` per second for ``--seconds``: from a delivery's send to
   its message at the subscriber, p50 and p99, and how many arrived;
3. fan-out: ``--subscribers`` WebSocket connections, each with the same subscription, held
   at once; five deliveries, one at a time: from each send to its message at every
   subscriber, p50, p99 and max over all of them, and how many arrived.

Targets (the events issue): >= 1,000 deliveries/s accepted, p99 <= 250 ms at 200/s end to
end, 1,000 subscribers held. Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
from rich.console import Console
from rich.table import Table
from websockets.asyncio.client import ClientConnection, connect

from bench.postgres import fresh_database
from bench.refusals import free_port
from connectors.sandbox import fleet
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

    def pct(self, q: float) -> float:
        if not self.timings_ms:
            return float("nan")
        ordered = sorted(self.timings_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextmanager
def gateway(database_url: str, boxes: fleet.Fleet, secret: str) -> Iterator[str]:
    """``opsgraph serve`` in a process of its own; its URL once ``/readyz`` answers."""
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
    with tempfile.TemporaryFile() as log:
        command = [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)]
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"the gateway did not start:\n{log.read().decode()}")
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def delivery(event_id: str) -> tuple[bytes, dict[str, str]]:
    event = {
        "id": event_id,
        "object": "event",
        "type": "invoice.paid",
        "created": int(time.time()),
        "data": {"object": {"id": f"in_{event_id}", "object": "invoice", "customer": "cus_x"}},
    }
    body = json.dumps(event).encode()
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


async def end_to_end(url: str, token: str, rate: float, seconds: float) -> Figures:
    figures = Figures(f"end to end at {rate:g}/s")
    socket_ = await subscribed(url, token)
    received: dict[str, float] = {}
    listener = asyncio.create_task(_listen(socket_, received))
    await asyncio.sleep(0.5)  # the subscription is registered on the server
    sent: dict[str, float] = {}
    total = int(rate * seconds)
    async with httpx.AsyncClient(timeout=60) as client:
        started = time.perf_counter()

        async def send(n: int) -> None:
            await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
            event_id = f"evt_e{n}_{secrets.token_hex(4)}"
            body, headers = delivery(event_id)
            sent[event_id] = time.perf_counter()
            answer = await client.post(f"{url}/webhooks/billing", content=body, headers=headers)
            if answer.status_code != 200:
                figures.problems.append(f"{answer.status_code} {answer.text[:80]}")

        await asyncio.gather(*(send(n) for n in range(total)))
        figures.elapsed_s = time.perf_counter() - started
    await _until(lambda: len(received) >= len(sent), 10)
    listener.cancel()
    await socket_.close()
    figures.sent, figures.received = len(sent), len([e for e in sent if e in received])
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
        gateway(url, boxes, secret) as served,
    ):
        results = [
            asyncio.run(accepted(served, deliveries, concurrency)),
            asyncio.run(end_to_end(served, token, rate, seconds)),
            asyncio.run(fan_out(served, token, subscribers)),
        ]
    table = Table(title="webhooks in, subscriptions out (PostgreSQL + Redis, one gateway process)")
    for column in ("phase", "sent", "arrived", "per s", "p50 ms", "p99 ms", "max ms", "problems"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    for f in results:
        per_s = f"{f.sent / f.elapsed_s:,.0f}" if f.elapsed_s else ""
        worst = f"{max(f.timings_ms):.1f}" if f.timings_ms else ""
        table.add_row(
            f.name, str(f.sent), str(f.received), per_s, f"{f.pct(0.5):.1f}", f"{f.pct(0.99):.1f}",
            worst, str(len(f.problems)),
        )  # fmt: skip
    console.print(table)
    console.print(
        "accepted: webhook answers (stored and processed before the 200). end to end: send to "
        "the subscriber's message. Targets: >= 1,000 deliveries/s accepted; p99 <= 250 ms at "
        "200/s end to end; 1,000 subscribers held (all arrived)."
    )
    for f in results:
        for problem in f.problems[:3]:
            console.print(f"{f.name}: {problem}")
    if results[0].timings_ms:
        console.print(f"accepted mean {statistics.fmean(results[0].timings_ms):.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--subscribers", type=int, default=1000)
    args = parser.parse_args()
    main(args.deliveries, args.concurrency, args.rate, args.seconds, args.subscribers)
