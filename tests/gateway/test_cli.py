"""The `opsgraph` command on its own: start-up refusals are one line and no traceback, and
`opsgraph sandbox` prints the settings that point `opsgraph serve` at it."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors import codec
from connectors.sandbox.seed import generate
from gateway.data.registry import EXTERNAL
from tests.identity import identity
from tests.world import cli_env, free_port, gateway_process, migrated_database, opsgraph

WORLD = generate(customers=4, seed=5)


def test_serve_refuses_a_configured_system_without_a_secret() -> None:
    done = opsgraph("serve", OPSGRAPH_BILLING__BASE_URL="http://127.0.0.1:8101")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "opsgraph: OPSGRAPH_BILLING__SECRET: required when OPSGRAPH_BILLING__BASE_URL is set"
    ]
    assert done.stdout == ""


def test_serve_names_its_port_when_it_is_busy() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = opsgraph("serve", OPSGRAPH_PORT=str(port))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"opsgraph: port {port} (the gateway) is already in use; "
        "choose another with --port or OPSGRAPH_PORT"
    ]


@pytest.fixture(scope="module")
def sandbox_cli() -> Iterator[tuple[int, list[str]]]:
    """`opsgraph sandbox` running, seeded with WORLD: its first port and what it printed."""
    base = free_port(range(len(EXTERNAL)))
    with tempfile.TemporaryDirectory() as state, tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "sandbox", "--port", str(base),
             "--state-dir", state],
            stdout=out,
            env=cli_env(),
            text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            for n, system in enumerate(EXTERNAL):
                admin = f"http://127.0.0.1:{base + n}/_sandbox"
                while True:
                    try:
                        records = [codec.to_json(x) for x in WORLD.slice(system)]
                        httpx.post(f"{admin}/seed", json={"records": records}).raise_for_status()
                        break
                    except httpx.TransportError:
                        assert proc.poll() is None and time.monotonic() < deadline
                        time.sleep(0.1)
            out.seek(0)
            yield base, out.read().splitlines()
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_sandbox_prints_the_settings_that_point_serve_at_it(
    sandbox_cli: tuple[int, list[str]],
) -> None:
    base, printed = sandbox_cli
    assert printed == [
        "# For `opsgraph serve` in another shell:",
        f"export OPSGRAPH_BILLING__BASE_URL=http://127.0.0.1:{base}",
        "export OPSGRAPH_BILLING__SECRET=sandbox-secret",
        "export OPSGRAPH_BILLING__WEBHOOK_SECRET=whsec_sandbox",
        f"export OPSGRAPH_ERP__BASE_URL=http://127.0.0.1:{base + 1}",
        "export OPSGRAPH_ERP__SECRET=sandbox-secret",
        "export OPSGRAPH_ERP__WEBHOOK_SECRET=whsec_sandbox",
        f"export OPSGRAPH_CRM__BASE_URL=http://127.0.0.1:{base + 2}",
        "export OPSGRAPH_CRM__SECRET=sandbox-secret",
        "export OPSGRAPH_CRM__WEBHOOK_SECRET=whsec_sandbox",
        f"export OPSGRAPH_SUPPORT__BASE_URL=http://127.0.0.1:{base + 3}",
        "export OPSGRAPH_SUPPORT__SECRET=sandbox-secret",
        "export OPSGRAPH_SUPPORT__WEBHOOK_SECRET=whsec_sandbox",
    ]


def test_a_wrong_secret_is_upstream_auth_on_that_systems_fields(
    sandbox_cli: tuple[int, list[str]], tmp_path: Path
) -> None:
    _, printed = sandbox_cli
    exported = dict(
        line.removeprefix("export ").split("=", 1) for line in printed if line.startswith("export")
    )
    env = cli_env(
        **{**exported, "OPSGRAPH_ERP__SECRET": "not-the-sandbox-secret"},
        OPSGRAPH_DATABASE_URL=migrated_database(tmp_path / "opsgraph.db", WORLD),
        **identity().variables(),
    )
    query = """query($id: ID!) { customer(id: $id) {
      name account { name } balance { receivable { amount } } subscriptions { id }
    } }"""
    customer = WORLD.customers[0]
    with gateway_process(env) as (url, _):
        body = httpx.post(
            f"{url}/graphql",
            json={"query": query, "variables": {"id": customer.id}},
            headers=identity().headers(),
            timeout=30,
        ).json()
    data = body["data"]["customer"]
    assert data["balance"] is None
    assert data["account"]["name"] == customer.name
    assert data["subscriptions"] != []
    assert [(e["path"], e["extensions"]) for e in body["errors"]] == [
        (["customer", "balance"], {"code": "UPSTREAM_AUTH", "system": "erp"})
    ]
