"""The ``Host`` a request names must be one the gateway serves (``http.allowed_hosts``):
a page on ``attacker.example`` whose name resolves to the gateway's address (DNS rebinding)
is refused before anything reads its request. Starlette's ``TrustedHostMiddleware``
decides; this answers its refusal as a GraphQL-shaped 400 ``HOST_NOT_ALLOWED``."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.errors import GatewayError
from gateway.http.refusal import refuse
from gateway.logs import quoted

VERDICT = "opsgraph.host_allowed"


class HostNotAllowed(GatewayError):
    code = "HOST_NOT_ALLOWED"


class AllowedHosts:
    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self._trusted = TrustedHostMiddleware(
            _allowed, allowed_hosts=list(allowed_hosts), www_redirect=False
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            verdict: list[bool] = []
            await self._trusted({**scope, VERDICT: verdict}, _nothing, _discard)
            if not verdict:
                host = Headers(scope=scope).get("host", "")
                error = HostNotAllowed(f"The host {quoted(host)} is not served here.")
                await refuse(scope, receive, send, error, 400)
                return
        await self.app(scope, receive, send)


async def _allowed(scope: Scope, receive: Receive, send: Send) -> None:
    scope[VERDICT].append(True)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


async def _discard(message: Message) -> None:
    """Starlette's own (plain text) refusal."""
