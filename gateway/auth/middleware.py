"""Authentication, before the GraphQL stage: every request to a protected path names its
principal or is answered 401 (a GraphQL-shaped error, ``UNAUTHENTICATED``). Liveness and
readiness stay open; webhooks carry their systems' signatures instead."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import request_scope
from gateway.auth.principal import Principal
from gateway.errors import Unauthenticated

log = logging.getLogger("opsgraph.auth")

Authenticate = Callable[[Headers], Awaitable[Principal]]
PROTECTED = ("/graphql",)


class Verifier(Protocol):
    async def principal(self, token: str) -> Principal: ...


class Authenticator:
    """A request's credential -> its principal: a bearer JWT verified by ``tokens``."""

    def __init__(self, tokens: Verifier) -> None:
        self._tokens = tokens

    async def __call__(self, headers: Headers) -> Principal:
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise Unauthenticated("a bearer token is required")
        return await self._tokens.principal(credential.strip())


class AuthMiddleware:
    def __init__(self, app: ASGIApp, protected: tuple[str, ...] = PROTECTED) -> None:
        self.app = app
        self.protected = protected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.protected):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        authenticate: Authenticate = scope["app"].state.services.authenticate
        try:
            principal = await authenticate(headers)
        except Unauthenticated as exc:
            log.info("unauthenticated %s %s: %s", scope["method"], scope["path"], exc.message)
            await _refuse(send, exc, presented="authorization" in headers)
            return
        request = request_scope.current()
        if request is not None:
            request.principal = principal
        await self.app(scope, receive, send)


async def _refuse(send: Send, error: Unauthenticated, *, presented: bool) -> None:
    body = json.dumps(
        {"errors": [{"message": error.message, "extensions": {"code": error.code}}]}
    ).encode()
    challenge = 'Bearer realm="opsgraph"' + (', error="invalid_token"' if presented else "")
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", challenge.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
