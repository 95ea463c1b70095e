"""Writes to the crosswalk, which opsgraph owns: which ids are one customer."""

from __future__ import annotations

import strawberry

from gateway.auth.scopes import Scope, needs
from gateway.writes.idempotency import Claim
from gateway.writes.pipeline import Answer
from resolvers.context import Info
from resolvers.customer import CustomerType
from resolvers.enums import SystemName
from resolvers.mutations.common import (
    IdempotencyKey,
    UserErrorType,
    governed,
    identity_of,
    user_errors,
)


@strawberry.input(description="One customer's id in one system of record.")
class ExternalIdInput:
    customer_id: strawberry.ID
    system: SystemName
    external_id: str


@strawberry.input(description="The system whose id a customer should forget.")
class UnlinkExternalIdInput:
    customer_id: strawberry.ID
    system: SystemName


@strawberry.type(description="A write to the crosswalk, which opsgraph owns.")
class CrosswalkPayload:
    customer: CustomerType | None = strawberry.field(
        description="The customer, as its identity is now."
    )
    user_errors: list[UserErrorType]


async def _crosswalk_payload(info: Info, answer: Answer) -> CrosswalkPayload:
    customer = None
    if (id_ := answer.get("customerId")) is not None:
        # Read again, past the request's loader, which holds the identity before the write.
        principal = info.context.principal
        entities = frozenset() if principal is None else principal.entities
        (identity,) = await info.context.services.crosswalk.get_many([id_], entities=entities)
        customer = None if identity is None else CustomerType.of(identity)
    return CrosswalkPayload(customer=customer, user_errors=user_errors(answer))


@strawberry.type
class CrosswalkMutation:
    @strawberry.federation.field(
        description="Record that a customer is an id in a system of record.",
        requires_scopes=needs(Scope.CROSSWALK_WRITE),
    )
    async def link_external_id(
        self,
        info: Info,
        input: ExternalIdInput,
        idempotency_key: IdempotencyKey,
    ) -> CrosswalkPayload:
        async def act(claim: Claim) -> Answer:
            identity = await identity_of(info, str(input.customer_id))
            crosswalk = info.context.services.crosswalk
            await crosswalk.attach(identity.id, input.system, input.external_id)
            return {"customerId": identity.id, "userErrors": []}

        return await _crosswalk_payload(info, await governed(info, idempotency_key, input, act))

    @strawberry.federation.field(
        description="Forget a customer's id in a system of record.",
        requires_scopes=needs(Scope.CROSSWALK_WRITE),
    )
    async def unlink_external_id(
        self,
        info: Info,
        input: UnlinkExternalIdInput,
        idempotency_key: IdempotencyKey,
    ) -> CrosswalkPayload:
        async def act(claim: Claim) -> Answer:
            identity = await identity_of(info, str(input.customer_id))
            await info.context.services.crosswalk.detach(identity.id, input.system)
            return {"customerId": identity.id, "userErrors": []}

        return await _crosswalk_payload(info, await governed(info, idempotency_key, input, act))
