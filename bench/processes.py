"""Processes the benchmarks start: a server in a process of its own, until it answers; and
what a process and its descendants use (CPU, memory), from ``/proc``."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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


TICK = os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found += _tree(int(child))
    return found


def _each(pid: int, name: str) -> list[str]:
    """``/proc/<p>/<name>`` of ``pid`` and each of its descendants still there."""
    found = []
    for each in _tree(pid):
        try:
            found.append(Path(f"/proc/{each}/{name}").read_text())
        except OSError:
            continue
    return found


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its descendants (``/proc/<pid>/stat``)."""
    ticks = 0
    for stat in _each(pid, "stat"):
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)"; utime and stime are 14, 15
        ticks += int(fields[11]) + int(fields[12])
    return ticks / TICK


def rss_mb(pid: int) -> float:
    total_kb = 0
    for status in _each(pid, "status"):
        found = re.search(r"VmRSS:\s+(\d+) kB", status)
        total_kb += int(found.group(1)) if found else 0
    return total_kb / 1024
