"""`make demo` end to end: the CLI starts four seeded sandboxes and the gateway, and the
gateway answers `systems` with four healthy connectors and a seeded customer; one SIGINT
stops all of it; a busy port stops it before it touches any state; OPSGRAPH_* settings
reach the demo's gateway."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from gateway.auth.scopes import Role
from gateway.demo import demo_settings
from tests.world import cli_env, free_port, wait_ready

SANDBOXES = (0, 101, 102, 103, 104)  # the gateway's port and its four sandboxes' offsets


def _command(state_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "gateway.cli", "demo", "--state-dir", str(state_dir),
            "--customers", "5", "--seed", "3", *args]  # fmt: skip


def _start(state_dir: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _command(state_dir, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env(COLUMNS="200", **env),
    )


def _refused(state_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The demo run to its end (killed if it serves instead of stopping)."""
    return subprocess.run(
        _command(state_dir, *args), capture_output=True, text=True, env=cli_env(**env), timeout=60
    )


def _wait_ready(demo: subprocess.Popen[str], url: str) -> None:
    if not wait_ready(url, demo):
        output = demo.stdout.read() if demo.stdout and demo.poll() is not None else ""
        raise AssertionError(f"the demo did not become ready: {output}")


def test_the_demo_serves_four_healthy_systems_and_the_seeded_world(tmp_path: Path) -> None:
    port = free_port(SANDBOXES)
    demo = _start(tmp_path, "--port", str(port))
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(demo, url)
        query = '{ systems { name healthy breaker } customer(id: "cust_0001") { name } }'
        anonymous = httpx.post(f"{url}/graphql", json={"query": query}, timeout=10)
        assert (anonymous.status_code, anonymous.json()["errors"][0]["extensions"]) == (
            401,
            {"code": "UNAUTHENTICATED"},
        )
        tokens = json.loads((tmp_path / "tokens.json").read_text())
        assert sorted(tokens) == sorted(r.value for r in Role)
        viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
        body = httpx.post(f"{url}/graphql", json={"query": query}, headers=viewer, timeout=10)
        body = body.json()
        manifest = json.loads((tmp_path / "seed-manifest.json").read_text())
        assert body == {
            "data": {
                "systems": [
                    {"name": name, "healthy": True, "breaker": "CLOSED"}
                    for name in ("BILLING", "ERP", "CRM", "SUPPORT")
                ],
                "customer": {"name": manifest["customers"][0]["name"]},
            }
        }
    finally:
        demo.terminate()
        output, _ = demo.communicate(timeout=20)
    assert f"GraphQL     http://127.0.0.1:{port}/graphql" in output


def test_the_demos_billing_sandbox_delivers_its_events_to_the_gateway(tmp_path: Path) -> None:
    port = free_port(SANDBOXES)
    demo = _start(tmp_path, "--port", str(port))
    try:
        _wait_ready(demo, f"http://127.0.0.1:{port}")
        manifest = json.loads((tmp_path / "seed-manifest.json").read_text())
        [subscription, *_] = [
            r["id"]
            for r in manifest["records"]["billing"]
            if r.get("@type") == "Subscription" and r["status"] == "active"
        ]
        billing = f"http://127.0.0.1:{port + 101}"
        headers = {"Authorization": f"Bearer {demo_settings(tmp_path, port).billing.secret}"}
        cancelled = httpx.delete(f"{billing}/v1/subscriptions/{subscription}", headers=headers)
        assert cancelled.status_code == 200, cancelled.text

        def received() -> list[tuple[str, str]]:
            with closing(sqlite3.connect(tmp_path / "opsgraph.db")) as db:
                found = db.execute(
                    "SELECT type, json_extract(payload, '$.subject') FROM inbound_events"
                    " WHERE processed_at IS NOT NULL"
                )
                return list(found)

        expected = [("billing.customer.subscription.deleted", f"subscription/{subscription}")]
        for _ in range(100):
            if received() == expected:
                break
            time.sleep(0.1)
        found = received()
    finally:
        demo.terminate()
        output, _ = demo.communicate(timeout=20)
    assert found == expected, output[-3000:]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_one_signal_stops_the_whole_demo(tmp_path: Path, signum: signal.Signals) -> None:
    port = free_port(SANDBOXES)
    demo = _start(tmp_path, "--port", str(port))
    try:
        _wait_ready(demo, f"http://127.0.0.1:{port}")
        demo.send_signal(signum)
        assert demo.wait(timeout=20) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
        output, _ = demo.communicate(timeout=10)
    assert "Traceback" not in output


def _snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
    }


@pytest.mark.parametrize(
    ("offset", "what"),
    [(0, "the gateway"), (102, "the erp sandbox, --port + 102")],
)
def test_a_busy_port_stops_the_demo_before_it_touches_its_state(
    tmp_path: Path, offset: int, what: str
) -> None:
    # The state of a demo already running there.
    (tmp_path / "seed-manifest.json").write_text('{"customers": []}')
    (tmp_path / "opsgraph.db").write_bytes(b"gateway state")
    (tmp_path / "sandbox-erp.db").write_bytes(b"erp state")
    before = _snapshot(tmp_path)
    port = free_port(SANDBOXES)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port + offset))
        taken.listen()
        done = _refused(tmp_path, "--port", str(port))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"opsgraph: port {port + offset} ({what}) is already in use; "
        "start the demo on another --port (make demo PORT=...)"
    ]
    assert done.stdout == ""
    assert _snapshot(tmp_path) == before


def test_the_demo_takes_its_port_from_opsgraph_port(tmp_path: Path) -> None:
    port = free_port(SANDBOXES)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = _refused(tmp_path / "state", OPSGRAPH_PORT=str(port))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"opsgraph: port {port} (the gateway) is already in use; "
        "start the demo on another --port (make demo PORT=...)"
    ]
    assert not (tmp_path / "state").exists()


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No OPSGRAPH_* variables but those the test sets."""
    for name in list(os.environ):
        if name.startswith("OPSGRAPH_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_opsgraph_variables_win_over_the_demos_defaults(
    tmp_path: Path, environment: pytest.MonkeyPatch
) -> None:
    environment.setenv("OPSGRAPH_PORT", "9000")
    environment.setenv("OPSGRAPH_ERP__CACHE_TTL_S", "7")
    environment.setenv("OPSGRAPH_CRM__TIMEOUT_S", "3")
    environment.setenv("OPSGRAPH_SUPPORT__BASE_URL", "http://127.0.0.1:9999")
    environment.setenv("OPSGRAPH_DATABASE_URL", "sqlite+aiosqlite:///elsewhere.db")
    settings = demo_settings(tmp_path, None)
    assert settings.port == 9000
    assert settings.database_url == "sqlite+aiosqlite:///elsewhere.db"
    assert str(settings.erp.base_url) == "http://127.0.0.1:9102/"
    assert (settings.erp.secret, settings.erp.cache_ttl_s) == ("sandbox-secret", 7)
    assert (settings.crm.timeout_s, settings.crm.cache_ttl_s) == (3, 60)
    assert str(settings.support.base_url) == "http://127.0.0.1:9999/"
    assert settings.support.secret == "sandbox-secret"


def test_the_port_flag_wins_over_opsgraph_port(
    tmp_path: Path, environment: pytest.MonkeyPatch
) -> None:
    environment.setenv("OPSGRAPH_PORT", "9000")
    settings = demo_settings(tmp_path, 9500)
    assert settings.port == 9500
    assert str(settings.billing.base_url) == "http://127.0.0.1:9601/"
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'opsgraph.db'}"
