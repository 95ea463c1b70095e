"""Browsers do not apply CORS to WebSocket handshakes: a page on any origin may open a
socket to the gateway (cross-site WebSocket hijacking). A handshake whose ``Origin`` is
neither the gateway's own nor one of ``http.cors_origins`` is refused before it is
accepted (closed with ``ORIGIN_NOT_ALLOWED``, which the server answers with 403). A client
that is not a browser sends no ``Origin`` and passes."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.http.websocket_origin import (
    is_same_origin,
    normalize_allowed_origins,
    normalize_origin,
)

from connectors.errors import GatewayError
from gateway.http.refusal import refuse


class OriginNotAllowed(GatewayError):
    code = "ORIGIN_NOT_ALLOWED"


class WebSocketOrigins:
    def __init__(self, app: ASGIApp, allowed_origins: Iterable[str]) -> None:
        self.app = app
        self.allowed = normalize_allowed_origins(list(allowed_origins))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and not self._allows(Headers(scope=scope)):
            error = OriginNotAllowed("WebSocket connections from this origin are not allowed.")
            await refuse(scope, receive, send, error, 403)
            return
        await self.app(scope, receive, send)

    def _allows(self, headers: Headers) -> bool:
        origin = headers.get("origin")
        if origin is None or is_same_origin(origin, headers.get("host")):
            return True
        return "*" in self.allowed or normalize_origin(origin) in self.allowed
