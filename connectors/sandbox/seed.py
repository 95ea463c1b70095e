"""The deterministic demo world: the same customers in all four systems, linked by ids,
with planted discrepancies recorded in a manifest.

``generate(customers=N, seed=S, as_of=D)`` returns the same world for the same arguments.
Records are canonical (``connectors.models``); each sandbox turns its slice into its own
wire shapes when seeded, so tests can compare what a connector returns with the manifest.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from connectors import codec
from connectors.models import (
    Account,
    Case,
    CasePriority,
    CaseStatus,
    CustomerRecord,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentStatus,
    Plan,
    PlanInterval,
    Posting,
    PostingState,
    PostingType,
    Record,
    SlaBreach,
    Subscription,
    SubscriptionStatus,
    SystemName,
)
from connectors.money import Money, exponent
from connectors.sandbox.support.documents import SLA_HOURS

# currency -> (legal entity / ERP subsidiary, tax rate in basis points)
ENTITIES: dict[str, tuple[str, int]] = {
    "USD": ("Opsgraph Inc.", 0),
    "EUR": ("Opsgraph B.V.", 2100),
    "JPY": ("Opsgraph K.K.", 1000),
    "KWD": ("Opsgraph Gulf W.L.L.", 0),
}

# plan key -> (name, features, support tier, SLA hours, monthly price per currency). A
# tier's SLA hours are those of the support desk's policy for it.
PLANS: dict[str, tuple[str, tuple[str, ...], str, int, dict[str, int]]] = {
    "starter": ("Starter", ("api_access", "email_support"), "standard", SLA_HOURS["standard"],
                {"USD": 4900, "EUR": 4500, "JPY": 7000, "KWD": 15000}),
    "growth": ("Growth", ("api_access", "email_support", "sso", "audit_log"), "priority",
               SLA_HOURS["priority"], {"USD": 19900, "EUR": 18500, "JPY": 29000, "KWD": 61000}),
    "enterprise": ("Enterprise", ("api_access", "email_support", "sso", "audit_log",
                                  "phone_support", "dedicated_csm", "sandbox_environments"),
                   "premium", SLA_HOURS["premium"],
                   {"USD": 99900, "EUR": 92500, "JPY": 149000, "KWD": 307000}),
}  # fmt: skip

SEGMENTS = {"starter": "SMB", "growth": "Mid-Market", "enterprise": "Enterprise"}

DISCREPANCIES = ("missing_posting", "duplicate_posting", "amount_mismatch", "tax_mismatch",
                 "wrong_period")  # fmt: skip

_NAMES = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Wonka",
    "Oscorp",
    "Aperture",
    "Massive",
    "Dunder",
)
_SUFFIXES = ("Labs", "Systems", "Logistics", "Health", "Retail", "Analytics", "Foods", "Media")
_OWNERS = ("Ana Ortiz", "Ben Okafor", "Chen Wei", "Dana Kruger")
_SUBJECTS = (
    "Cannot log in with SSO",
    "API returns 500 on export",
    "Invoice shows wrong tax",
    "Need more seats",
    "Dashboard is slow",
    "Webhook deliveries failing",
)


@dataclass(frozen=True)
class SeedCustomer:
    id: str
    name: str
    currency: str
    legal_entity: str
    plan: str
    external_ids: dict[SystemName, str]


@dataclass(frozen=True)
class Discrepancy:
    kind: str
    customer_id: str
    invoice_id: str | None
    detail: str


@dataclass
class World:
    seed: int
    as_of: date
    customers: list[SeedCustomer]
    records: dict[SystemName, list[Record]] = field(default_factory=dict)
    discrepancies: list[Discrepancy] = field(default_factory=list)

    def slice(self, system: SystemName) -> list[Record]:
        return self.records.get(system, [])

    def manifest(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "as_of": self.as_of.isoformat(),
            "customers": [
                {
                    "id": c.id,
                    "name": c.name,
                    "currency": c.currency,
                    "plan": c.plan,
                    "legal_entity": c.legal_entity,
                    "external_ids": {s.value: x for s, x in c.external_ids.items()},
                }
                for c in self.customers
            ],
            "records": {s.value: [codec.to_json(r) for r in rs] for s, rs in self.records.items()},
            "discrepancies": [vars(d) for d in self.discrepancies],
        }


def _token(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _at(d: date, hour: int = 9) -> datetime:
    return datetime.combine(d, time(hour), tzinfo=UTC)


def _month_start(d: date, back: int) -> date:
    month = d.month - 1 - back
    return date(d.year + month // 12, month % 12 + 1, 1)


def plans() -> list[Plan]:
    return [
        Plan(
            system=SystemName.BILLING,
            id=f"price_{key}_{cur.lower()}",
            name=name,
            price=Money(amount, cur),
            interval=PlanInterval.MONTH,
            features=features,
            support_tier=tier,
            sla_hours=sla,
        )
        for key, (name, features, tier, sla, prices) in PLANS.items()
        for cur, amount in prices.items()
    ]


def generate(customers: int = 12, seed: int = 7, as_of: date | None = None) -> World:
    if customers < 1:
        raise ValueError("customers must be at least 1")
    rng = random.Random(seed)
    as_of = as_of or datetime.now(UTC).date().replace(day=1)
    world = World(
        seed=seed,
        as_of=as_of,
        customers=[],
        records={s: [] for s in SystemName if s is not SystemName.OPSGRAPH},
    )
    billing, erp = world.records[SystemName.BILLING], world.records[SystemName.ERP]
    crm, support = world.records[SystemName.CRM], world.records[SystemName.SUPPORT]
    billing.extend(plans())
    currencies = list(ENTITIES)
    for n in range(1, customers + 1):
        cid = f"cust_{n:04d}"
        currency = currencies[(n - 1) % len(currencies)]
        entity, tax_bp = ENTITIES[currency]
        plan_key = rng.choice(list(PLANS))
        name = f"{_NAMES[(n - 1) % len(_NAMES)]} {rng.choice(_SUFFIXES)}"
        if n > len(_NAMES):
            name += f" {n}"
        ids = {
            SystemName.BILLING: f"cus_{_token(rng, 14)}",
            SystemName.ERP: str(1000 + n),
            SystemName.CRM: f"001{_token(rng, 12)}AAA",
            SystemName.SUPPORT: str(360000000 + n * 17),
        }
        customer = SeedCustomer(cid, name, currency, entity, plan_key, ids)
        world.customers.append(customer)
        email = f"billing@{name.split()[0].lower()}{n}.example"
        billing.append(
            CustomerRecord(
                system=SystemName.BILLING,
                id=ids[SystemName.BILLING],
                name=name,
                ref=cid,
                email=email,
                currency=currency,
            )
        )
        erp.append(
            CustomerRecord(
                system=SystemName.ERP,
                id=ids[SystemName.ERP],
                name=name,
                ref=cid,
                email=email,
                currency=currency,
                legal_entity=entity,
            )
        )
        support.append(
            CustomerRecord(
                system=SystemName.SUPPORT, id=ids[SystemName.SUPPORT], name=name, ref=cid
            )
        )

        # Subscription and three monthly invoices: two paid, the newest open.
        price = PLANS[plan_key][4][currency]
        quantity = rng.randint(1, 12)
        sub_id = f"sub_{_token(rng, 14)}"
        billing.append(
            Subscription(
                system=SystemName.BILLING,
                id=sub_id,
                customer_id=ids[SystemName.BILLING],
                plan_id=f"price_{plan_key}_{currency.lower()}",
                quantity=quantity,
                status=SubscriptionStatus.ACTIVE,
                current_period_start=_at(as_of, 0),
                current_period_end=_at(_month_start(as_of, -1), 0),
            )
        )
        for back in (2, 1, 0):
            start = _month_start(as_of, back)
            subtotal = price * quantity
            tax = subtotal * tax_bp // 10000
            inv_id = f"in_{_token(rng, 14)}"
            paid = back > 0
            issued = _at(start)
            billing.append(
                Invoice(
                    system=SystemName.BILLING,
                    id=inv_id,
                    customer_id=ids[SystemName.BILLING],
                    number=f"OPS-{n:04d}-{3 - back:03d}",
                    status=InvoiceStatus.PAID if paid else InvoiceStatus.OPEN,
                    subtotal=Money(subtotal, currency),
                    tax=Money(tax, currency),
                    total=Money(subtotal + tax, currency),
                    issued_at=issued,
                    finalized_at=issued,
                    period_start=_at(start, 0),
                    period_end=_at(_month_start(as_of, back - 1), 0),
                    subscription_id=sub_id,
                )
            )
            if paid:
                billing.append(
                    Payment(
                        system=SystemName.BILLING,
                        id=f"pi_{_token(rng, 14)}",
                        customer_id=ids[SystemName.BILLING],
                        invoice_id=inv_id,
                        amount=Money(subtotal + tax, currency),
                        status=PaymentStatus.SUCCEEDED,
                        created_at=issued + timedelta(days=3),
                    )
                )
            erp.append(
                Posting(
                    system=SystemName.ERP,
                    id=str(5000 + len(erp)),
                    type=PostingType.INVOICE,
                    customer_id=ids[SystemName.ERP],
                    external_id=inv_id,
                    subsidiary=entity,
                    amount=Money(subtotal, currency),
                    tax=Money(tax, currency),
                    tran_date=start,
                    status=PostingState.PAID_IN_FULL if paid else PostingState.OPEN,
                    memo=f"OPS-{n:04d}-{3 - back:03d}",
                )
            )

        strategic = plan_key == "enterprise" or rng.random() < 0.2
        renewal = as_of + timedelta(days=rng.randint(10, 300))
        crm.append(
            Account(
                system=SystemName.CRM,
                id=ids[SystemName.CRM],
                name=name,
                ref=cid,
                segment=SEGMENTS[plan_key],
                owner=rng.choice(_OWNERS),
                strategic=strategic,
                renewal_date=renewal,
                health_score=rng.randint(40, 95),
            )
        )
        for k in range(rng.randint(0, 3)):
            created = _at(as_of - timedelta(days=rng.randint(1, 40)), 10 + k)
            support.append(
                Case(
                    system=SystemName.SUPPORT,
                    id=str(9000 + len(support)),
                    organization_id=ids[SystemName.SUPPORT],
                    subject=rng.choice(_SUBJECTS),
                    # Drawn as before the enums, so that every seed keeps its world.
                    priority=CasePriority(rng.choice(("low", "normal", "high", "urgent"))),
                    status=CaseStatus(rng.choice(("new", "open", "pending", "solved"))),
                    created_at=created,
                    updated_at=created + timedelta(hours=rng.randint(1, 72)),
                )
            )

    _plant(world, rng)
    return world


def _plant(world: World, rng: random.Random) -> None:
    """Plant one of each discrepancy on distinct invoices, and an SLA breach on a strategic
    account near renewal. Deterministic because ``rng`` is."""
    erp = world.records[SystemName.ERP]
    postings = [p for p in erp if isinstance(p, Posting)]
    victims = rng.sample(postings, k=min(len(DISCREPANCIES), len(postings)))
    by_erp_id = {c.external_ids[SystemName.ERP]: c for c in world.customers}
    for kind, posting in zip(DISCREPANCIES, victims, strict=False):
        customer = by_erp_id[posting.customer_id]
        i = erp.index(posting)
        if kind == "missing_posting":
            del erp[i]
            detail = f"invoice {posting.memo} was never posted to the ERP"
        elif kind == "duplicate_posting":
            erp.insert(i + 1, replace(posting, id=str(5000 + len(erp) + 100)))
            detail = f"invoice {posting.memo} is posted twice"
        elif kind == "amount_mismatch":
            delta = 10 ** max(0, exponent(posting.amount.currency))  # one major unit
            erp[i] = replace(posting, amount=posting.amount + Money(delta, posting.amount.currency))
            detail = f"ERP amount {erp[i].amount} differs from billing {posting.amount}"  # type: ignore[attr-defined]
        elif kind == "tax_mismatch":
            cents = 7 * 10 ** max(0, exponent(posting.tax.currency) - 1)
            erp[i] = replace(posting, tax=posting.tax + Money(cents, posting.tax.currency))
            detail = f"ERP tax {erp[i].tax} differs from billing {posting.tax}"  # type: ignore[attr-defined]
        else:  # wrong_period
            erp[i] = replace(posting, tran_date=_month_start(posting.tran_date, -1))
            detail = f"posted in {erp[i].tran_date:%Y-%m} instead of {posting.tran_date:%Y-%m}"  # type: ignore[attr-defined]
        world.discrepancies.append(Discrepancy(kind, customer.id, posting.external_id, detail))

    # The SLA breach that matters most: a strategic account renewing within 30 days.
    accounts = [a for a in world.records[SystemName.CRM] if isinstance(a, Account)]
    target = rng.choice(accounts)
    i = world.records[SystemName.CRM].index(target)
    world.records[SystemName.CRM][i] = replace(
        target, strategic=True, renewal_date=world.as_of + timedelta(days=21)
    )
    customer = next(c for c in world.customers if c.external_ids[SystemName.CRM] == target.id)
    support = world.records[SystemName.SUPPORT]
    created = _at(world.as_of - timedelta(days=2), 8)
    case = Case(
        system=SystemName.SUPPORT,
        id=str(9000 + len(support)),
        organization_id=customer.external_ids[SystemName.SUPPORT],
        subject="Production outage: API unavailable",
        priority=CasePriority.URGENT,
        status=CaseStatus.OPEN,
        created_at=created,
        updated_at=created + timedelta(hours=9),
        sla_breached=True,
    )
    support.append(case)
    support.append(
        SlaBreach(
            system=SystemName.SUPPORT,
            id=f"{case.id}-breach",
            case_id=case.id,
            metric="reply_time",
            breached_at=created + timedelta(hours=4),
        )
    )
    world.discrepancies.append(
        Discrepancy(
            "sla_breach_strategic_renewal",
            customer.id,
            None,
            f"urgent case {case.id} breached its SLA; strategic account renews in 21 days",
        )
    )
