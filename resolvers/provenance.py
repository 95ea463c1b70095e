from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from gateway.reads import Sourced
from resolvers.enums import SystemNameEnum


@strawberry.type(name="Provenance", description="Where a piece of the answer came from.")
class ProvenanceType:
    system: SystemNameEnum  # type: ignore[valid-type]
    external_id: str = strawberry.field(description="Its id in that system.")
    fetched_at: datetime = strawberry.field(description="When opsgraph read it from there.")
    cached: bool = strawberry.field(description="Served from opsgraph's cache.")
    stale: bool = strawberry.field(
        description="Past its freshness window: served because the owner did not answer."
    )

    @classmethod
    def of(cls, sourced: Sourced[Any], external_id: str | None = None) -> ProvenanceType:
        return cls(
            system=sourced.system,
            external_id=external_id or sourced.external_id,
            fetched_at=sourced.fetched_at,
            cached=sourced.cached,
            stale=sourced.stale,
        )
