"""Every HTML page the gateway serves (GraphiQL in development, the dashboards) carries a
Content-Security-Policy that forbids framing it (``frame-ancestors 'none'``, and
``X-Frame-Options`` for older browsers), ``X-Content-Type-Options: nosniff`` and
``Referrer-Policy: no-referrer``. JSON answers need none of them."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Pages load only what the gateway serves itself.
STRICT_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# GraphiQL (development only) and the pages' chart styles set styles inline; scripts still
# come from the gateway alone.
GRAPHIQL_CSP = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp, csp: str = STRICT_CSP) -> None:
        self.app = app
        self.headers = {
            "Content-Security-Policy": csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if headers.get("content-type", "").startswith("text/html"):
                    for name, value in self.headers.items():
                        headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, sending)
