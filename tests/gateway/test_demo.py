"""`make demo` end to end: the CLI starts four seeded sandboxes and the gateway, and the
gateway answers `systems` with four healthy connectors and a seeded customer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.world import free_port


def test_the_demo_serves_four_healthy_systems_and_the_seeded_world(tmp_path: Path) -> None:
    port = free_port((0, 101, 102, 103, 104))  # the gateway and its four sandboxes
    demo = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "demo", "--port", str(port),
         "--state-dir", str(tmp_path), "--customers", "5", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert demo.poll() is None, demo.stdout.read() if demo.stdout else ""
            assert time.monotonic() < deadline, "the demo did not become ready"
            time.sleep(0.2)
        query = '{ systems { name healthy breaker } customer(id: "cust_0001") { name } }'
        body = httpx.post(f"{url}/graphql", json={"query": query}, timeout=10).json()
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
