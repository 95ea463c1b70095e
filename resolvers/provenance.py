from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.data.reads import Sourced
from resolvers.enums import SystemName


@strawberry.type(name="Provenance", description="Where a piece of the answer came from.")
class ProvenanceType:
    system: SystemName
    external_id: str = strawberry.field(description="Its id in that system.")
    fetched_at: datetime = strawberry.field(description="When opsgraph read it from there.")
    cached: bool = strawberry.field(description="Served from opsgraph's cache.")
    stale: bool = strawberry.field(
        description="Past its freshness window: served because the owner did not answer."
    )

    @classmethod
    def of(cls, sourced: Sourced[object], external_id: str | None = None) -> ProvenanceType:
        """Where ``sourced`` came from; ``external_id`` names one record of a list."""
        return cls(
            system=sourced.system,
            external_id=external_id or sourced.external_id,
            fetched_at=sourced.fetched_at,
            cached=sourced.cached,
            stale=sourced.stale,
        )
