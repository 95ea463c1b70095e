"""How the HTTP stage refuses a request: ``{"errors": [{"message", "extensions": {"code"}}]}``
with a status (a WebSocket handshake is closed with the code as its reason instead)."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from connectors.errors import GatewayError

# Closing a WebSocket before accepting it refuses the handshake (the server answers 403).
POLICY_VIOLATION = 1008


async def refuse(
    scope: Scope,
    receive: Receive,
    send: Send,
    error: GatewayError,
    status: int,
    headers: Mapping[str, str] | None = None,
) -> None:
    if scope["type"] == "websocket":
        await receive()  # the handshake's websocket.connect
        await send({"type": "websocket.close", "code": POLICY_VIOLATION, "reason": error.code})
        return
    body = {"errors": [{"message": error.message, "extensions": {"code": error.code}}]}
    await JSONResponse(body, status_code=status, headers=headers)(scope, receive, send)
