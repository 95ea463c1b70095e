"""Who may see what, against the seeded sandboxes with real RS256 tokens: a role matrix over
every sensitive field and operation, refusals that run nothing, tenancy that makes other
legal entities' customers absent, API keys from the CLI, and the audit log of refusals."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import strawberry
from sqlalchemy import select
from starlette.testclient import TestClient
from strawberry.types import ExecutionResult

from connectors.models import SystemName
from dashboards.operations import document
from gateway.app import create_app
from gateway.auth.principal import Principal, PrincipalKind
from gateway.auth.scopes import Role, Scope, needs
from gateway.extensions.authorization import Authorization, Requirements
from gateway.schema import build_schema
from gateway.storage.database import create_engine, sessions
from gateway.storage.tables import AuditEntry
from tests.gateways import Gateway
from tests.identity import identity
from tests.resolvers.test_customer360 import expected_360
from tests.world import Sandboxes, cli_env, migrated_database

C360 = document("customer360")
CUSTOMER = "query($id: ID!) { customer(id: $id) { %s } }"
INVOICES = "invoices(first: 10) { %s edges { node { %s } } }"
US, NL = "Opsgraph Inc.", "Opsgraph B.V."


def ask(client: TestClient, query: str, headers: dict[str, str], **variables: Any) -> Any:
    response = client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def refusal(*needed: tuple[str, Scope]) -> dict[str, Any]:
    """The whole answer to an operation refused for ``needed`` (coordinate, scope)."""
    said = "; ".join(f"{field} needs {scope}" for field, scope in needed)
    return {
        "errors": [
            {
                "message": f"Not authorized: {said}.",
                "extensions": {
                    "code": "FORBIDDEN",
                    "fields": [{"field": f, "scopes": needs(s)} for f, s in needed],
                },
            }
        ]
    }


def _invoices(e: dict[str, Any], pick: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    return {"edges": [{"node": pick(edge["node"])} for edge in e["invoices"]["edges"]]}


@dataclass(frozen=True)
class Case:
    name: str
    query: str
    scope: Scope  # the one scope it needs beyond customers:read
    field: str  # the schema coordinate a refusal names
    data: Callable[[dict[str, Any]], Any]  # the answer, from the seed's customer 360


def _of_customer(field: str, selection: str, scope: Scope, coordinate: str) -> Case:
    return Case(
        field,
        CUSTOMER % selection,
        scope,
        coordinate,
        lambda e: {"customer": {field: e[field]}},
    )


CASES = [
    Case(
        "account",
        CUSTOMER % "account { id name segment owner strategic }",
        Scope.CUSTOMERS_READ,
        "Customer.account",
        lambda e: {
            "customer": {
                "account": {
                    k: e["account"][k] for k in ("id", "name", "segment", "owner", "strategic")
                }
            }
        },
    ),
    _of_customer(
        "subscriptions",
        "subscriptions { id status quantity source { system externalId } "
        "plan { id name price { amount currency } features supportTier slaHours } }",
        Scope.BILLING_READ,
        "Customer.subscriptions",
    ),
    _of_customer(
        "entitlements",
        "entitlements { feature planId supportTier slaHours }",
        Scope.BILLING_READ,
        "Customer.entitlements",
    ),
    Case(
        "invoices",
        CUSTOMER
        % INVOICES
        % ("totalCount", "id number status total { amount currency minorUnits }"),
        Scope.BILLING_READ,
        "Customer.invoices",
        lambda e: {
            "customer": {
                "invoices": {
                    "totalCount": e["invoices"]["totalCount"],
                    **_invoices(
                        e, lambda n: {k: n[k] for k in ("id", "number", "status", "total")}
                    ),
                }
            }
        },
    ),
    Case(
        "postings",
        CUSTOMER % INVOICES % ("", "postings { id amount { minorUnits } tax { minorUnits } }"),
        Scope.FINANCE_READ,
        "Invoice.postings",
        lambda e: {"customer": {"invoices": _invoices(e, lambda n: {"postings": n["postings"]})}},
    ),
    Case(
        "posting",
        CUSTOMER % INVOICES % ("", "posting { id }"),
        Scope.FINANCE_READ,
        "Invoice.posting",
        lambda e: {
            "customer": {
                "invoices": _invoices(
                    e,
                    lambda n: {
                        "posting": {"id": n["postings"][0]["id"]} if n["postings"] else None
                    },
                )
            }
        },
    ),
    Case(
        "postingStatus",
        CUSTOMER % INVOICES % ("", "postingStatus"),
        Scope.FINANCE_READ,
        "Invoice.postingStatus",
        lambda e: {
            "customer": {"invoices": _invoices(e, lambda n: {"postingStatus": n["postingStatus"]})}
        },
    ),
    _of_customer(
        "balance",
        "balance { receivable { amount currency } source { system externalId } }",
        Scope.FINANCE_READ,
        "Customer.balance",
    ),
    _of_customer(
        "cases",
        "cases { edges { node { id subject priority status slaBreached "
        "source { system externalId } } } }",
        Scope.CASES_READ,
        "Customer.cases",
    ),
    _of_customer("credits", "credits { id }", Scope.CREDITS_READ, "Customer.credits"),
    _of_customer(
        "openExceptions",
        "openExceptions { id }",
        Scope.RECONCILIATION_READ,
        "Customer.openExceptions",
    ),
    Case(
        "systems",
        "{ systems { name } }",
        Scope.SYSTEMS_READ,
        "Query.systems",
        lambda e: {"systems": [{"name": s} for s in ("BILLING", "ERP", "CRM", "SUPPORT")]},
    ),
    Case(
        "entitlementCheck",
        'query($id: ID!) { entitlementCheck(customerId: $id, feature: "phone_support") '
        "{ allowed reason } }",
        Scope.BILLING_READ,
        "Query.entitlementCheck",
        lambda e: {
            "entitlementCheck": {
                "allowed": True,
                "reason": "Enterprise plan includes phone_support",
            }
        },
    ),
    Case(
        "_service",
        "{ _service { sdl } }",
        Scope.SCHEMA_READ,
        "Query._service",
        lambda e: {"_service": {"sdl": build_schema().as_str()}},
    ),
]

EVERY_READ = {c.name for c in CASES} - {"_service"}
SUPPORT = {
    "account", "subscriptions", "entitlements", "invoices", "cases", "credits", "entitlementCheck"
}  # fmt: skip
# The matrix itself, written out rather than derived from ROLE_SCOPES.
SEES: dict[Role, set[str]] = {
    Role.VIEWER: EVERY_READ,
    Role.SUPPORT_AGENT: SUPPORT,
    Role.SUPPORT_LEAD: SUPPORT,
    Role.FINANCE_APPROVER: EVERY_READ,
    Role.INTEGRATION_ADMIN: EVERY_READ | {"_service"},
}


def enterprise(boxes: Sandboxes) -> str:
    return next(c.id for c in boxes.world.customers if c.plan == "enterprise")


@pytest.mark.parametrize("role", list(Role))
def test_the_role_matrix(role: Role, boxes: Sandboxes, gateway: Gateway) -> None:
    client = gateway()
    customer = enterprise(boxes)
    seed = expected_360(boxes, customer)
    headers = identity().headers(role)
    for case in CASES:
        boxes.reset_stats()
        body = ask(client, case.query, headers, id=customer)
        if case.name in SEES[role]:
            assert body == {"data": case.data(seed)}, (role, case.name)
        else:
            assert body == refusal((case.field, case.scope)), (role, case.name)
            assert boxes.totals() == dict.fromkeys(boxes.totals(), 0), (role, case.name)


def test_a_refused_operation_names_every_field_and_calls_nothing(
    boxes: Sandboxes, gateway: Gateway
) -> None:
    client = gateway()
    query = C360 + "query($id: ID!) { customer(id: $id) { ...C360 } }"
    body = ask(client, query, identity().headers(Role.SUPPORT_AGENT), id=enterprise(boxes))
    assert body == refusal(
        ("Customer.balance", Scope.FINANCE_READ),
        ("Customer.openExceptions", Scope.RECONCILIATION_READ),
        ("Invoice.postingStatus", Scope.FINANCE_READ),
        ("Invoice.postings", Scope.FINANCE_READ),
    )
    assert boxes.totals() == dict.fromkeys(boxes.totals(), 0)


def test_health_counts_cases_and_needs_cases_read(boxes: Sandboxes, gateway: Gateway) -> None:
    client = gateway()
    query = CUSTOMER % "name health { score atRisk signals }"
    token = identity().token(scope="customers:read")
    body = ask(client, query, {"Authorization": f"Bearer {token}"}, id=enterprise(boxes))
    assert body == {
        "errors": [
            {
                "message": "Not authorized: Customer.health needs cases:read and customers:read.",
                "extensions": {
                    "code": "FORBIDDEN",
                    "fields": [
                        {
                            "field": "Customer.health",
                            "scopes": [["cases:read", "customers:read"]],
                        }
                    ],
                },
            }
        ]
    }
    assert boxes.totals() == dict.fromkeys(boxes.totals(), 0)
    both = identity().token(scope="customers:read cases:read")
    customer = enterprise(boxes)
    body = ask(client, query, {"Authorization": f"Bearer {both}"}, id=customer)
    health = body["data"]["customer"]["health"]
    assert health["score"] == expected_360(boxes, customer)["account"]["healthScore"]


def test_fragments_inside_entities_are_walked(boxes: Sandboxes, gateway: Gateway) -> None:
    query = """query($r: [_Any!]!) { _entities(representations: $r) { ... on Customer { ...B } } }
    fragment B on Customer { name ...R }
    fragment R on Customer { balance { receivable { amount } } }"""
    reps = [{"__typename": "Customer", "id": enterprise(boxes)}]
    body = ask(gateway(), query, identity().headers(Role.SUPPORT_LEAD), r=reps)
    assert body == refusal(("Customer.balance", Scope.FINANCE_READ))
    assert boxes.totals() == dict.fromkeys(boxes.totals(), 0)


def test_a_schema_run_without_a_principal_holds_no_scopes() -> None:
    result = build_schema().execute_sync("{ systems { name } }")
    assert result.data is None
    assert [e.formatted for e in result.errors or []] == refusal(
        ("Query.systems", Scope.SYSTEMS_READ)
    )["errors"]


def test_every_root_field_declares_the_scopes_it_needs() -> None:
    requirements = Requirements.of(build_schema()._schema)
    roots = build_schema()._schema.query_type
    assert roots is not None
    undeclared = [name for name in roots.fields if not requirements.fields.get(("Query", name))]
    assert undeclared == []


@strawberry.type
class _Query:
    @strawberry.federation.field(requires_scopes=needs(Scope.CREDITS_READ))
    def credit(self) -> str:
        return "credit"


@strawberry.type
class _Mutation:
    @strawberry.federation.field(requires_scopes=needs(Scope.CREDITS_APPROVE))
    def approve(self) -> str:
        return "approved"

    @strawberry.mutation
    def undeclared(self) -> str:
        return "ran"


@strawberry.type
class _Subscription:
    @strawberry.federation.field(
        is_subscription=True, requires_scopes=needs(Scope.RECONCILIATION_READ)
    )
    async def exceptions(self) -> AsyncIterator[str]:
        yield "exception"


@dataclass
class _Asking:
    principal: Any


SCHEMA = strawberry.federation.Schema(
    query=_Query, mutation=_Mutation, subscription=_Subscription, extensions=[Authorization]
)


def test_mutations_need_their_scopes_and_an_undeclared_one_is_closed() -> None:
    schema = SCHEMA
    approver = _Asking(Principal.of("fa", PrincipalKind.USER, [Role.FINANCE_APPROVER]))
    agent = _Asking(Principal.of("sa", PrincipalKind.USER, [Role.SUPPORT_AGENT]))
    assert schema.execute_sync("mutation { approve }", context_value=approver).data == {
        "approve": "approved"
    }
    refused = schema.execute_sync("mutation { approve }", context_value=agent)
    assert [e.formatted for e in refused.errors or []] == refusal(
        ("Mutation.approve", Scope.CREDITS_APPROVE)
    )["errors"]
    closed = schema.execute_sync("mutation { undeclared }", context_value=approver)
    assert [e.formatted for e in closed.errors or []] == [
        {
            "message": "Not authorized: Mutation.undeclared needs a scope nobody holds "
            "(it declares none).",
            "extensions": {
                "code": "FORBIDDEN",
                "fields": [{"field": "Mutation.undeclared", "scopes": []}],
            },
        }
    ]


async def test_a_subscription_is_refused_before_it_starts() -> None:
    agent = _Asking(Principal.of("sa", PrincipalKind.USER, [Role.SUPPORT_AGENT]))
    viewer = _Asking(Principal.of("v", PrincipalKind.USER, [Role.VIEWER]))
    refused = await SCHEMA.subscribe("subscription { exceptions }", context_value=agent)
    assert not isinstance(refused, ExecutionResult)
    answers = [r async for r in refused]
    assert [(r.data, [e.formatted for e in r.errors or []]) for r in answers] == [
        (None, refusal(("Subscription.exceptions", Scope.RECONCILIATION_READ))["errors"])
    ]
    allowed = await SCHEMA.subscribe("subscription { exceptions }", context_value=viewer)
    assert not isinstance(allowed, ExecutionResult)
    assert [r.data async for r in allowed] == [{"exceptions": "exception"}]


# Tenancy: a principal limited to one legal entity.


def test_other_entities_customers_are_absent_everywhere(boxes: Sandboxes, gateway: Gateway) -> None:
    client = gateway()
    mine = [c for c in boxes.world.customers if c.legal_entity == US]
    theirs = next(c for c in boxes.world.customers if c.legal_entity != US)
    assert [c.id for c in mine] == ["cust_0001", "cust_0005"]
    headers = identity().headers(Role.VIEWER, entities=[US])

    def absent(query: str, message: str, **variables: Any) -> None:
        body = ask(client, query, headers, **variables)
        assert body["data"] is None
        assert [(e["message"], e["extensions"]) for e in body["errors"]] == [
            (message, {"code": "NOT_FOUND"})
        ]

    boxes.reset_stats()
    absent(CUSTOMER % "id", f"no customer with id '{theirs.id}'", id=theirs.id)
    absent(
        "query($id: ID!) { node(id: $id) { id } }", f"no node with id '{theirs.id}'", id=theirs.id
    )
    erp_id = theirs.external_ids[SystemName.ERP]
    absent(
        "query($x: String!) { customerByExternalId(system: ERP, externalId: $x) { id } }",
        f"no customer is '{erp_id}' in erp",
        x=erp_id,
    )
    absent(
        'query($id: ID!) { entitlementCheck(customerId: $id, feature: "sso") { allowed } }',
        f"no customer with id '{theirs.id}'",
        id=theirs.id,
    )
    assert boxes.totals() == dict.fromkeys(boxes.totals(), 0)
    listed = ask(client, "{ customers(first: 50) { totalCount edges { node { id } } } }", headers)
    assert listed == {
        "data": {
            "customers": {
                "totalCount": 2,
                "edges": [{"node": {"id": "cust_0001"}}, {"node": {"id": "cust_0005"}}],
            }
        }
    }
    entities = ask(
        client,
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Customer { id } } }",
        headers,
        r=[{"__typename": "Customer", "id": i} for i in (theirs.id, "cust_0005")],
    )
    assert entities == {"data": {"_entities": [None, {"id": "cust_0005"}]}}
    own = ask(client, CUSTOMER % "id name", headers, id="cust_0001")
    assert own == {"data": {"customer": {"id": "cust_0001", "name": mine[0].name}}}


# API keys, from the CLI, and the audit log, each on a gateway database of its own.


@pytest.fixture
def fresh(boxes: Sandboxes, tmp_path: Path) -> Iterator[tuple[Callable[[], TestClient], str]]:
    """A migrated, linked gateway database and a way to serve a gateway on it (the audit
    log and last-used writes are drained when a client closes)."""
    url = migrated_database(tmp_path / "opsgraph.db", boxes.world)
    boxes.reset()
    yield (lambda: TestClient(create_app(boxes.settings(url)))), url
    boxes.reset()


def _keys(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "keys", *args],
        capture_output=True,
        text=True,
        env=cli_env(OPSGRAPH_DATABASE_URL=url),
        timeout=60,
        check=True,
    )


def _audit(url: str) -> list[AuditEntry]:
    async def read() -> list[AuditEntry]:
        engine = create_engine(url)
        try:
            async with sessions(engine)() as session:
                return list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        finally:
            await engine.dispose()

    return asyncio.run(read())


NL_ONLY = "{ customers(first: 50) { totalCount edges { node { id } } } }"


def test_an_api_key_from_the_cli_is_used_listed_and_revoked(
    fresh: tuple[Callable[[], TestClient], str],
) -> None:
    serve, url = fresh
    created = _keys(
        url, "create", "--name", "reporting", "--scope", "customers:read",
        "--scope", "billing:read", "--entity", NL,
    )  # fmt: skip
    key = created.stdout.strip()
    key_id = key.split("_")[1]
    assert created.stderr == f"{key_id} (reporting): store the key now, it is not shown again\n"
    seen = {
        "data": {
            "customers": {
                "totalCount": 2,
                "edges": [{"node": {"id": "cust_0002"}}, {"node": {"id": "cust_0006"}}],
            }
        }
    }
    with serve() as client:
        assert ask(client, NL_ONLY, {"Authorization": f"Bearer {key}"}) == seen
        assert ask(client, NL_ONLY, {"X-API-Key": key}) == seen
        balance = ask(client, CUSTOMER % "balance { receivable { amount } }", {"X-API-Key": key},
                      id="cust_0002")  # fmt: skip
        assert balance == refusal(("Customer.balance", Scope.FINANCE_READ))
        assert _keys(url, "revoke", key_id).stdout == f"revoked {key_id} (reporting)\n"
        revoked = client.post("/graphql", json={"query": NL_ONLY}, headers={"X-API-Key": key})
        unknown = client.post(
            "/graphql", json={"query": NL_ONLY}, headers={"X-API-Key": key[:-4] + "AAAA"}
        )
    assert (revoked.status_code, revoked.json()) == (
        401,
        {"errors": [{"message": "the API key has been revoked",
                     "extensions": {"code": "UNAUTHENTICATED"}}]},
    )  # fmt: skip
    assert (unknown.status_code, unknown.json()["errors"][0]["message"]) == (
        401,
        "the API key is not valid",
    )
    header, row = [line.split() for line in _keys(url, "list").stdout.splitlines()]
    assert header == ["ID", "NAME", "SCOPES", "ENTITIES", "CREATED", "LAST", "USED", "REVOKED"]
    assert row[:3] == [key_id, "reporting", "billing:read,customers:read"]
    assert row[3:5] == ["Opsgraph", "B.V."]
    created_at, used_at, revoked_at = (datetime.fromisoformat(t) for t in row[5:])
    assert created_at <= used_at <= revoked_at
    assert key.split("_", 2)[2] not in _keys(url, "list").stdout


def test_refusals_are_audited_with_their_secrets_filtered(
    boxes: Sandboxes, fresh: tuple[Callable[[], TestClient], str]
) -> None:
    serve, url = fresh
    fake_key = "og_0123456789abcdef_" + "s" * 43
    with serve() as client:
        anonymous = client.post(
            "/graphql",
            json={
                "query": "query Who($id: ID!) { customer(id: $id) { id } }",
                "operationName": "Who",
                "variables": {
                    "id": "cust_0001",
                    "token": "abc",
                    "filter": {"Password": "hunter2", "note": "Bearer eyJhbGciOi.e30.sig"},
                    "refs": [fake_key, "plain"],
                },
            },
        )
        agent = identity().headers(Role.SUPPORT_AGENT, subject="agent-7")
        forbidden = ask(
            client,
            "query Balance($id: ID!) { customer(id: $id) { balance { receivable { amount } } } }",
            agent,
            id="cust_0001",
            apiKey="x",
            comment="see Bearer abc.def",
        )
    assert anonymous.status_code == 401
    assert forbidden == refusal(("Customer.balance", Scope.FINANCE_READ))
    # Each row is written in the background: they may land in either order.
    first, second = sorted(_audit(url), key=lambda e: e.object_id != "Who")
    assert (first.actor, first.action, first.object_kind, first.object_id) == (
        "anonymous",
        "access.denied",
        "operation",
        "Who",
    )
    assert first.detail == {
        "principal": None,
        "operation": {"name": "Who", "type": "query"},
        "variables": {
            "id": "cust_0001",
            "token": "[filtered]",
            "filter": {"Password": "[filtered]", "note": "[filtered]"},
            "refs": ["[filtered]", "plain"],
        },
        "result": {
            "outcome": "denied",
            "code": "UNAUTHENTICATED",
            "reason": "a bearer token is required",
        },
    }
    assert (second.actor, second.action, second.object_id) == (
        "agent-7",
        "access.denied",
        "Balance",
    )
    assert second.detail == {
        "principal": {"subject": "agent-7", "kind": "user"},
        "operation": {"name": "Balance", "type": "query"},
        "variables": {"id": "cust_0001", "apiKey": "[filtered]", "comment": "[filtered]"},
        "result": {
            "outcome": "denied",
            "code": "FORBIDDEN",
            "fields": [{"field": "Customer.balance", "scopes": [["finance:read"]]}],
        },
    }
    ids = [first.request_id, second.request_id]
    assert all(len(i or "") == 32 for i in ids) and ids[0] != ids[1]
