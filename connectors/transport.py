"""The HTTP transport every connector sends through: httpx's own, made safe to cancel.

httpcore 1.0.9 (the latest release; encode/httpcore#1093, open) loses a pool slot for good
when a request that waits for a connection is cancelled, or hits its own pool timeout, at
the moment the pool hands it a new connection: the connection stays CONNECTING with no
owner, is never reaped, and once ``max_connections`` of them pile up every later call to
that system ends in ``PoolTimeout`` until the process restarts. Deadlines, disconnecting
clients and abandoned shared calls cancel requests all the time, so that window must
never open. No release or maintained fork usable from the ``stripe`` SDK fixes it; this
wrapper keeps requests out of the window instead:

- Requests never queue inside httpcore. A semaphore of the pool's size admits a request
  and is released only when its response is closed, so the pool always has a connection
  for the requests it holds and never waits. Waiting happens here, where cancelling is
  harmless, bounded by httpx's pool timeout (``PoolTimeout``, as httpx would raise).
- The request itself runs in a task of its own. httpcore reports (its ``trace``
  extension) the moment a request is inside an HTTP exchange (``http11.*``, ``http2.*``),
  whose own clean-up handles cancellation; a caller cancelled before that does not cancel
  the task but marks the request abandoned, and the request aborts itself at its next
  trace event where aborting is safe (``_abortable``). Not while it connects: between the
  TCP connect (``connection.*`` events) and the exchange there is one more window (the
  HTTP/1.1 connection's state lock) where a cancellation leaves a connected connection that
  never served a request in the pool, with no owner, for good.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

# The trace events of an HTTP exchange on a connection (httpcore's loggers' last names).
EXCHANGES = ("http11.", "http2.")


def _abortable(event: str) -> bool:
    """Whether an abandoned request may abort at ``event``: before the TCP connect (no socket
    yet), or as a step of the exchange starts (its clean-up closes the connection). Not as
    a step completes (raising there would drop what it made, a socket or a TLS stream, with
    nobody to close it), and not in that clean-up (``response_closed``), which must run
    for the connection to be freed."""
    if event == "connection.connect_tcp.started":
        return True
    return (
        event.startswith(EXCHANGES)
        and event.endswith(".started")
        and ".response_closed." not in event
    )


class RequestAbandoned(Exception):
    """The caller gave up on this request before it reached a connection."""


def timeout(seconds: float) -> httpx.Timeout:
    """Each phase gets ``seconds``; waiting for a free connection gets half, so that a
    queued call ends with ``PoolTimeout`` well before the attempt's own deadline."""
    return httpx.Timeout(seconds, pool=seconds / 2)


def transport(
    max_connections: int, verify: ssl.SSLContext | bool = True, *, traced: bool = False
) -> httpx.AsyncBaseTransport:
    """The cancel-safe transport; ``traced``, inside OpenTelemetry's, which makes a span of
    each request (its wait for a connection slot included) and sends the trace along in a
    ``traceparent`` header."""
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    inner = httpx.AsyncHTTPTransport(limits=limits, verify=verify)
    safe = CancelSafeTransport(inner, max_connections)
    if not traced:
        return safe
    # Only a traced connector loads the instrumentation.
    from opentelemetry.instrumentation.httpx import AsyncOpenTelemetryTransport

    return AsyncOpenTelemetryTransport(safe)


class CancelSafeTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, max_connections: int) -> None:
        self._inner = inner
        self._slots = asyncio.Semaphore(max_connections)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._admit(request)
        release = _Once(self._slots.release)
        state = _State()
        traced = request.extensions.get("trace")

        async def trace(event: str, info: dict[str, Any]) -> None:
            if state.abandoned and not state.aborted and _abortable(event):
                state.aborted = True
                raise RequestAbandoned(event)
            if event.startswith(EXCHANGES):
                state.connected = True  # in the exchange, whose clean-up is safe to cancel
            if traced is not None:
                await traced(event, info)

        request.extensions = {**request.extensions, "trace": trace}
        task = asyncio.ensure_future(self._inner.handle_async_request(request))
        try:
            response = await asyncio.shield(task)
        except asyncio.CancelledError:
            if state.connected:
                task.cancel()
            else:
                state.abandoned = True
            # The slot stays taken until the request has really ended.
            task.add_done_callback(lambda done: _settle(done, release))
            raise
        except BaseException:
            release()
            raise
        response.stream = _Releasing(response.stream, release)
        return response

    async def _admit(self, request: httpx.Request) -> None:
        wait: float | None = request.extensions.get("timeout", {}).get("pool")
        try:
            async with asyncio.timeout(wait):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout(
                f"no connection free within {wait:g}s", request=request
            ) from None

    async def aclose(self) -> None:
        await self._inner.aclose()


class _State:
    __slots__ = ("aborted", "abandoned", "connected")

    def __init__(self) -> None:
        self.connected = False
        self.abandoned = False
        self.aborted = False


class _Once:
    __slots__ = ("_call",)

    def __init__(self, call: Callable[[], None]) -> None:
        self._call: Callable[[], None] | None = call

    def __call__(self) -> None:
        call, self._call = self._call, None
        if call is not None:
            call()


class _Releasing(httpx.AsyncByteStream):
    """A response body that frees its connection slot when it is closed."""

    def __init__(self, inner: httpx.AsyncByteStream | httpx.SyncByteStream, release: _Once):
        assert isinstance(inner, httpx.AsyncByteStream)
        self._inner = inner
        self._release = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._release()


def _settle(task: asyncio.Future[httpx.Response], release: _Once) -> None:
    """An abandoned request has ended: close a response that arrived anyway (nobody will
    read it), mark a failure as seen, and free the slot."""
    if task.cancelled() or task.exception() is not None:
        release()
        return
    asyncio.ensure_future(_Releasing(task.result().stream, release).aclose())
