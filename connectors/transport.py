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
  extension) the moment a request is inside a connection, whose own clean-up handles
  cancellation; a caller cancelled before that does not cancel the task but marks the
  request abandoned, and the request aborts itself at its first trace event, inside the
  connection, where aborting is safe.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx


class RequestAbandoned(Exception):
    """The caller gave up on this request before it reached a connection."""


def timeout(seconds: float) -> httpx.Timeout:
    """Each phase gets ``seconds``; waiting for a free connection gets half, so that a
    queued call ends with ``PoolTimeout`` well before the attempt's own deadline."""
    return httpx.Timeout(seconds, pool=seconds / 2)


def transport(max_connections: int, verify: ssl.SSLContext | bool = True) -> CancelSafeTransport:
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    inner = httpx.AsyncHTTPTransport(limits=limits, verify=verify)
    return CancelSafeTransport(inner, max_connections)


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
            if state.abandoned:
                raise RequestAbandoned(event)
            state.connected = True
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
    __slots__ = ("abandoned", "connected")

    def __init__(self) -> None:
        self.connected = False
        self.abandoned = False


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
