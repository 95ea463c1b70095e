"""Processes the benchmarks start: a server in a process of its own, until it answers."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    pid: int  # CPU and RSS are summed over it and every process under it (uvicorn's workers)


@contextmanager
def serving(name: str, command: list[str], env: dict[str, str], ready: str) -> Iterator[Server]:
    """``command`` in a process of its own, its output in a temporary file, until ``ready``
    (a URL) answers 200."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(ready, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"{name} did not start:\n{log.read().decode()[-3000:]}")
                time.sleep(0.1)
            yield Server(name, ready.rsplit("/", 1)[0], proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
