"""Writes to billing subscriptions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import strawberry

from connectors.commands import (
    CancelSubscription,
    ChangeSubscriptionPlan,
    WriteCommand,
    WriteResult,
)
from connectors.models import (
    ObjectKind,
    Plan,
    Subscription,
    SubscriptionStatus,
)
from gateway.auth.scopes import Scope, needs
from gateway.data.reads import settled
from gateway.logs import quoted
from gateway.writes.idempotency import Claim
from gateway.writes.pipeline import Answer, Writes
from resolvers.context import Info
from resolvers.enums import Proration, SystemName
from resolvers.mutations.common import (
    IdempotencyKey,
    InvalidField,
    UserErrorType,
    governed,
    identity_of,
    listed,
    record_answer,
    record_of,
    user_errors,
)
from resolvers.subscription import SubscriptionType


@strawberry.input(description="Another plan for one of a customer's subscriptions.")
class ChangeSubscriptionPlanInput:
    customer_id: strawberry.ID
    subscription_id: strawberry.ID
    plan_id: strawberry.ID
    proration: Proration = strawberry.field(
        default=Proration.CREATE_PRORATIONS,
        description="How the rest of the current period is billed.",
    )


@strawberry.input(description="One of a customer's subscriptions to end.")
class CancelSubscriptionInput:
    customer_id: strawberry.ID
    subscription_id: strawberry.ID
    at_period_end: bool = strawberry.field(
        description="End it when its paid period runs out (it stays active until then); false: now."
    )


@strawberry.type(description="A write to a subscription.")
class SubscriptionPayload:
    subscription: SubscriptionType | None = strawberry.field(
        description="The subscription as billing answered."
    )
    user_errors: list[UserErrorType]


def _subscription_payload(answer: Answer) -> SubscriptionPayload:
    subscription = None
    if (stored := answer.get("subscription")) is not None:
        record, sourced = record_of(stored, Subscription)
        subscription = SubscriptionType.of(record, listed(sourced))
    return SubscriptionPayload(subscription=subscription, user_errors=user_errors(answer))


async def _subscription_write(
    info: Info,
    key: str,
    input: ChangeSubscriptionPlanInput | CancelSubscriptionInput,
    command: Callable[[Subscription], Awaitable[WriteCommand]],
) -> SubscriptionPayload:
    """A write to one of the customer's subscriptions, in billing: ``command`` says what,
    given the subscription as billing has it now."""

    async def act(claim: Claim) -> Answer:
        writes = info.context.services.writes
        writes.ownership.check_write(ObjectKind.SUBSCRIPTION, SystemName.BILLING)
        customer, subscription = await _subscription_of(info, input)
        result = await writes.send(claim, await command(subscription), to=SystemName.BILLING)
        return await _subscription_answer(writes, customer, result)

    return _subscription_payload(await governed(info, key, input, act))


async def _subscription_of(
    info: Info, input: ChangeSubscriptionPlanInput | CancelSubscriptionInput
) -> tuple[str, Subscription]:
    """The customer's billing id and the subscription the input names, which must be its."""
    identity = await identity_of(info, str(input.customer_id))
    customer = identity.external_ids.get(SystemName.BILLING)
    found = None
    if customer is not None:
        reader = info.context.services.writes.reader
        (read,) = await reader.related(ObjectKind.SUBSCRIPTION, [customer], Subscription)
        found = next((s for s in settled(read).value if s.id == input.subscription_id), None)
    if customer is None or found is None:
        raise InvalidField(
            "subscriptionId",
            f"{identity.id} has no subscription {quoted(input.subscription_id)}",
        )
    return customer, found


async def _subscription_answer(writes: Writes, customer: str, result: WriteResult) -> Answer:
    """What a subscription write stores; the caches of the customer's subscriptions and
    invoices (a plan change may bill prorations) are dropped."""
    await writes.reader.invalidate(ObjectKind.SUBSCRIPTION, result.id, parent=customer)
    await writes.reader.invalidate(ObjectKind.INVOICE, None, parent=customer)
    written = result.record if isinstance(result.record, Subscription) else None
    kept = None
    if written is not None:
        kept = record_answer(written, SystemName.BILLING, datetime.now(UTC))
    return {"subscription": kept, "userErrors": []}


@strawberry.type
class SubscriptionMutation:
    @strawberry.federation.field(
        description="Move a customer's subscription to another plan in billing, which owns "
        "subscriptions.",
        requires_scopes=needs(Scope.SUBSCRIPTIONS_WRITE),
    )
    async def change_subscription_plan(
        self, info: Info, input: ChangeSubscriptionPlanInput, idempotency_key: IdempotencyKey
    ) -> SubscriptionPayload:
        async def command(subscription: Subscription) -> WriteCommand:
            reader = info.context.services.writes.reader
            plans = settled(await reader.catalog(ObjectKind.PLAN, Plan)).value
            if input.plan_id not in {p.id for p in plans}:
                raise InvalidField("planId", f"no plan {quoted(input.plan_id)} in the catalog")
            if subscription.plan_id == input.plan_id:
                raise InvalidField("planId", f"{subscription.id} is on {input.plan_id} already")
            return ChangeSubscriptionPlan(
                subscription_id=subscription.id, plan_id=input.plan_id, proration=input.proration
            )

        return await _subscription_write(info, idempotency_key, input, command)

    @strawberry.federation.field(
        description="End a customer's subscription in billing, now or at the end of its "
        "paid period.",
        requires_scopes=needs(Scope.SUBSCRIPTIONS_WRITE),
    )
    async def cancel_subscription(
        self, info: Info, input: CancelSubscriptionInput, idempotency_key: IdempotencyKey
    ) -> SubscriptionPayload:
        async def command(subscription: Subscription) -> WriteCommand:
            if subscription.status is SubscriptionStatus.CANCELED:
                raise InvalidField("subscriptionId", f"{subscription.id} is canceled already")
            return CancelSubscription(
                subscription_id=subscription.id, at_period_end=input.at_period_end
            )

        return await _subscription_write(info, idempotency_key, input, command)
