"""Serving sandbox apps on loopback: in the foreground (``opsgraph sandbox``, ``make demo``)
or in a background thread (tests, benchmarks)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

HOST = "127.0.0.1"
Lifespan = Literal["auto", "on", "off"]


def _bind(port: int = 0, host: str = HOST) -> socket.socket:
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on accepted sockets whose proto is
    # TCP; without it each response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def _server(app: ASGIApp, lifespan: Lifespan = "off") -> uvicorn.Server:
    config = uvicorn.Config(
        app, log_level="warning", lifespan=lifespan, access_log=False, timeout_graceful_shutdown=1
    )
    return uvicorn.Server(config)


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
    sock = _bind(port)
    server = _server(app, lifespan)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("sandbox server did not start")
        time.sleep(0.01)
    return Running(f"http://{HOST}:{sock.getsockname()[1]}", server, thread)


async def serve_forever(apps: Sequence[tuple[ASGIApp, int]], host: str = HOST) -> None:
    """Serve several apps, each on its own fixed port, until interrupted."""
    servers = [(_server(app), _bind(port, host)) for app, port in apps]
    await asyncio.gather(*(s.serve(sockets=[sock]) for s, sock in servers))
