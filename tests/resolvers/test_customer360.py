"""The customer 360 against the four seeded sandboxes: exact data from the seed, provenance
on every object, and the batching the loaders promise, counted by the sandboxes."""

from __future__ import annotations

from typing import Any

from connectors.models import (
    Account,
    Case,
    Invoice,
    ObjectKind,
    Plan,
    Posting,
    PostingType,
    Subscription,
    SystemName,
    kind_of,
)
from connectors.money import Money
from dashboards.operations import document
from gateway.rules.entitlements import entitlements
from tests.gateways import Gateway, graphql
from tests.world import Sandboxes

BILLING, ERP, CRM, SUPPORT = SystemName.BILLING, SystemName.ERP, SystemName.CRM, SystemName.SUPPORT

C360 = document("customer360")

STATUS = {
    "missing_posting": "MISSING",
    "duplicate_posting": "DUPLICATE",
    "amount_mismatch": "MISMATCH",
    "tax_mismatch": "MISMATCH",
    "wrong_period": "MISDATED",
}


def _of(boxes: Sandboxes, system: SystemName, kind: ObjectKind) -> list[Any]:
    return [r for r in boxes.world.slice(system) if kind_of(r) is kind]


def _money(m: Money) -> dict[str, str]:
    return {"amount": m.amount_str(), "currency": m.currency}


def expected_360(boxes: Sandboxes, customer_id: str) -> dict[str, Any]:
    c = next(c for c in boxes.world.customers if c.id == customer_id)
    ids = c.external_ids
    account: Account = next(a for a in _of(boxes, CRM, ObjectKind.ACCOUNT) if a.id == ids[CRM])
    plans: dict[str, Plan] = {p.id: p for p in _of(boxes, BILLING, ObjectKind.PLAN)}
    subs: list[Subscription] = [
        s for s in _of(boxes, BILLING, ObjectKind.SUBSCRIPTION) if s.customer_id == ids[BILLING]
    ]
    invoices: list[Invoice] = sorted(
        (i for i in _of(boxes, BILLING, ObjectKind.INVOICE) if i.customer_id == ids[BILLING]),
        key=lambda i: (i.issued_at, i.id),
        reverse=True,
    )
    postings: list[Posting] = [
        p for p in _of(boxes, ERP, ObjectKind.POSTING) if p.customer_id == ids[ERP]
    ]
    planted = {d.invoice_id: STATUS[d.kind] for d in boxes.world.discrepancies if d.invoice_id}
    receivable = Money.zero(c.currency)
    for p in postings:
        if p.status == "open" and p.type is PostingType.INVOICE:
            receivable = receivable + p.amount + p.tax
    cases: list[Case] = sorted(
        (x for x in _of(boxes, SUPPORT, ObjectKind.CASE) if x.organization_id == ids[SUPPORT]),
        key=lambda x: (x.created_at, x.id),
        reverse=True,
    )
    return {
        "id": c.id,
        "name": c.name,
        "externalIds": [{"system": s.name, "id": ids[s]} for s in (BILLING, CRM, ERP, SUPPORT)],
        "account": {
            "id": account.id,
            "name": account.name,
            "segment": account.segment,
            "owner": account.owner,
            "strategic": account.strategic,
            "renewalDate": account.renewal_date.isoformat() if account.renewal_date else None,
            "healthScore": account.health_score,
            "source": {"system": "CRM", "externalId": account.id, "cached": False, "stale": False},
        },
        "subscriptions": [
            {
                "id": s.id,
                "status": s.status.name,
                "quantity": s.quantity,
                "source": {"system": "BILLING", "externalId": s.id},
                "plan": {
                    "id": s.plan_id,
                    "name": plans[s.plan_id].name,
                    "price": _money(plans[s.plan_id].price),
                    "features": list(plans[s.plan_id].features),
                    "supportTier": plans[s.plan_id].support_tier,
                    "slaHours": plans[s.plan_id].sla_hours,
                },
            }
            for s in subs
        ],
        "entitlements": [
            {
                "feature": e.feature,
                "planId": e.plan_id,
                "supportTier": e.support_tier,
                "slaHours": e.sla_hours,
            }
            for e in entitlements(subs, plans)
        ],  # fmt: skip
        "invoices": {
            "totalCount": len(invoices),
            "edges": [
                {
                    "node": {
                        "id": i.id,
                        "number": i.number,
                        "status": i.status.name,
                        "total": {**_money(i.total), "minorUnits": str(i.total.amount_minor)},
                        "postingStatus": planted.get(i.id, "POSTED"),
                        "postings": [
                            {
                                "id": p.id,
                                "amount": {"minorUnits": str(p.amount.amount_minor)},
                                "tax": {"minorUnits": str(p.tax.amount_minor)},
                            }
                            for p in postings
                            if p.external_id == i.id
                        ],  # fmt: skip
                    }
                }
                for i in invoices
            ],
        },
        "balance": {
            "receivable": _money(receivable),
            "source": {"system": "ERP", "externalId": ids[ERP]},
        },
        "cases": {
            "edges": [
                {
                    "node": {
                        "id": x.id,
                        "subject": x.subject,
                        "priority": x.priority.name,
                        "status": x.status.name,
                        "slaBreached": x.sla_breached,
                        "source": {"system": "SUPPORT", "externalId": x.id},
                    }
                }
                for x in cases
            ]
        },
        "credits": [],
        "openExceptions": [],
    }


def test_a_customer_360_matches_the_seed_exactly(boxes: Sandboxes, gateway: Gateway) -> None:
    client = gateway()
    for customer in boxes.world.customers:
        body = graphql(client, C360 + "query($id: ID!) { customer(id: $id) { ...C360 } }",
                       id=customer.id)  # fmt: skip
        assert "errors" not in body, body["errors"]
        assert body["data"]["customer"] == expected_360(boxes, customer.id), customer.id


def test_every_planted_discrepancy_shows_on_its_invoice(boxes: Sandboxes, gateway: Gateway) -> None:
    client = gateway()
    query = """query($id: ID!) { customer(id: $id) {
        invoices(first: 50) { edges { node { id postingStatus } } } } }"""
    for d in boxes.world.discrepancies:
        if d.invoice_id is None:
            continue
        edges = graphql(client, query, id=d.customer_id)["data"]["customer"]["invoices"]["edges"]
        status = {e["node"]["id"]: e["node"]["postingStatus"] for e in edges}
        assert status[d.invoice_id] == STATUS[d.kind], d


def test_a_page_of_customers_costs_one_call_per_system_and_kind(
    boxes: Sandboxes, gateway: Gateway
) -> None:
    client = gateway()
    body = graphql(client, C360 + "{ customers(first: 50) { edges { node { ...C360 } } } }")
    assert "errors" not in body, body["errors"]
    nodes = [e["node"] for e in body["data"]["customers"]["edges"]]
    assert [n["id"] for n in nodes] == sorted(c.id for c in boxes.world.customers)
    assert nodes == [expected_360(boxes, n["id"]) for n in nodes]
    requests = boxes.requests()
    # CRM: one SOQL query for every account. ERP: one SuiteQL for postings, one for balances.
    # Support: one search for every organization's tickets.
    assert requests[CRM] == {"GET /services/data/v61.0/query": 1}
    assert requests[ERP] == {"POST /services/rest/query/v1/suiteql": 2}
    assert sum(requests[SUPPORT].values()) == 1
    # Billing: one invoice search (subscriptions expanded) serves invoices and
    # subscriptions; one listing of the plan catalog.
    assert requests[BILLING] == {"GET /v1/invoices/search": 1, "GET /v1/prices": 1}
