from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import strawberry

from connectors.models import Entitlement, Invoice, ObjectKind, Plan, Subscription, SystemName
from gateway.matching import posting_status, postings_for
from gateway.reads import Sourced
from resolvers.context import Info
from resolvers.erp import PostingStatusEnum, PostingType
from resolvers.money import MoneyType
from resolvers.provenance import ProvenanceType


@strawberry.type(name="Plan", description="A plan in the billing catalog.")
class PlanType:
    id: strawberry.ID
    name: str
    price: MoneyType
    interval: str
    features: list[str]
    support_tier: str
    sla_hours: int
    source: ProvenanceType

    @classmethod
    def of(cls, sourced: Sourced[Any]) -> PlanType:
        p: Plan = sourced.value
        return cls(
            id=strawberry.ID(p.id),
            name=p.name,
            price=MoneyType.of(p.price),
            interval=p.interval,
            features=list(p.features),
            support_tier=p.support_tier,
            sla_hours=p.sla_hours,
            source=ProvenanceType.of(sourced),
        )


async def load_plan(info: Info, plan_id: str) -> PlanType | None:
    sourced = await info.context.loaders.record(SystemName.BILLING, ObjectKind.PLAN, plan_id)
    return None if sourced.value is None else PlanType.of(sourced)


@strawberry.type(
    name="CustomerSubscription", description="A subscription, owned by the billing system."
)
class CustomerSubscription:
    id: strawberry.ID
    status: str
    quantity: int
    current_period_start: datetime
    current_period_end: datetime
    source: ProvenanceType
    plan_id: strawberry.Private[str]

    @strawberry.field
    async def plan(self, info: Info) -> PlanType | None:
        return await load_plan(info, self.plan_id)

    @classmethod
    def of(cls, s: Subscription, sourced: Sourced[Any]) -> CustomerSubscription:
        return cls(
            id=strawberry.ID(s.id),
            status=s.status,
            quantity=s.quantity,
            current_period_start=s.current_period_start,
            current_period_end=s.current_period_end,
            source=ProvenanceType.of(sourced, s.id),
            plan_id=s.plan_id,
        )


@strawberry.type(name="Entitlement", description="A feature the customer may use now.")
class EntitlementType:
    feature: str
    plan_id: strawberry.ID
    support_tier: str
    sla_hours: int
    source: ProvenanceType

    @classmethod
    def of(cls, e: Entitlement, source: ProvenanceType) -> EntitlementType:
        return cls(
            feature=e.feature,
            plan_id=strawberry.ID(e.plan_id),
            support_tier=e.support_tier,
            sla_hours=e.sla_hours,
            source=source,
        )


Matched = tuple[list[PostingType], PostingStatusEnum | None]


@strawberry.type(name="Invoice", description="A billing invoice and how it stands in the ERP.")
class InvoiceType:
    id: strawberry.ID
    number: str | None
    status: str
    subtotal: MoneyType
    tax: MoneyType
    total: MoneyType
    issued_at: datetime
    period_start: datetime | None
    period_end: datetime | None
    source: ProvenanceType
    invoice: strawberry.Private[Invoice]
    erp_customer_id: strawberry.Private[str | None]
    # posting, postings and postingStatus resolve concurrently from one match per invoice
    matched: strawberry.Private[asyncio.Future[Matched] | None] = None

    async def _postings(self, info: Info) -> Matched:
        if self.matched is None:
            self.matched = asyncio.ensure_future(self._match(info))
        return await self.matched

    async def _match(self, info: Info) -> Matched:
        if self.erp_customer_id is None:
            return [], None
        sourced = await info.context.loaders.related(
            SystemName.ERP, ObjectKind.POSTING, self.erp_customer_id
        )
        mine = postings_for(self.invoice, sourced.value)
        status = PostingStatusEnum(posting_status(self.invoice, mine).value)
        return [PostingType.of(p, sourced) for p in mine], status

    @strawberry.field(description="The ERP posting of this invoice (the first, if several).")
    async def posting(self, info: Info) -> PostingType | None:
        postings, _ = await self._postings(info)
        return postings[0] if postings else None

    @strawberry.field(description="Every ERP posting that carries this invoice's id.")
    async def postings(self, info: Info) -> list[PostingType] | None:
        return (await self._postings(info))[0]

    @strawberry.field(description="Null when the customer has no ERP record.")
    async def posting_status(self, info: Info) -> PostingStatusEnum | None:
        return (await self._postings(info))[1]

    @classmethod
    def of(cls, i: Invoice, sourced: Sourced[Any], erp_customer_id: str | None) -> InvoiceType:
        return cls(
            id=strawberry.ID(i.id),
            number=i.number,
            status=i.status,
            subtotal=MoneyType.of(i.subtotal),
            tax=MoneyType.of(i.tax),
            total=MoneyType.of(i.total),
            issued_at=i.issued_at,
            period_start=i.period_start,
            period_end=i.period_end,
            source=ProvenanceType.of(sourced, i.id),
            invoice=i,
            erp_customer_id=erp_customer_id,
        )


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class InvoiceEdge:
    cursor: str
    node: InvoiceType


@strawberry.type
class InvoiceConnection:
    edges: list[InvoiceEdge]
    page_info: PageInfo
    total_count: int
