"""Serving ASGI apps on loopback: in the foreground, several in one process under one signal
handler (``opsgraph sandbox``, ``opsgraph serve``, ``make demo``), or in a background thread
(tests, benchmarks)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import signal
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import uvicorn
import uvloop
from starlette.types import ASGIApp

HOST = "127.0.0.1"
Lifespan = Literal["auto", "on", "off"]
log = logging.getLogger("uvicorn.error")  # uvicorn's own: shown at the server's log level


class PortUnavailable(OSError):
    """A port cannot be listened on: another process has it, or it is not ours to take."""

    def __init__(self, port: int, what: str, cause: OSError) -> None:
        if cause.errno == errno.EADDRINUSE:
            reason = "is already in use"
        else:
            reason = f"cannot be listened on: {cause.strerror or cause}"
        super().__init__(f"port {port} ({what}) {reason}")
        self.port = port


def _bind(port: int = 0, host: str = HOST) -> socket.socket:
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on accepted sockets whose proto is
    # TCP; without it each response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def listen(ports: Mapping[int, str], host: str = HOST) -> list[socket.socket]:
    """A listening socket on each port (given with what it is for: "the gateway"), or
    ``PortUnavailable`` naming the first that cannot be had, and none kept. Taking every
    port first is how a caller refuses to start before it has changed any state."""
    sockets: list[socket.socket] = []
    for port, what in ports.items():
        try:
            sockets.append(_bind(port, host))
        except OSError as exc:
            for sock in sockets:
                sock.close()
            raise PortUnavailable(port, what, exc) from None
    return sockets


class Server(uvicorn.Server):
    """A uvicorn server on a socket of its own that leaves signals to ``serve_together``.
    uvicorn's handler is per server and raises the signal again once its server stops: with
    several in one loop they stop one after another, each after the next one's drain, and
    the process then dies of the signal (SIGTERM: exit status -15) instead of exiting."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket) -> None:
        super().__init__(config)
        self.sock = sock

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # uvicorn says where it listens only for sockets it opened itself.
        host, port = self.sock.getsockname()[:2]
        log.info("Serving on http://%s:%d (Ctrl-C to stop)", host, port)


def server(
    app: ASGIApp,
    sock: socket.socket,
    *,
    lifespan: Lifespan = "off",
    grace_s: float = 1,
    log_level: str = "warning",
    access_log: bool = False,
) -> Server:
    """A server for ``app`` on ``sock``; on exit, requests in flight get ``grace_s`` (whole
    seconds, rounded up: uvicorn's unit) before they are cancelled."""
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        app,
        host=host,  # what uvicorn logs; it serves ``sock``
        port=port,
        log_level=log_level,
        lifespan=lifespan,
        access_log=access_log,
        timeout_graceful_shutdown=math.ceil(grace_s),
    )
    return Server(config, sock)


@dataclass
class Running:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve_in_thread(app: ASGIApp, port: int = 0, lifespan: Lifespan = "off") -> Running:
    """Serve ``app`` on a loopback port from a daemon thread; returns once it accepts.
    ``lifespan="on"`` for apps that build their services at start-up (the gateway)."""
    running = server(app, _bind(port), lifespan=lifespan)
    thread = threading.Thread(
        target=lambda: asyncio.run(running.serve(sockets=[running.sock])), daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("sandbox server did not start")
        time.sleep(0.01)
    return Running(f"http://{HOST}:{running.sock.getsockname()[1]}", running, thread)


async def serve_together(servers: Sequence[Server]) -> None:
    """Serve until SIGINT or SIGTERM, or until one server stops on its own, then tell every
    server to exit: each drains its requests in flight for its own grace."""
    loop = asyncio.get_running_loop()

    def stop() -> None:
        # A second signal changes nothing: the drain is already bounded by the grace, and
        # uvicorn's forced exit skips the app's shutdown (its lifespan dies with a traceback).
        for s in servers:
            s.should_exit = True

    handled = (signal.SIGINT, signal.SIGTERM)
    for sig in handled:
        loop.add_signal_handler(sig, stop)
    try:
        tasks = [asyncio.create_task(s.serve(sockets=[s.sock])) for s in servers]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for s in servers:
            s.should_exit = True
        await asyncio.gather(*tasks)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


def run_together(servers: Sequence[Server]) -> None:
    """``serve_together`` on a uvloop event loop, as uvicorn would pick for a single app.
    An app that fails to start exits the process with uvicorn's status 3."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve_together(servers))
