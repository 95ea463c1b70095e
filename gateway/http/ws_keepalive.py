"""Keep-alive on GraphQL WebSockets: the server pings every ``keep_alive_s``
(graphql-transport-ws ``ping``, which a client answers with ``pong``), so that proxies keep
an idle connection open, and a connection that sends nothing back for two intervals (its
peer is gone without closing) is closed with 4408, freeing its subscriptions.

Strawberry's handler answers a client's pings but sends none of its own; this subclass adds
them. The interval is the view's ``ws_keep_alive_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message

PING_TIMEOUT = 4408


class KeepAliveHandler(BaseGraphQLTransportWSHandler[Any, Any]):
    _heard: float = 0.0

    async def handle(self) -> None:
        interval: float = getattr(self.view, "ws_keep_alive_s", 0.0)
        self._heard = asyncio.get_running_loop().time()
        pinging = asyncio.create_task(self._ping(interval)) if interval > 0 else None
        try:
            await super().handle()
        finally:
            if pinging is not None:
                pinging.cancel()
                with contextlib.suppress(BaseException):
                    await pinging

    async def handle_message(self, message: Message) -> None:
        self._heard = asyncio.get_running_loop().time()  # any message shows the peer is there
        await super().handle_message(message)

    async def _ping(self, interval: float) -> None:
        """Until the connection ends. Before ``connection_ack`` nothing is sent and nothing
        is timed (strawberry's init timeout governs that); a send to a socket that just
        closed ends it quietly."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                await asyncio.sleep(interval)
                if not self.connection_acknowledged:
                    continue
                if loop.time() - self._heard > 2 * interval:
                    await self.websocket.close(code=PING_TIMEOUT, reason="No pong within two pings")
                    return
                await self.send_message({"type": "ping"})
        except Exception:  # noqa: BLE001 - the socket went away under us
            return
