"""Every request ends: the request scope, the outermost layer of the app.

For each HTTP request it

- opens the request's deadline (``connectors.deadline``), which every upstream call made
  for the request honours: attempts get no more than what is left, and the reads of a
  request stop waiting when it passes (the fields still waiting are then null with
  ``UPSTREAM_TIMEOUT``, or served stale);
- holds what the request collects on the way (warnings about stale data) and the work it
  started in tasks of its own (DataLoader batches), which is cancelled when the request
  ends, so nothing a request started outlives it;
- stops the request's upstream work when its client disconnects: the body is read up
  front, then, once the request has run ``WATCH_AFTER_S``, the connection is watched, and
  a disconnect cancels the work the request owns (its reads then answer at once, to
  nobody);
- as a last resort, if the request has not answered a second after its deadline (a bug:
  the deadline should have ended it), cancels it and answers 504 with a GraphQL error;
- when the server stops and its shutdown grace is over, answers what is still running 503
  with a GraphQL error (``SHUTTING_DOWN``) instead of the server's bare 500.

A request ``unbounded`` says is a stream (a subscription over Server-Sent Events or
multipart to ``/graphql``) has no deadline: it ends when its client goes, when the
subscription completes, or when the server stops (after its shutdown grace). Only
subscriptions stream (``gateway.graphql_view``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors import deadline
from gateway.auth.principal import Principal
from gateway.limits.errors import RequestTooLarge

# After the deadline, how long the request gets to finish answering before it is cut off.
BACKSTOP_S = 1.0
# How long a request runs before its connection is watched for a disconnect. Most answer
# sooner, and never pay for the watching task (its making and cancelling, and the garbage
# a cancelled task leaves for the collector, were half of this layer's CPU); a client
# that goes sooner costs at most this much more upstream work.
WATCH_AFTER_S = 0.05


class RequestScope:
    def __init__(self, deadline_s: float) -> None:
        self.deadline_s = deadline_s
        self.warnings: dict[str, dict[str, Any]] = {}
        # Mutations answered from their idempotency key's stored answer.
        self.replays: list[dict[str, Any]] = []
        # Who is asking; set by authentication (gateway.auth.middleware) before GraphQL runs.
        self.principal: Principal | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @functools.cached_property
    def id(self) -> str:
        """Names the request in the audit log (trace ids come with telemetry); made when
        first asked for: most requests write nothing to the audit log."""
        return uuid.uuid4().hex

    def warn(self, key: str, warning: dict[str, Any]) -> None:
        """A non-fatal note for ``extensions.warnings``; one per ``key``."""
        self.warnings.setdefault(key, warning)

    def own(self, task: asyncio.Task[Any]) -> None:
        """Work started for this request that must not outlive it."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()


_current: ContextVar[RequestScope | None] = ContextVar("opsgraph_request", default=None)


def current() -> RequestScope | None:
    """The scope of the request being served here; None outside a request."""
    return _current.get()


class RequestScopeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        deadline_s: float,
        max_body_bytes: int | None = None,
        unbounded: Callable[[Scope], bool] | None = None,
    ) -> None:
        self.app = app
        self.deadline_s = deadline_s
        self.max_body_bytes = max_body_bytes
        self.unbounded = unbounded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body: list[Message] = []
        most = self.max_body_bytes
        too_large = most is not None and _declared_size(scope) > most
        received = 0
        while not too_large and (not body or body[-1].get("more_body", False)):
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.append(message)
            received += len(message.get("body", b""))
            too_large = most is not None and received > most
        if too_large:
            # Refused before the rest is read, let alone parsed; the connection closes
            # rather than take in what is left of the body.
            refused = RequestTooLarge(f"The request body is larger than {most} bytes, the limit.")
            await _error(send, 413, refused.message, refused.code)
            return

        gone = asyncio.Event()
        started = False

        async def replay() -> Message:
            if body:
                return body.pop(0)
            await gone.wait()
            return {"type": "http.disconnect"}

        async def sending(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        request = RequestScope(self.deadline_s)
        streaming = self.unbounded is not None and self.unbounded(scope)
        loop = asyncio.get_running_loop()
        backstop = loop.time() + self.deadline_s + BACKSTOP_S
        # The app runs in this task, not in a task of its own (a task and two waits a
        # request were a tenth of a small request's CPU), under one timer: the backstop, a
        # second after the deadline (a stream has none until its client goes). It is set
        # when the connection begins to be watched: no request is cut off sooner.
        cutoff = asyncio.timeout(None)
        running = True

        def client_gone(watcher: asyncio.Task[None]) -> None:
            if watcher.cancelled() or watcher.exception() is not None or not running:
                return
            # Stop the upstream work; what is left of the request then ends at once (its
            # reads answer "request ended") and its answer goes nowhere. A stream ends now.
            request.close()
            if streaming:
                cutoff.reschedule(loop.time() + BACKSTOP_S)

        watchers: list[asyncio.Task[None]] = []

        def watch() -> None:
            if not streaming:
                cutoff.reschedule(backstop)
            watcher = asyncio.ensure_future(_disconnected(receive, gone))
            watcher.add_done_callback(client_gone)
            watchers.append(watcher)

        watching = loop.call_later(WATCH_AFTER_S, watch)
        token = _current.set(request)
        try:
            with contextlib.nullcontext() if streaming else deadline.within(self.deadline_s):
                try:
                    async with cutoff:
                        await self.app(scope, replay, sending)
                finally:
                    # The timer has ended: nothing may reschedule it now.
                    running = False
                    watching.cancel()
        except TimeoutError:
            if not cutoff.expired():
                raise  # the app's own, not the backstop's
            # Cancelling a GraphQL execution midway leaves graphql-core's unawaited
            # coroutines behind; the deadline should have ended it long before.
            if not gone.is_set() and not started:
                late = f"the request did not finish within its {self.deadline_s:g}s deadline"
                await _error(send, 504, late, "UPSTREAM_TIMEOUT")
        except asyncio.CancelledError:
            # The server is stopping and its shutdown grace is over. Answer rather than let
            # the server log a traceback and send a bare 500; the client may retry elsewhere.
            if not gone.is_set() and not started:
                await _error(send, 503, "the gateway is shutting down", "SHUTTING_DOWN")
        finally:
            _current.reset(token)
            for watcher in watchers:
                watcher.cancel()
            request.close()


def _declared_size(scope: Scope) -> int:
    """The body's Content-Length, or 0 (chunked, or none)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


async def _disconnected(receive: Receive, gone: asyncio.Event) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()


async def _error(send: Send, status: int, message: str, code: str) -> None:
    body = json.dumps({"errors": [{"message": message, "extensions": {"code": code}}]}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if status in (413, 503):
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
