"""Billing invoices and how each stands in the ERP: its postings, the match between them,
and the receivable balance the ERP holds."""

from __future__ import annotations

import asyncio
from datetime import date, datetime

import strawberry

from connectors.models import Balance, Invoice, Posting
from gateway.auth.scopes import Scope, needs
from gateway.data.reads import Sourced
from gateway.rules.matching import match, postings_for
from resolvers.context import Info
from resolvers.enums import InvoiceStatus, PostingKind, PostingMatch, PostingState
from resolvers.money import MoneyType
from resolvers.provenance import ProvenanceType


@strawberry.federation.type(
    name="Posting",
    description="A financial posting in the ERP.",
    requires_scopes=needs(Scope.FINANCE_READ),
)
class PostingType:
    id: strawberry.ID
    kind: PostingKind
    external_id: str | None = strawberry.field(
        description="The billing invoice (or credit request) this posts."
    )
    subsidiary: str
    amount: MoneyType
    tax: MoneyType
    tran_date: date
    status: PostingState
    memo: str | None
    source: ProvenanceType

    @classmethod
    def of(cls, p: Posting, sourced: Sourced[object]) -> PostingType:
        return cls(
            id=strawberry.ID(p.id),
            kind=p.type,
            external_id=p.external_id,
            subsidiary=p.subsidiary,
            amount=MoneyType.of(p.amount),
            tax=MoneyType.of(p.tax),
            tran_date=p.tran_date,
            status=p.status,
            memo=p.memo,
            source=ProvenanceType.of(sourced, p.id),
        )


@strawberry.federation.type(
    name="Balance",
    description="The receivable balance the ERP holds.",
    requires_scopes=needs(Scope.FINANCE_READ),
)
class BalanceType:
    receivable: MoneyType
    source: ProvenanceType

    @classmethod
    def of(cls, balance: Balance, sourced: Sourced[Balance | None]) -> BalanceType:
        return cls(receivable=MoneyType.of(balance.receivable), source=ProvenanceType.of(sourced))


Matched = tuple[list[PostingType], PostingMatch | None]


@strawberry.federation.type(
    name="Invoice",
    description="A billing invoice and how it stands in the ERP.",
    requires_scopes=needs(Scope.BILLING_READ),
)
class InvoiceType:
    id: strawberry.ID
    number: str | None
    status: InvoiceStatus
    subtotal: MoneyType
    tax: MoneyType
    total: MoneyType
    issued_at: datetime = strawberry.field(description="When it was made (Stripe's created).")
    finalized_at: datetime | None = strawberry.field(
        description="When it was finalised: the accounting period it counts in, and the one "
        "its ERP posting is compared with. Null while it is a draft."
    )
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
        sourced = await info.context.loaders.postings(self.erp_customer_id)
        mine = postings_for(self.invoice, sourced.value)
        return [PostingType.of(p, sourced) for p in mine], match(self.invoice, mine)

    @strawberry.federation.field(
        description="The ERP posting of this invoice (the first, if several).",
        requires_scopes=needs(Scope.FINANCE_READ),
    )
    async def posting(self, info: Info) -> PostingType | None:
        postings, _ = await self._postings(info)
        return postings[0] if postings else None

    @strawberry.federation.field(
        description="Every ERP posting that carries this invoice's id.",
        requires_scopes=needs(Scope.FINANCE_READ),
    )
    async def postings(self, info: Info) -> list[PostingType] | None:
        return (await self._postings(info))[0]

    @strawberry.federation.field(
        description="How the ERP's postings compare with this invoice; null when the "
        "customer has no ERP record.",
        requires_scopes=needs(Scope.FINANCE_READ),
    )
    async def posting_status(self, info: Info) -> PostingMatch | None:
        return (await self._postings(info))[1]

    @classmethod
    def of(cls, i: Invoice, sourced: Sourced[object], erp_customer_id: str | None) -> InvoiceType:
        return cls(
            id=strawberry.ID(i.id),
            number=i.number,
            status=i.status,
            subtotal=MoneyType.of(i.subtotal),
            tax=MoneyType.of(i.tax),
            total=MoneyType.of(i.total),
            issued_at=i.issued_at,
            finalized_at=i.finalized_at,
            period_start=i.period_start,
            period_end=i.period_end,
            source=ProvenanceType.of(sourced, i.id),
            invoice=i,
            erp_customer_id=erp_customer_id,
        )
