"""opsgraph as an Apollo Federation v2 subgraph: checked in Python, and proven with Apollo's
own JS tools (composition, then a gateway query that crosses into our subgraph)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.models import SystemName
from connectors.sandbox.serve import serve_in_thread
from gateway.app import create_app
from gateway.auth.keys import opened
from gateway.auth.scopes import Role, Scope
from tests.conftest import unavailable
from tests.gateways import Gateway, graphql
from tests.identity import identity
from tests.world import Sandboxes

JS = Path(__file__).parent.parent / "js"


def test_the_sdl_declares_customer_as_an_entity(gateway: Gateway) -> None:
    client = gateway()
    client.headers.update(identity().headers(Role.INTEGRATION_ADMIN))  # schema:read
    sdl = graphql(client, "{ _service { sdl } }")["data"]["_service"]["sdl"]
    assert '@link(url: "https://specs.apollo.dev/federation/v2.11"' in sdl
    assert (
        'type Customer implements Node @key(fields: "id") '
        '@requiresScopes(scopes: [["customers:read"]])'
    ) in sdl


def test_entities_resolve_customers_by_key(boxes: Sandboxes, gateway: Gateway) -> None:
    first, second = boxes.world.customers[:2]
    query = """query($r: [_Any!]!) { _entities(representations: $r) {
        ... on Customer { id name account { name } } } }"""
    reps = [{"__typename": "Customer", "id": c} for c in (second.id, "cust_9999", first.id)]
    body = graphql(gateway(), query, r=reps)
    assert body["data"]["_entities"] == [
        {"id": second.id, "name": second.name, "account": {"name": second.name}},
        None,
        {"id": first.id, "name": first.name, "account": {"name": first.name}},
    ]


def test_bad_representations_are_bad_user_input(boxes: Sandboxes, gateway: Gateway) -> None:
    customer = boxes.world.customers[0]
    query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Customer { id } } }"
    reps = [
        {"id": customer.id},
        {"__typename": "Nope", "id": customer.id},
        {"__typename": "Customer"},
        "cust_0001",
        {"__typename": "Customer", "id": customer.id, "name": "Acme"},
        {"__typename": "Customer", "id": customer.id},
    ]
    body = graphql(gateway(), query, r=reps)
    assert body["data"]["_entities"] == [None, None, None, None, None, {"id": customer.id}]
    assert [(e["path"], e["extensions"]["code"], e["message"]) for e in body["errors"]] == [
        (["_entities", 0], "BAD_USER_INPUT", "representations[0] has no __typename"),
        (
            ["_entities", 1],
            "BAD_USER_INPUT",
            "representations[1] names 'Nope', which is not an entity here",
        ),
        (["_entities", 2], "BAD_USER_INPUT", "representations[2] lacks id for Customer"),
        (["_entities", 3], "BAD_USER_INPUT", "representations[3] is not an object"),
        (
            ["_entities", 4],
            "BAD_USER_INPUT",
            "representations[4] has 'name', which Customer does not take",
        ),
    ]


@pytest.fixture
def served(boxes: Sandboxes, linked_db: str) -> Iterator[str]:
    running = serve_in_thread(create_app(boxes.settings(linked_db)), lifespan="on")
    try:
        yield f"{running.url}/graphql"
    finally:
        running.stop()


async def _router_key(database_url: str) -> str:
    """The composing router's API key: the SDL (``_service``) and the customers it asks
    opsgraph for."""
    async with opened(database_url) as keys:
        _, key = await keys.create("router", [Scope.SCHEMA_READ, Scope.CUSTOMERS_READ])
    return key


def test_apollo_composes_and_routes_a_query_into_opsgraph(
    boxes: Sandboxes, linked_db: str, served: str
) -> None:
    node = shutil.which("node")
    if node is None or not (JS / "node_modules" / "@apollo" / "gateway").exists():
        unavailable("node and tests/js/node_modules (make test installs them)", FileNotFoundError())
    a, b = boxes.world.customers[:2]
    scores = {a.id: 9, b.id: 4}
    router = asyncio.run(_router_key(linked_db))
    done = subprocess.run(
        [str(node), "federation.mjs", served, json.dumps(scores)],
        env={**os.environ, "OPSGRAPH_AUTHORIZATION": f"Bearer {router}"},
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["composed"] is True, outcome["errors"]
    accounts = {r.id: r for r in boxes.world.slice(SystemName.CRM)}
    assert outcome["result"] == {
        "data": {
            "surveyedCustomers": [
                {
                    "id": c.id,
                    "npsScore": scores[c.id],
                    "name": c.name,
                    "externalIds": [
                        {"system": s.name, "id": c.external_ids[s]}
                        for s in (
                            SystemName.BILLING,
                            SystemName.CRM,
                            SystemName.ERP,
                            SystemName.SUPPORT,
                        )
                    ],  # fmt: skip
                    "account": {
                        "name": c.name,
                        "strategic": accounts[c.external_ids[SystemName.CRM]].strategic,  # type: ignore[attr-defined]
                    },
                }
                for c in (a, b)
            ]
        }
    }
