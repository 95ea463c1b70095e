"""Finance's actions on reconciliation: start a run; acknowledge or resolve an exception."""

from __future__ import annotations

import strawberry

from connectors.models import ExceptionStatus
from gateway.auth.scopes import Scope, needs
from gateway.writes.idempotency import Claim
from gateway.writes.pipeline import Answer
from resolvers.context import Info
from resolvers.mutations.common import (
    IdempotencyKey,
    UserErrorType,
    governed,
    principal_of,
    user_errors,
)
from resolvers.reconciliation import (
    ReconciliationExceptionType,
    ReconciliationRunType,
    ReconciliationScopeInput,
    plain_scope,
    run_scope,
)


@strawberry.type(description="The run started (it goes on after this answers).")
class ReconciliationRunPayload:
    reconciliation_run: ReconciliationRunType | None
    user_errors: list[UserErrorType]


@strawberry.type(description="The exception as it is now.")
class ReconciliationExceptionPayload:
    reconciliation_exception: ReconciliationExceptionType | None
    user_errors: list[UserErrorType]


@strawberry.type
class ReconciliationMutation:
    @strawberry.federation.field(
        description="Start a full reconciliation of billing against the ERP over legal "
        "entities and periods. It answers at once with the run; follow it with "
        "`reconciliationRunUpdated`. RECONCILIATION_RUNNING while a run over an overlapping "
        "scope is under way.",
        requires_scopes=needs(Scope.RECONCILIATION_RUN),
    )
    async def run_reconciliation(
        self, info: Info, scope: ReconciliationScopeInput, idempotency_key: IdempotencyKey
    ) -> ReconciliationRunPayload:
        reconciler = info.context.services.reconciler

        async def act(claim: Claim) -> Answer:
            run = await reconciler.start(run_scope(info, scope), principal_of(info).subject)
            return {"runId": run.id, "userErrors": []}

        answer = await governed(info, idempotency_key, plain_scope(scope), act)
        run = None
        if (run_id := answer.get("runId")) is not None:
            run = ReconciliationRunType.of(await reconciler.get(run_id))
        return ReconciliationRunPayload(reconciliation_run=run, user_errors=user_errors(answer))

    @strawberry.federation.field(
        description="Say an open exception is being looked at (who, and a note).",
        requires_scopes=needs(Scope.RECONCILIATION_RESOLVE),
    )
    async def acknowledge_reconciliation_exception(
        self,
        info: Info,
        id: strawberry.ID,
        idempotency_key: IdempotencyKey,
        note: str | None = None,
    ) -> ReconciliationExceptionPayload:
        return await _move(info, str(id), ExceptionStatus.ACKNOWLEDGED, note, idempotency_key)

    @strawberry.federation.field(
        description="Say an exception is resolved (who, and how). A later run that finds "
        "the difference again reopens it.",
        requires_scopes=needs(Scope.RECONCILIATION_RESOLVE),
    )
    async def resolve_reconciliation_exception(
        self,
        info: Info,
        id: strawberry.ID,
        idempotency_key: IdempotencyKey,
        note: str | None = None,
    ) -> ReconciliationExceptionPayload:
        return await _move(info, str(id), ExceptionStatus.RESOLVED, note, idempotency_key)


async def _move(
    info: Info, id_: str, to: ExceptionStatus, note: str | None, key: str
) -> ReconciliationExceptionPayload:
    book = info.context.services.book
    principal = principal_of(info)

    async def act(claim: Claim) -> Answer:
        moved = await book.move(id_, to, principal.subject, note, principal.entities)
        return {"exceptionId": moved.id, "userErrors": []}

    answer = await governed(info, key, {"id": id_, "note": note}, act)
    found = None
    if (exception_id := answer.get("exceptionId")) is not None:
        found = ReconciliationExceptionType.of(await book.get(exception_id, principal.entities))
    return ReconciliationExceptionPayload(
        reconciliation_exception=found, user_errors=user_errors(answer)
    )
