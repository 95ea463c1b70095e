"""Support cases, owned by the support desk."""

from __future__ import annotations

from datetime import datetime

import strawberry

from connectors.models import Case
from gateway.auth.scopes import Scope, needs
from gateway.data.reads import Sourced
from resolvers.enums import CasePriority, CaseStatus
from resolvers.provenance import ProvenanceType


@strawberry.federation.type(
    name="Case",
    description="A support case (ticket), owned by the support desk.",
    requires_scopes=needs(Scope.CASES_READ),
)
class CaseType:
    id: strawberry.ID
    subject: str
    priority: CasePriority
    status: CaseStatus
    created_at: datetime
    updated_at: datetime
    sla_breached: bool
    source: ProvenanceType

    @classmethod
    def of(cls, c: Case, sourced: Sourced[list[Case]]) -> CaseType:
        return cls(
            id=strawberry.ID(c.id),
            subject=c.subject,
            priority=c.priority,
            status=c.status,
            created_at=c.created_at,
            updated_at=c.updated_at,
            sla_breached=c.sla_breached,
            source=ProvenanceType.of(sourced, c.id),
        )
