from __future__ import annotations

from datetime import date
from typing import Any

import strawberry

from connectors.models import Account
from gateway.reads import Sourced
from resolvers.provenance import ProvenanceType


@strawberry.type(name="Account", description="The commercial account, owned by the CRM.")
class AccountType:
    id: strawberry.ID
    name: str
    segment: str | None
    owner: str | None
    strategic: bool
    renewal_date: date | None
    health_score: int | None
    source: ProvenanceType

    @classmethod
    def of(cls, sourced: Sourced[Any]) -> AccountType:
        a: Account = sourced.value
        return cls(
            id=strawberry.ID(a.id),
            name=a.name,
            segment=a.segment,
            owner=a.owner,
            strategic=a.strategic,
            renewal_date=a.renewal_date,
            health_score=a.health_score,
            source=ProvenanceType.of(sourced),
        )
