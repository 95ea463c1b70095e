"""Fault injection and the ``/_sandbox`` admin routes every sandbox shares.

``SandboxMiddleware`` wraps a sandbox app. Requests under ``/_sandbox/`` are the operator's
(never faulted, never counted); every other request is counted per ``METHOD path`` and may
be delayed, failed, rate limited, hung or dropped according to the current ``Faults``.

Admin routes:
    GET  /_sandbox/faults          the current faults
    PUT  /_sandbox/faults          replace them (JSON body, fields of ``Faults``)
    GET  /_sandbox/stats           {"requests": {"GET /v1/customers": 3, ...}, "total": 3,
                                    "in_flight": 0, "max_in_flight": 1}
    POST /_sandbox/stats/reset     zero the counters
    POST /_sandbox/seed            {"records": [canonical JSON records]} (``connectors.codec``)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from connectors import codec
from connectors.models import Record


@dataclass
class Faults:
    latency_ms: int = 0  # added to every request
    jitter_ms: int = 0  # plus a uniform random 0..jitter_ms
    error_rate: float = 0.0  # probability of answering ``error_status``
    error_next: int = 0  # the next N requests answer ``error_status``
    error_status: int = 500
    rate_limit_next: int = 0  # the next N requests get 429
    retry_after_s: int = 1  # the Retry-After those 429s carry
    hang_next: int = 0  # the next N requests never answer (until the client gives up)
    hang_s: float = 300.0
    drop_next: int = 0  # the next N requests have their connection cut mid-response
    seed: int | None = None  # makes error_rate and jitter repeatable


ErrorBody = Callable[[int, str], tuple[bytes, str]]
Seeder = Callable[[list[Record]], None]


def json_error(status: int, message: str) -> tuple[bytes, str]:
    return json.dumps({"error": message}).encode(), "application/json"


class SandboxMiddleware:
    def __init__(self, app: ASGIApp, *, seeder: Seeder, error_body: ErrorBody = json_error) -> None:
        self.app = app
        self.seeder = seeder
        self.error_body = error_body
        self.faults = Faults()
        self.requests: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self._random = random.Random()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/_sandbox/"):
            await self._admin(scope, receive, send)
            return
        self.requests[f"{scope['method']} {path}"] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self._inject(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _inject(self, scope: Scope, receive: Receive, send: Send) -> None:
        f = self.faults
        delay = f.latency_ms + (self._random.uniform(0, f.jitter_ms) if f.jitter_ms else 0)
        if delay:
            await asyncio.sleep(delay / 1000)
        if f.hang_next > 0:
            f.hang_next -= 1
            # Never answer; give up when the client hangs up (or after hang_s).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_until_disconnect(receive), f.hang_s)
            return
        if f.drop_next > 0:
            f.drop_next -= 1
            # Promise a body, send part of it, then fail: the server closes the connection
            # and the client sees a dropped connection mid-response.
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-length", b"1000"),
                        (b"content-type", b"application/json"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b'{"partial":', "more_body": True})
            raise ConnectionAbortedError("sandbox dropped the connection (fault injection)")
        if f.rate_limit_next > 0:
            f.rate_limit_next -= 1
            await self._error(
                send,
                429,
                "rate limited (fault injection)",
                [(b"retry-after", str(f.retry_after_s).encode())],
            )
            return
        if f.error_next > 0:
            f.error_next -= 1
            await self._error(send, f.error_status, "injected failure")
            return
        if f.error_rate and self._random.random() < f.error_rate:
            await self._error(send, f.error_status, "injected failure")
            return
        await self.app(scope, receive, send)

    async def _error(
        self, send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        body, media_type = self.error_body(status, message)
        headers = [
            (b"content-type", media_type.encode()),
            (b"content-length", str(len(body)).encode()),
            *(extra or []),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _admin(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = (scope["method"], scope["path"])
        body = await _read_body(receive)
        status, answer = 200, None
        if route == ("GET", "/_sandbox/faults"):
            answer = dataclasses.asdict(self.faults)
        elif route == ("PUT", "/_sandbox/faults"):
            try:
                self.faults = Faults(**json.loads(body or b"{}"))
            except (TypeError, ValueError) as exc:
                status, answer = 400, {"error": str(exc)}
            else:
                self._random = random.Random(self.faults.seed)
                answer = dataclasses.asdict(self.faults)
        elif route == ("GET", "/_sandbox/stats"):
            answer = {
                "requests": dict(self.requests),
                "total": sum(self.requests.values()),
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
            }
        elif route == ("POST", "/_sandbox/stats/reset"):
            self.requests.clear()
            self.max_in_flight = 0
            answer = {"requests": {}, "total": 0, "in_flight": self.in_flight, "max_in_flight": 0}
        elif route == ("POST", "/_sandbox/seed"):
            try:
                records = [codec.from_json(r) for r in json.loads(body)["records"]]
                self.seeder(records)
            except (KeyError, TypeError, ValueError) as exc:
                status, answer = 400, {"error": f"bad seed: {exc}"}
            else:
                answer = {"seeded": len(records)}
        else:
            status, answer = 404, {"error": "no such admin route"}
        payload = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message: Any = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)
