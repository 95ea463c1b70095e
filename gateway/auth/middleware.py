"""Authentication, before the GraphQL stage: every request to a protected path names its
principal or is answered 401 (a GraphQL-shaped error, ``UNAUTHENTICATED``), and the refusal
is written to the audit log. Liveness and readiness stay open; webhooks carry their
systems' signatures instead.

A principal is a person with a bearer JWT (``Authorization: Bearer eyJ...``) or a service
with an opsgraph API key (``Authorization: Bearer og_...`` or ``X-API-Key: og_...``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import request_scope
from gateway.auth.keys import PREFIX
from gateway.auth.principal import Principal
from gateway.data.audit import Operation, describe
from gateway.errors import Unauthenticated

log = logging.getLogger("opsgraph.auth")

Authenticate = Callable[[Headers], Awaitable[Principal]]
PROTECTED = ("/graphql",)
# A refused request's body is read this far to name its operation in the audit log.
AUDITED_BODY_BYTES = 64 * 1024


class Verifier(Protocol):
    async def principal(self, token: str) -> Principal: ...


class Authenticator:
    """A request's credential -> its principal: an API key checked by ``keys``, any other
    bearer token verified by ``tokens``."""

    def __init__(self, tokens: Verifier, keys: Verifier) -> None:
        self._tokens = tokens
        self._keys = keys

    async def __call__(self, headers: Headers) -> Principal:
        credential = _credential(headers)
        verifier = self._keys if credential.startswith(PREFIX) else self._tokens
        return await verifier.principal(credential)


def _credential(headers: Headers) -> str:
    key = headers.get("x-api-key", "").strip()
    if key and "authorization" in headers:
        raise Unauthenticated("send one credential: Authorization or X-API-Key, not both")
    if key:
        if not key.startswith(PREFIX):
            raise Unauthenticated(f"X-API-Key takes an opsgraph API key ({PREFIX}...)")
        return key
    scheme, _, credential = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthenticated("a bearer token is required")
    return credential.strip()


class AuthMiddleware:
    def __init__(self, app: ASGIApp, protected: tuple[str, ...] = PROTECTED) -> None:
        self.app = app
        self.protected = protected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.protected):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        services = scope["app"].state.services
        authenticate: Authenticate = services.authenticate
        try:
            principal = await authenticate(headers)
        except Unauthenticated as exc:
            log.info("unauthenticated %s %s: %s", scope["method"], scope["path"], exc.message)
            attempted = await _attempted(scope, receive)
            services.audit.denied(None, attempted, exc.code, reason=exc.message)
            presented = "authorization" in headers or "x-api-key" in headers
            await _refuse(send, exc, presented=presented)
            return
        request = request_scope.current()
        if request is not None:
            request.principal = principal
        await self.app(scope, receive, send)


async def _attempted(scope: Scope, receive: Receive) -> Operation:
    """The operation a refused request asked for, from its query string or its JSON body
    (read up to ``AUDITED_BODY_BYTES``: the request goes no further, so reading it here
    takes it from nobody)."""
    fields: object = None
    if scope["method"] == "GET":
        params = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        fields = {name: values[0] for name, values in params.items()}
        if isinstance(variables := fields.get("variables"), str):
            fields["variables"] = _json(variables.encode())
    else:
        body, more = b"", True
        while more and len(body) <= AUDITED_BODY_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if len(body) <= AUDITED_BODY_BYTES:
            fields = _json(body)
    if not isinstance(fields, dict):
        return Operation(None, None)
    return describe(fields.get("query"), fields.get("operationName"), fields.get("variables"))


def _json(data: bytes) -> object:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


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
