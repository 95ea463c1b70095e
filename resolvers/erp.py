from __future__ import annotations

from datetime import date
from enum import Enum
from typing import Any

import strawberry

from connectors.models import Balance, Posting
from connectors.models import PostingType as PostingKind
from gateway.reads import Sourced
from resolvers.money import MoneyType
from resolvers.provenance import ProvenanceType

PostingKindEnum = strawberry.enum(PostingKind, name="PostingKind")


@strawberry.type(name="Posting", description="A financial posting in the ERP.")
class PostingType:
    id: strawberry.ID
    kind: PostingKindEnum  # type: ignore[valid-type]
    external_id: str | None = strawberry.field(
        description="The billing invoice (or credit request) this posts."
    )
    subsidiary: str
    amount: MoneyType
    tax: MoneyType
    tran_date: date
    status: str
    memo: str | None
    source: ProvenanceType

    @classmethod
    def of(cls, p: Posting, sourced: Sourced[Any]) -> PostingType:
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


@strawberry.type(name="Balance", description="The receivable balance the ERP holds.")
class BalanceType:
    receivable: MoneyType
    source: ProvenanceType

    @classmethod
    def of(cls, sourced: Sourced[Any]) -> BalanceType:
        b: Balance = sourced.value
        return cls(receivable=MoneyType.of(b.receivable), source=ProvenanceType.of(sourced))


@strawberry.enum(description="How a billing invoice stands in the ERP.")
class PostingStatusEnum(Enum):
    POSTED = "posted"
    MISSING = "missing"
    DUPLICATE = "duplicate"
    MISMATCH = "mismatch"
    MISDATED = "misdated"
