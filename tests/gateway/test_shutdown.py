"""`opsgraph serve` given SIGTERM drains its requests in flight for the shutdown grace, then
stops, even when a system never answers them."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from connectors.models import SystemName
from tests.identity import identity
from tests.world import (
    Sandboxes,
    cli_env,
    gateway_process,
    migrated_database,
    sandbox_variables,
    sandboxes,
)

GRACE_S = 2
QUERY = "query($id: ID!) { customer(id: $id) { account { name } } }"


def _crm_queries(boxes: Sandboxes) -> int:
    """SOQL queries the CRM sandbox received (its health probes are ``/limits``)."""
    requests = boxes.requests()[SystemName.CRM]
    return sum(n for path, n in requests.items() if path.endswith("/query"))


def test_sigterm_stops_the_gateway_after_the_grace_with_requests_hanging(
    tmp_path: Path,
) -> None:
    with sandboxes(separate_process=True) as boxes:
        env = cli_env(
            OPSGRAPH_DATABASE_URL=migrated_database(tmp_path / "opsgraph.db", boxes.world),
            OPSGRAPH_SHUTDOWN_GRACE_S=str(GRACE_S),
            # Nothing but the grace may end the requests: not their deadline, not the CRM's.
            OPSGRAPH_REQUEST_DEADLINE_S="60",
            OPSGRAPH_CRM__TIMEOUT_S="60",
            OPSGRAPH_CRM__CACHE_TTL_S="0",
            **sandbox_variables(boxes),
            **identity().variables(),
        )
        with gateway_process(env) as (url, gateway), ThreadPoolExecutor(4) as pool:
            boxes.faults(SystemName.CRM, hang_next=100, hang_s=300)
            customers = [c.id for c in boxes.world.customers[:4]]
            requests = [
                pool.submit(
                    httpx.post, f"{url}/graphql", json={"query": QUERY, "variables": {"id": c}},
                    headers=identity().headers(), timeout=120,
                )
                for c in customers
            ]  # fmt: skip
            deadline = time.monotonic() + 30
            while _crm_queries(boxes) < len(customers):
                assert time.monotonic() < deadline, boxes.requests()
                time.sleep(0.05)
            assert not any(r.done() for r in requests)

            gateway.send_signal(signal.SIGTERM)

            assert gateway.wait(timeout=GRACE_S + 5) == 0
            # Cut short, not left hanging, and told why in GraphQL's shape.
            answers = [r.result(timeout=10) for r in requests]
            assert [(a.status_code, a.json()) for a in answers] == [
                (
                    503,
                    {
                        "errors": [
                            {
                                "message": "the gateway is shutting down",
                                "extensions": {"code": "SHUTTING_DOWN"},
                            }
                        ]
                    },
                )
            ] * len(customers)
