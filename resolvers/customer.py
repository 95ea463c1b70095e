from __future__ import annotations

import strawberry

from connectors.models import SystemName
from gateway.crosswalk import CustomerIdentity
from gateway.errors import NotFound
from resolvers.context import Info
from resolvers.enums import SystemNameEnum


@strawberry.type(name="ExternalId", description="This customer's id in one system of record.")
class ExternalIdType:
    system: SystemNameEnum  # type: ignore[valid-type]
    id: str


@strawberry.federation.type(name="Customer", keys=["id"])
class CustomerType:
    id: strawberry.ID
    name: str
    external_ids: list[ExternalIdType]

    @classmethod
    def of(cls, identity: CustomerIdentity) -> CustomerType:
        return cls(
            id=strawberry.ID(identity.id),
            name=identity.name,
            external_ids=[
                ExternalIdType(system=system, id=external_id)
                for system, external_id in sorted(identity.external_ids.items())
            ],
        )


@strawberry.type
class CustomerQuery:
    @strawberry.field(description="One customer by its opsgraph id.")
    async def customer(self, info: Info, id: strawberry.ID) -> CustomerType:
        (identity,) = await info.context.services.crosswalk.get_many([str(id)])
        if identity is None:
            raise NotFound(f"no customer with id {id!r}")
        return CustomerType.of(identity)

    @strawberry.field(description="One customer by its id in a system of record.")
    async def customer_by_external_id(
        self,
        info: Info,
        system: SystemNameEnum,  # type: ignore[valid-type]
        external_id: str,
    ) -> CustomerType:
        identity = await info.context.services.crosswalk.by_external_id(
            SystemName(system), external_id
        )
        if identity is None:
            raise NotFound(f"no customer is {external_id!r} in {SystemName(system).value}")
        return CustomerType.of(identity)
