"""Operators' actions on workflow runs."""

from __future__ import annotations

import strawberry

from gateway.auth.scopes import Scope, needs
from gateway.writes.idempotency import Claim
from gateway.writes.pipeline import Answer
from resolvers.context import Info
from resolvers.mutations.common import (
    IdempotencyKey,
    UserErrorType,
    governed,
    user_errors,
)
from resolvers.workflow import WorkflowRunType


@strawberry.type(description="An operator's action on a workflow run.")
class WorkflowRunPayload:
    workflow_run: WorkflowRunType | None
    user_errors: list[UserErrorType]


async def _run_payload(info: Info, answer: Answer) -> WorkflowRunPayload:
    run = None
    if (run_id := answer.get("runId")) is not None:
        found = await info.context.services.workflows.get(run_id)
        run = None if found is None else WorkflowRunType.of(found)
    return WorkflowRunPayload(workflow_run=run, user_errors=user_errors(answer))


@strawberry.type
class WorkflowMutation:
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

        answer = await governed(info, idempotency_key, {"id": str(id)}, act)
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

        answer = await governed(info, idempotency_key, {"id": str(id), "reason": reason}, act)
        return await _run_payload(info, answer)
