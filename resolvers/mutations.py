"""Governed writes: every mutation names the object it changes, takes an idempotency key,
and goes through ``gateway.writes.pipeline``: the key is claimed for the principal, the write
goes to the system that owns the object, the answer is stored under the key (a replay is
marked in ``extensions.idempotency``) and audited, and the cache forgets what changed.

A payload carries the changed object, with its provenance, and ``userErrors``: refusals that
trying again cannot change (bad input, an unknown object, a write aimed at a system that
does not own it, the owner saying no). An outcome that is not known (a timeout, a system
down) is a GraphQL error with its code instead, and the key may be sent again.

What a key stores is the payload's data, so a replay answers what the first request
answered: the account as the CRM had it then; a customer, whose identity opsgraph owns, as
it is now.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any, TypeVar

import strawberry
from strawberry.utils.str_converters import to_camel_case

from connectors import codec
from connectors.commands import (
    CancelSubscription,
    ChangeSubscriptionPlan,
    EscalateCase,
    UpdateAccountHealth,
    WriteCommand,
    WriteResult,
)
from connectors.errors import GatewayError
from connectors.models import (
    Account,
    Case,
    CasePriority,
    CreditRequest,
    ObjectKind,
    Plan,
    Record,
    Subscription,
    SubscriptionStatus,
)
from connectors.money import Money, MoneyError
from gateway import request_scope
from gateway.auth.principal import Principal
from gateway.auth.scopes import Scope, needs
from gateway.data.reads import Reader, Sourced
from gateway.errors import BadUserInput, NotFound, Unauthenticated
from gateway.logs import quoted
from gateway.workflows.engine import RunView
from gateway.writes.idempotency import Claim
from gateway.writes.pipeline import Answer, Writes, user_error
from resolvers.case import CaseType
from resolvers.context import Info
from resolvers.credit import CreditRequestType
from resolvers.customer import AccountType, CustomerType
from resolvers.enums import Proration, SystemName
from resolvers.subscription import SubscriptionType
from resolvers.workflow import WorkflowRunType

R = TypeVar("R", bound=Record)

IdempotencyKey = Annotated[
    str,
    strawberry.argument(
        description="1-255 characters chosen by the client, one per intended write: the same "
        "key and input answer the first request's answer again without doing anything twice."
    ),
]


@strawberry.type(
    name="UserError", description="Why a write was refused, in words for the person asking."
)
class UserErrorType:
    code: str = strawberry.field(description="BAD_USER_INPUT, NOT_FOUND, CONFLICT, ...")
    message: str
    field: str | None = strawberry.field(description="The input field it is about, if one.")
    system: SystemName | None = strawberry.field(description="The system that refused, if one.")


def _user_errors(answer: Answer) -> list[UserErrorType]:
    return [
        UserErrorType(
            code=e["code"],
            message=e["message"],
            field=e.get("field"),
            system=None if e.get("system") is None else SystemName(e["system"]),
        )
        for e in answer.get("userErrors", ())
    ]


def _refused(error: GatewayError) -> Answer:
    return {"userErrors": [user_error(error, getattr(error, "field", None))]}


class InvalidField(BadUserInput):
    """Bad input, naming the input field it is about."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _plain(value: Any) -> Any:
    """An input as JSON: what an idempotency key's fingerprint is taken of."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # In the names the client sent: the audit log shows them.
        return {
            to_camel_case(f.name): _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


async def _governed(
    info: Info, key: str, input_: object, act: Callable[[Claim], Awaitable[Answer]]
) -> Answer:
    """``act`` through the write pipeline, once for ``key``."""
    principal = _principal(info)
    operation = info.field_name
    outcome = await info.context.services.writes.run(
        principal, key, operation, {"input": _plain(input_)}, act, refused=_refused
    )
    request = request_scope.current()
    if outcome.replayed and request is not None:
        request.replays.append({"path": [info.path.key], "key": key, "replayed": True})
    return outcome.answer


async def _identity_of(info: Info, customer_id: str) -> Any:
    """The customer's identity, as the principal may see it (another legal entity's
    customer is not found, as in reads)."""
    identity = await info.context.loaders.customer(customer_id)
    if identity is None:
        raise InvalidField("customerId", f"no customer with id {quoted(customer_id)}")
    return identity


# -- the crosswalk ---------------------------------------------------------------------------


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
    return CrosswalkPayload(customer=customer, user_errors=_user_errors(answer))


# -- the CRM ---------------------------------------------------------------------------------


@strawberry.input(description="A customer's health score, kept by the CRM.")
class AccountHealthInput:
    customer_id: strawberry.ID
    score: int = strawberry.field(description="0 to 100.")


@strawberry.type(description="A write to a CRM account.")
class AccountPayload:
    account: AccountType | None = strawberry.field(
        description="The account as the CRM answered after the write (null if it did not)."
    )
    user_errors: list[UserErrorType]


def _account_payload(answer: Answer) -> AccountPayload:
    account = None
    if (stored := answer.get("account")) is not None:
        account = AccountType.of(*_restored(stored, Account))
    return AccountPayload(account=account, user_errors=_user_errors(answer))


# -- the support desk ------------------------------------------------------------------------


@strawberry.input(description="Raise a customer's case, and say why in an internal note.")
class EscalateCaseInput:
    customer_id: strawberry.ID
    case_id: strawberry.ID
    priority: CasePriority = strawberry.field(description="HIGH or URGENT.")
    reason: str


@strawberry.type(description="A write to a support case.")
class CasePayload:
    case: CaseType | None = strawberry.field(description="The case as the support desk answered.")
    user_errors: list[UserErrorType]


def _case_payload(answer: Answer) -> CasePayload:
    case = None
    if (stored := answer.get("case")) is not None:
        record, one = _restored(stored, Case)
        listed = Sourced([record], one.system, one.external_id, one.fetched_at, False, False)
        case = CaseType.of(record, listed)
    return CasePayload(case=case, user_errors=_user_errors(answer))


# Higher first: an escalation never lowers a case.
RANK = [CasePriority.LOW, CasePriority.NORMAL, CasePriority.HIGH, CasePriority.URGENT]


def _stored(record: Record, system: SystemName, fetched_at: datetime) -> Mapping[str, Any]:
    """A record as a key stores it: the record, and where and when it came from."""
    return {
        "record": codec.to_json(record),
        "source": {
            "system": system.value,
            "externalId": record.id,
            "fetchedAt": fetched_at.astimezone(UTC).isoformat(),
        },
    }


def _restored(stored: Mapping[str, Any], of: type[R]) -> tuple[R, Sourced[R]]:
    """A stored record, and its provenance as it was when the write answered."""
    record = codec.from_json(stored["record"])
    if not isinstance(record, of):
        raise TypeError(f"stored a {type(record).__name__}, not a {of.__name__}")
    source = stored["source"]
    sourced = Sourced(
        value=record,
        system=SystemName(source["system"]),
        external_id=source["externalId"],
        fetched_at=datetime.fromisoformat(source["fetchedAt"]),
        cached=False,
        stale=False,
    )
    return record, sourced


# -- billing --------------------------------------------------------------------------------


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
        record, one = _restored(stored, Subscription)
        listed = Sourced([record], one.system, one.external_id, one.fetched_at, False, False)
        subscription = SubscriptionType.of(record, listed)
    return SubscriptionPayload(subscription=subscription, user_errors=_user_errors(answer))


# -- service credits --------------------------------------------------------------------------


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
    return CreditPayload(credit=credit, workflow_run=run, user_errors=_user_errors(answer))


def _money(given: MoneyInput) -> Money:
    try:
        return Money.of(given.amount, given.currency)
    except MoneyError as error:
        raise InvalidField("amount", str(error)) from None


def _principal(info: Info) -> Principal:
    principal = info.context.principal
    if principal is None:  # the schema's scopes refuse such a request before it runs
        raise Unauthenticated("a write needs a principal")
    return principal


@strawberry.type
class Mutation:
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
            identity = await _identity_of(info, str(input.customer_id))
            crosswalk = info.context.services.crosswalk
            await crosswalk.attach(identity.id, input.system, input.external_id)
            return {"customerId": identity.id, "userErrors": []}

        return await _crosswalk_payload(info, await _governed(info, idempotency_key, input, act))

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
            identity = await _identity_of(info, str(input.customer_id))
            await info.context.services.crosswalk.detach(identity.id, input.system)
            return {"customerId": identity.id, "userErrors": []}

        return await _crosswalk_payload(info, await _governed(info, idempotency_key, input, act))

    @strawberry.federation.field(
        description="Set a customer's health score in the CRM, which owns accounts.",
        requires_scopes=needs(Scope.ACCOUNTS_WRITE),
    )
    async def update_account_health(
        self,
        info: Info,
        input: AccountHealthInput,
        idempotency_key: IdempotencyKey,
    ) -> AccountPayload:
        async def act(claim: Claim) -> Answer:
            if not 0 <= input.score <= 100:
                raise InvalidField("score", f"a health score is 0 to 100, not {input.score}")
            writes = info.context.services.writes
            # Refused before anything else when the CRM does not own accounts.
            writes.ownership.check_write(ObjectKind.ACCOUNT, SystemName.CRM)
            identity = await _identity_of(info, str(input.customer_id))
            account_id = identity.external_ids.get(SystemName.CRM)
            if account_id is None:
                raise NotFound(f"{identity.id} has no CRM account")
            command = UpdateAccountHealth(id=account_id, health_score=input.score)
            await writes.send(claim, command, to=SystemName.CRM)
            await writes.reader.invalidate(ObjectKind.ACCOUNT, account_id)
            (read,) = await writes.reader.records(ObjectKind.ACCOUNT, [account_id], Account)
            account = None
            if isinstance(read, Sourced) and read.value is not None:
                account = _stored(read.value, read.system, read.fetched_at)
            return {"account": account, "userErrors": []}

        return _account_payload(await _governed(info, idempotency_key, input, act))

    @strawberry.federation.field(
        description="Raise a customer's case in the support desk, which owns cases.",
        requires_scopes=needs(Scope.CASES_WRITE),
    )
    async def escalate_case(
        self, info: Info, input: EscalateCaseInput, idempotency_key: IdempotencyKey
    ) -> CasePayload:
        async def act(claim: Claim) -> Answer:
            if input.priority not in (CasePriority.HIGH, CasePriority.URGENT):
                raise InvalidField("priority", "a case is escalated to HIGH or URGENT")
            writes = info.context.services.writes
            writes.ownership.check_write(ObjectKind.CASE, SystemName.SUPPORT)
            identity = await _identity_of(info, str(input.customer_id))
            organization = identity.external_ids.get(SystemName.SUPPORT)
            cases = [] if organization is None else await _cases_of(writes.reader, organization)
            case = next((c for c in cases if c.id == input.case_id), None)
            if case is None or organization is None:
                raise InvalidField("caseId", f"{identity.id} has no case {quoted(input.case_id)}")
            if RANK.index(case.priority) >= RANK.index(input.priority):
                raise InvalidField("priority", f"case {case.id} is {case.priority.name} already")
            command = EscalateCase(case_id=case.id, priority=input.priority, reason=input.reason)
            result = await writes.send(claim, command, to=SystemName.SUPPORT)
            await writes.reader.invalidate(ObjectKind.CASE, case.id, parent=organization)
            written = result.record if isinstance(result.record, Case) else None
            stored = None
            if written is not None:
                stored = _stored(written, SystemName.SUPPORT, datetime.now(UTC))
            return {"case": stored, "userErrors": []}

        return _case_payload(await _governed(info, idempotency_key, input, act))

    @strawberry.federation.field(
        description="Move a customer's subscription to another plan in billing, which owns "
        "subscriptions.",
        requires_scopes=needs(Scope.SUBSCRIPTIONS_WRITE),
    )
    async def change_subscription_plan(
        self, info: Info, input: ChangeSubscriptionPlanInput, idempotency_key: IdempotencyKey
    ) -> SubscriptionPayload:
        async def command(subscription: Subscription) -> WriteCommand:
            plans = await info.context.services.writes.reader.catalog(ObjectKind.PLAN, Plan)
            if isinstance(plans, GatewayError):
                raise plans
            if input.plan_id not in {p.id for p in plans.value}:
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
            identity = await _identity_of(info, str(input.customer_id))
            credits = info.context.services.credits
            credit, run = await credits.request(
                _principal(info), identity, str(input.case_id), amount, input.reason
            )
            return _credit_answer(credit, run)

        return _credit_payload(await _governed(info, idempotency_key, input, act))

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
            credit, run = await info.context.services.credits.approve(_principal(info), str(id))
            return _credit_answer(credit, run)

        arguments = {"id": str(id), "comment": comment}
        return _credit_payload(await _governed(info, idempotency_key, arguments, act))

    @strawberry.federation.field(
        description="Reject a requested credit (not your own).",
        requires_scopes=needs(Scope.CREDITS_APPROVE),
    )
    async def reject_credit(
        self, info: Info, id: strawberry.ID, reason: str, idempotency_key: IdempotencyKey
    ) -> CreditPayload:
        async def act(claim: Claim) -> Answer:
            credit = await info.context.services.credits.reject(_principal(info), str(id))
            return _credit_answer(credit, None)

        arguments = {"id": str(id), "reason": reason}
        return _credit_payload(await _governed(info, idempotency_key, arguments, act))

    @strawberry.federation.field(
        description="Run a parked or failed workflow run again from its first unfinished "
        "step (its owners see the same idempotency keys).",
        requires_scopes=needs(Scope.WORKFLOWS_OPERATE),
    )
    async def retry_workflow_run(
        self, info: Info, id: strawberry.ID, idempotency_key: IdempotencyKey
    ) -> WorkflowRunPayload:
        async def act(claim: Claim) -> Answer:
            run = await info.context.services.workflows.retry(str(id))
            return {"runId": run.id, "userErrors": []}

        answer = await _governed(info, idempotency_key, {"id": str(id)}, act)
        return await _run_payload(info, answer)

    @strawberry.federation.field(
        description="Stop a workflow run that has not succeeded; its pending steps are skipped.",
        requires_scopes=needs(Scope.WORKFLOWS_OPERATE),
    )
    async def cancel_workflow_run(
        self, info: Info, id: strawberry.ID, reason: str, idempotency_key: IdempotencyKey
    ) -> WorkflowRunPayload:
        async def act(claim: Claim) -> Answer:
            run = await info.context.services.workflows.cancel(str(id), reason)
            return {"runId": run.id, "userErrors": []}

        answer = await _governed(info, idempotency_key, {"id": str(id), "reason": reason}, act)
        return await _run_payload(info, answer)


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

    return _subscription_payload(await _governed(info, key, input, act))


async def _cases_of(reader: Reader, organization: str) -> list[Case]:
    """The organization's cases as the support desk has them now (the cache may be older
    than the case the agent sees)."""
    (read,) = await reader.related(ObjectKind.CASE, [organization], Case)
    if isinstance(read, GatewayError):
        raise read
    return list(read.value)


async def _subscription_of(
    info: Info, input: ChangeSubscriptionPlanInput | CancelSubscriptionInput
) -> tuple[str, Subscription]:
    """The customer's billing id and the subscription the input names, which must be its."""
    identity = await _identity_of(info, str(input.customer_id))
    customer = identity.external_ids.get(SystemName.BILLING)
    found = None
    if customer is not None:
        reader = info.context.services.writes.reader
        (read,) = await reader.related(ObjectKind.SUBSCRIPTION, [customer], Subscription)
        if isinstance(read, GatewayError):
            raise read
        found = next((s for s in read.value if s.id == input.subscription_id), None)
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
    stored = None
    if written is not None:
        stored = _stored(written, SystemName.BILLING, datetime.now(UTC))
    return {"subscription": stored, "userErrors": []}


@strawberry.type(description="An operator's action on a workflow run.")
class WorkflowRunPayload:
    workflow_run: WorkflowRunType | None
    user_errors: list[UserErrorType]


async def _run_payload(info: Info, answer: Answer) -> WorkflowRunPayload:
    run = None
    if (run_id := answer.get("runId")) is not None:
        found = await info.context.services.workflows.get(run_id)
        run = None if found is None else WorkflowRunType.of(found)
    return WorkflowRunPayload(workflow_run=run, user_errors=_user_errors(answer))
