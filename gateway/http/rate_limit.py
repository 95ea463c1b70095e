"""Requests per principal (``limits.rate_limit``), counted once authentication has named the
principal and before the request goes further: a principal over its rate is answered 429
with ``Retry-After`` and ``RATE_LIMITED``. Anonymous requests never get here (401)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import request_scope
from gateway.auth.middleware import PROTECTED
from gateway.http.refusal import refuse
from gateway.limits.errors import RateLimited
from gateway.limits.windows import Windows, holder, rates


class RateLimit:
    def __init__(self, app: ASGIApp, windows: Windows, rate: str) -> None:
        self.app = app
        self.windows = windows
        self.rate = rate
        self.items = rates(rate)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = request_scope.current()
        principal = None if request is None else request.principal
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED) or not principal:
            await self.app(scope, receive, send)
            return
        wait = await self.windows.spend(self.items, holder(principal))
        if wait is None:
            await self.app(scope, receive, send)
            return
        refused = RateLimited(f"Too many requests: the limit is {self.rate}", retry_after=wait)
        await refuse(scope, receive, send, refused, 429, refused.headers())
