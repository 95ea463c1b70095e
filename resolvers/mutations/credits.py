"""Service credits: request, approve, reject (``gateway.writes.credits``)."""

from __future__ import annotations

import strawberry

from connectors import codec
from connectors.models import (
    CreditRequest,
)
from connectors.money import Money, MoneyError
from gateway.auth.scopes import Scope, needs
from gateway.workflows.engine import RunView
from gateway.writes.idempotency import Claim
from gateway.writes.pipeline import Answer
from resolvers.context import Info
from resolvers.credit import CreditRequestType
from resolvers.mutations.common import (
    IdempotencyKey,
    InvalidField,
    UserErrorType,
    governed,
    identity_of,
    principal_of,
    user_errors,
)
from resolvers.workflow import WorkflowRunType


@strawberry.input(description="An amount of money: major units as a decimal string.")
class MoneyInput:
    amount: str = strawberry.field(description='e.g. "12.34" USD, "1200" JPY, "1.250" KWD.')
    currency: str = strawberry.field(description="ISO 4217 code.")


@strawberry.input(description="A service credit for a case whose SLA was breached.")
class RequestCreditInput:
    customer_id: strawberry.ID
    case_id: strawberry.ID
    amount: MoneyInput
    reason: str


@strawberry.type(description="A write to a service credit request.")
class CreditPayload:
    credit: CreditRequestType | None
    workflow_run: WorkflowRunType | None = strawberry.field(
        description="The run posting an approved credit: what the ERP and billing answered."
    )
    user_errors: list[UserErrorType]


def _credit_answer(credit: CreditRequest, run: RunView | None) -> Answer:
    """What a credit write stores: the credit and its run as it answered (a replay answers
    them again, reading nothing else)."""
    stored_run = None if run is None else WorkflowRunType.of(run).stored()
    return {"credit": codec.to_json(credit), "run": stored_run, "userErrors": []}


def _credit_payload(answer: Answer) -> CreditPayload:
    credit = run = None
    if (stored := answer.get("credit")) is not None:
        record = codec.from_json(stored)
        if not isinstance(record, CreditRequest):
            raise TypeError(f"stored a {type(record).__name__}, not a CreditRequest")
        credit = CreditRequestType.of(record)
    if (stored_run := answer.get("run")) is not None:
        run = WorkflowRunType.restored(stored_run)
    return CreditPayload(credit=credit, workflow_run=run, user_errors=user_errors(answer))


def _money(given: MoneyInput) -> Money:
    try:
        return Money.of(given.amount, given.currency)
    except MoneyError as error:
        raise InvalidField("amount", str(error)) from None


@strawberry.type
class CreditMutation:
    @strawberry.federation.field(
        description="Ask for a service credit for a breached case; policy decides whether "
        "finance must approve it.",
        requires_scopes=needs(Scope.CREDITS_REQUEST),
    )
    async def request_credit(
        self, info: Info, input: RequestCreditInput, idempotency_key: IdempotencyKey
    ) -> CreditPayload:
        async def act(claim: Claim) -> Answer:
            amount = _money(input.amount)
            identity = await identity_of(info, str(input.customer_id))
            credits = info.context.services.credits
            credit, run = await credits.request(
                principal_of(info), identity, str(input.case_id), amount, input.reason
            )
            return _credit_answer(credit, run)

        return _credit_payload(await governed(info, idempotency_key, input, act))

    @strawberry.federation.field(
        description="Approve a requested credit (not your own): the ERP posts its credit memo "
        "before this answers.",
        requires_scopes=needs(Scope.CREDITS_APPROVE),
    )
    async def approve_credit(
        self,
        info: Info,
        id: strawberry.ID,
        comment: str | None = None,
        *,
        idempotency_key: IdempotencyKey,
    ) -> CreditPayload:
        async def act(claim: Claim) -> Answer:
            credit, run = await info.context.services.credits.approve(principal_of(info), str(id))
            return _credit_answer(credit, run)

        arguments = {"id": str(id), "comment": comment}
        return _credit_payload(await governed(info, idempotency_key, arguments, act))

    @strawberry.federation.field(
        description="Reject a requested credit (not your own).",
        requires_scopes=needs(Scope.CREDITS_APPROVE),
    )
    async def reject_credit(
        self, info: Info, id: strawberry.ID, reason: str, idempotency_key: IdempotencyKey
    ) -> CreditPayload:
        async def act(claim: Claim) -> Answer:
            credit = await info.context.services.credits.reject(principal_of(info), str(id))
            return _credit_answer(credit, None)

        arguments = {"id": str(id), "reason": reason}
        return _credit_payload(await governed(info, idempotency_key, arguments, act))
