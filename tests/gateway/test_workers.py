"""``opsgraph serve --workers N``: N processes serve one port. A worker killed with SIGKILL
is started again while the others answer; SIGTERM stops them all."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx

from tests.identity import identity
from tests.world import (
    cli_env,
    gateway_process,
    migrated_database,
    sandbox_variables,
    sandboxes,
    until,
)

QUERY = "query($id: ID!) { customer(id: $id) { id name } }"


def workers(supervisor: int) -> set[int]:
    """The workers ``supervisor`` started, alive: its children but multiprocessing's
    resource tracker."""
    found: set[int] = set()
    for task in Path(f"/proc/{supervisor}/task").glob("*"):
        try:
            found.update(int(pid) for pid in (task / "children").read_text().split())
        except OSError:
            continue
    return {pid for pid in found if _alive(pid) and b"spawn_main" in _cmdline(pid)}


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_share_the_port_and_one_killed_is_started_again(tmp_path: Path) -> None:
    with sandboxes() as boxes:
        env = cli_env(
            OPSGRAPH_DATABASE_URL=migrated_database(tmp_path / "opsgraph.db", boxes.world),
            OPSGRAPH_SHUTDOWN_GRACE_S="1",
            **sandbox_variables(boxes),
            **identity().variables(),
        )
        customer = boxes.world.customers[0]
        with gateway_process(env, "--workers", "2") as (url, supervisor):

            def ask() -> httpx.Response:
                body = {"query": QUERY, "variables": {"id": customer.id}}
                return httpx.post(f"{url}/graphql", json=body, headers=identity().headers())

            assert until(lambda: len(workers(supervisor.pid)) == 2)
            first = workers(supervisor.pid)
            answers = [ask() for _ in range(10)]
            assert [a.json() for a in answers] == [
                {"data": {"customer": {"id": customer.id, "name": customer.name}}}
            ] * 10
            killed = min(first)
            os.kill(killed, signal.SIGKILL)
            # The other worker answers meanwhile (each request a new connection).
            assert {ask().status_code for _ in range(10)} == {200}
            assert until(lambda: len(workers(supervisor.pid) - first) == 1)
            assert killed not in workers(supervisor.pid)
            assert until(lambda: httpx.get(f"{url}/readyz").status_code == 200)
            supervisor.send_signal(signal.SIGTERM)
            assert supervisor.wait(timeout=30) == 0
            assert workers(supervisor.pid) == set()
