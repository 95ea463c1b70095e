"""Fault injection, in front of every sandbox.

``SandboxMiddleware`` wraps a sandbox app. Requests under ``/_sandbox/`` go to the admin
routes (``admin``): never faulted, never counted. Every other request is counted per
``METHOD path`` and may be delayed, failed, rate limited, hung or dropped according to the
current ``Faults``; a failure is phrased as the vendor phrases it (``fault``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from connectors.sandbox import admin
from connectors.sandbox.errors import VendorError
from connectors.sandbox.types import Bulk, Seeder
from connectors.sandbox.webhooks import Webhooks


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


Fault = Callable[[int, str], VendorError]  # (status, what failed) -> the vendor's error


class SandboxMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        seeder: Seeder,
        fault: Fault,
        webhooks: Webhooks | None = None,
        bulk: Bulk | None = None,
    ) -> None:
        self.app = app
        self.seeder = seeder
        self.fault = fault
        self.webhooks = webhooks  # what it delivers events through, if it does
        self.bulk = bulk  # what makes its side of the reconciliation benchmark, if it has one
        self.faults = Faults()
        self.requests: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self._random = random.Random()
        self._admin = admin.app(self)

    def set_faults(self, fields: dict[str, Any]) -> None:
        self.faults = Faults(**fields)
        self._random = random.Random(self.faults.seed)

    def stats(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "total": sum(self.requests.values()),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
        }

    def reset_stats(self) -> None:
        self.requests.clear()
        self.max_in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(admin.PREFIX):
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
            failure = self.fault(429, "rate limited (fault injection)")
            failure.headers["Retry-After"] = str(f.retry_after_s)
        elif f.error_next > 0:
            f.error_next -= 1
            failure = self.fault(f.error_status, "injected failure")
        elif f.error_rate and self._random.random() < f.error_rate:
            failure = self.fault(f.error_status, "injected failure")
        else:
            await self.app(scope, receive, send)
            return
        await failure.response()(scope, receive, send)


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
