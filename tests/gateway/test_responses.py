"""The response cache (``gateway.data.responses``): a registered query's answer served again
without execution is, byte for byte, the answer execution gives; it is kept per principal,
only when everything it read came from a cache, and it spends the cost budget as execution
does. (That an event makes the next answer execute again: ``tests/gateway/events/
test_webhooks.py``.)

The differential test sends every query of the dashboards' manifest with random variables
(a fixed seed, printed on failure) as the dashboards do, by hash: twice with
``Cache-Control: no-cache`` (executed; the second reads only from the caches), once
without (served from the response cache where it may be), and once more executed, and
compares the bytes."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import httpx
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    OperationDefinitionNode,
    get_named_type,
    parse,
    type_from_ast,
)

from connectors.models import SystemName
from connectors.sandbox.seed import PLANS
from gateway.auth.scopes import Role
from gateway.data.responses import _cacheable
from gateway.limits.cost import estimate
from gateway.persisted.manifest import Operation, operations, sha256
from gateway.schema import build_schema
from gateway.settings import LimitSettings
from tests.gateway.telemetry.prometheus import lookups, scrape, value
from tests.gateways import Gateway, Served
from tests.identity import identity
from tests.world import Sandboxes

SEED = 20261207
SAMPLES = 4  # variable sets per operation and role
ROLES = (Role.FINANCE_APPROVER, Role.SUPPORT_AGENT, Role.VIEWER)
SCHEMA = build_schema()._schema
# Remembered data (the crosswalk, credits, exceptions) kept for the whole test: an answer
# built from it then holds until a write forgets it, not until a 5 s TTL passes.
STEADY = {"owned_ttl_s": 3600, "connector": {"timeout_s": 2, "cache_ttl_s": 3600}}


def queries() -> list[Operation]:
    found = []
    for operation in operations():
        document = parse(operation.body)
        [definition] = [
            d
            for d in document.definitions
            if isinstance(d, OperationDefinitionNode) and d.name and d.name.value == operation.name
        ]
        if definition.operation.value == "query":
            found.append(operation)
    return found


def by_hash(operation: Operation, variables: dict[str, Any]) -> dict[str, Any]:
    """The operation as an APQ client sends it once asked for its text: text and hash."""
    persisted = {"version": 1, "sha256Hash": sha256(operation.body)}
    return {
        "query": operation.body,
        "operationName": operation.name,
        "variables": variables,
        "extensions": {"persistedQuery": persisted},
    }


class Variables:
    """Random variables for an operation, from the world the sandboxes were seeded with:
    mostly ids that exist, sometimes ones that do not."""

    def __init__(self, boxes: Sandboxes, rng: random.Random) -> None:
        self.rng = rng
        self.customers = boxes.world.customers
        self.features = sorted({f for _, features, *_ in PLANS.values() for f in features})

    def of(self, operation: Operation) -> dict[str, Any]:
        document = parse(operation.body)
        [definition] = [
            d
            for d in document.definitions
            if isinstance(d, OperationDefinitionNode) and d.name and d.name.value == operation.name
        ]
        customer = self.rng.choice(self.customers)
        given: dict[str, Any] = {}
        for each in definition.variable_definitions or ():
            name = each.variable.name.value
            type_ = type_from_ast(SCHEMA, each.type)
            if not isinstance(type_, GraphQLNonNull) and self.rng.random() < 0.3:
                continue  # left to its default
            given[name] = self._value(name, type_, customer)
        system = given.get("system")
        known = customer.external_ids.get(str(system).lower())
        if known is not None and "externalId" in given and self.rng.random() < 0.8:
            given["externalId"] = known
        return given

    def _value(self, name: str, type_: Any, customer: Any) -> Any:
        named = get_named_type(type_)
        rng = self.rng
        if isinstance(type_, GraphQLNonNull):
            type_ = type_.of_type
        if isinstance(type_, GraphQLList):
            return [self._value(name, type_.of_type, customer)]
        if isinstance(named, GraphQLEnumType):
            return rng.choice(sorted(named.values))
        if isinstance(named, GraphQLInputObjectType):
            fields = rng.sample(sorted(named.fields), k=min(2, len(named.fields)))
            return {f: self._value(f, named.fields[f].type, customer) for f in fields}
        if named.name == "Int":
            return rng.choice([1, 5, 20, 50])
        if name in ("id", "customerId"):
            return customer.id if rng.random() < 0.85 else f"cus_missing_{rng.randrange(99)}"
        if name == "feature":
            return rng.choice([*self.features, "no_such_feature"])
        if name == "name":
            return customer.name[: rng.randrange(1, 6)]
        if name == "period":
            return rng.choice(["2026-09", "2026-10", "2026-11"])
        if name == "after":
            return None
        return f"unknown-{rng.randrange(1000)}"


def test_every_dashboard_query_served_again_is_the_answer_execution_gives(
    gateway: Gateway, boxes: Sandboxes
) -> None:
    client = gateway(**STEADY)
    rng = random.Random(SEED)
    variables = Variables(boxes, rng)
    hits: dict[str, int] = {}
    for operation in queries():
        for role in ROLES:
            auth = identity().headers(role, subject=f"{role.value}-1", expires_in=86400)
            no_cache = {**auth, "Cache-Control": "no-cache"}
            for _ in range(SAMPLES):
                body = by_hash(operation, variables.of(operation))
                asked = f"{operation.name} as {role.value} with {json.dumps(body['variables'])}"
                client.post("/graphql", json=body, headers=no_cache)
                client.post("/graphql", json=body, headers=no_cache)
                before = lookups(client, operation.name)
                served = client.post("/graphql", json=body, headers=auth)
                counted = lookups(client, operation.name)
                executed = client.post("/graphql", json=body, headers=no_cache)
                assert served.status_code == executed.status_code, asked
                assert served.headers == executed.headers, asked
                assert served.content == executed.content, asked
                hit = counted["hit"] - before["hit"]
                hits[operation.name] = hits.get(operation.name, 0) + int(hit)
                if _cacheable(operation.body, operation.name) is None:
                    assert counted == before, asked  # never looked up
                elif "errors" in executed.json():
                    assert hit == 0, asked  # an answer with errors is never kept
    # Every operation whose answer reads only through the caches is served from the response
    # cache once warm; the lists the database pages, and the crosswalk's lookup by an
    # external id (a database read), never are.
    assert {n for n, count in hits.items() if count} == {
        "Customer360",
        "CustomerPage",
        "CustomerFinance",
        "SupportCustomer",
        "CheckEntitlement",
    }


def operation(name: str) -> Operation:
    return next(o for o in queries() if o.name == name)


def test_an_answer_is_kept_for_its_principal_alone(gateway: Gateway, boxes: Sandboxes) -> None:
    client = gateway(**STEADY)
    finance = operation("CustomerFinance")
    body = by_hash(finance, {"id": boxes.world.customers[0].id})
    approver = identity().headers(Role.FINANCE_APPROVER, subject="approver-a")
    answers = [client.post("/graphql", json=body, headers=approver) for _ in range(3)]
    assert lookups(client, "CustomerFinance") == {
        "miss": 2, "hit": 1, "changed": 0, "bypassed": 0,
    }  # fmt: skip
    assert answers[2].content == answers[1].content
    assert answers[2].json()["data"]["customer"]["balance"] is not None
    # Another approver's first ask is executed for them; a support agent, who may not read
    # balances, is refused whole and never sees the approver's answer.
    other = client.post(
        "/graphql",
        json=body,
        headers=identity().headers(Role.FINANCE_APPROVER, subject="approver-b"),
    )
    assert other.json() == answers[2].json()
    agent = client.post("/graphql", json=body, headers=identity().headers(Role.SUPPORT_AGENT))
    assert agent.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert agent.json().get("data") is None
    assert lookups(client, "CustomerFinance") == {
        "miss": 4, "hit": 1, "changed": 0, "bypassed": 0,
    }  # fmt: skip


def test_an_answer_read_from_a_system_of_record_is_not_kept(
    gateway: Gateway, boxes: Sandboxes
) -> None:
    client = gateway(**STEADY)
    body = by_hash(operation("Customer360"), {"id": boxes.world.customers[1].id})
    first = client.post("/graphql", json=body)  # read from the four systems: cached: false
    assert first.status_code == 200
    assert sum(boxes.totals().values()) > 0
    assert '"cached":false' in first.text
    second = client.post("/graphql", json=body)  # from the entity cache: kept
    boxes.reset_stats()
    third = client.post("/graphql", json=body)
    assert third.content == second.content
    assert '"cached":false' not in third.text
    assert sum(boxes.totals().values()) == 0
    assert lookups(client, "Customer360") == {"miss": 2, "hit": 1, "changed": 0, "bypassed": 0}


def test_an_answer_that_failed_is_not_kept(gateway: Gateway) -> None:
    client = gateway(**STEADY)
    body = by_hash(operation("Customer360"), {"id": "cust_nobody"})
    answers = [client.post("/graphql", json=body) for _ in range(3)]
    assert answers[2].json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert lookups(client, "Customer360") == {"miss": 3, "hit": 0, "changed": 0, "bypassed": 0}


def test_an_answer_served_again_spends_the_cost_budget(gateway: Gateway, boxes: Sandboxes) -> None:
    c360 = operation("Customer360")
    cost = estimate(SCHEMA, parse(c360.body), {}, LimitSettings().default_list_size)
    limits = {"max_cost": cost, "cost_budget": f"{3 * cost}/minute"}
    client = gateway(**STEADY, limits=limits)
    body = by_hash(c360, {"id": boxes.world.customers[2].id})
    auth = identity().headers(Role.VIEWER, subject="budgeted")
    answers = [client.post("/graphql", json=body, headers=auth) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[3].json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert 1 <= int(answers[3].headers["retry-after"]) <= 60
    assert lookups(client, "Customer360")["hit"] == 2  # the fourth was found, then refused
    samples = scrape(client)
    assert (
        value(
            samples, "opsgraph_graphql_errors_total", operation="Customer360", code="RATE_LIMITED"
        )
        == 1
    )


async def _together(url: str, body: dict[str, Any], auth: dict[str, str], n: int) -> list[Any]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return list(
            await asyncio.gather(
                *(client.post("/graphql", json=body, headers=auth) for _ in range(n))
            )
        )


def test_requests_for_an_answer_being_built_wait_for_it(served: Served, boxes: Sandboxes) -> None:
    url = served(**STEADY)
    body = by_hash(operation("Customer360"), {"id": boxes.world.customers[3].id})
    warm = {**identity().headers(Role.VIEWER, subject="warm"), "Cache-Control": "no-cache"}
    for _ in range(2):  # every system's answer and opsgraph's own data now cached
        assert httpx.post(f"{url}/graphql", json=body, headers=warm).status_code == 200
    boxes.reset_stats()
    before = lookups(url, "Customer360")
    # Twenty at once for a key nothing is kept for yet (another principal): one executes,
    # the others are served what it kept.
    auth = identity().headers(Role.VIEWER, subject="twenty")
    answers = asyncio.run(_together(url, body, auth, 20))
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
    after = lookups(url, "Customer360")
    assert {o: after[o] - before[o] for o in after} == {
        "hit": 19, "miss": 1, "changed": 0, "bypassed": 0,
    }  # fmt: skip
    assert sum(boxes.totals().values()) == 0


def test_a_request_waits_for_another_no_longer_than_its_deadline(
    served: Served, boxes: Sandboxes
) -> None:
    url = served(**STEADY, request_deadline_s=1)
    body = by_hash(operation("Customer360"), {"id": boxes.world.customers[4].id})
    boxes.faults(SystemName.BILLING, hang_next=100, hang_s=300)
    answers = asyncio.run(_together(url, body, identity().headers(Role.VIEWER), 5))
    # Each ends within its deadline with what the systems that answered gave: billing's
    # fields null with UPSTREAM_TIMEOUT, and nothing kept from such an answer.
    for answer in answers:
        assert answer.status_code == 200
        codes = {e["extensions"]["code"] for e in answer.json()["errors"]}
        assert codes == {"UPSTREAM_TIMEOUT"}, answer.text
        assert answer.json()["data"]["customer"]["account"] is not None
    assert lookups(url, "Customer360")["hit"] == 0
