"""Operators' actions on workflow runs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from gateway.auth.scopes import Scope, needs
from gateway.errors import BadUserInput, Forbidden
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


@strawberry.type(description="What a replay of events did.")
class ReplayEventsPayload:
    events: int = strawberry.field(description="Events received in the range (of the type).")
    started: int = strawberry.field(description="Runs of routes the events had none of.")
    retried: int = strawberry.field(description="Failed or parked runs run again.")
    unchanged: int = strawberry.field(
        description="Runs left alone: they succeeded, or are under way."
    )
    user_errors: list[UserErrorType]


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

    @strawberry.federation.field(
        description="Route again the events received in [from, to) (of `type`): a route an "
        "event has no run of starts one, a failed or parked run runs again from its first "
        "unfinished step, and a run that succeeded is left alone, so no effect that reached "
        "its owner is repeated. Needs events:replay and every legal entity (events are not "
        "an entity's).",
        requires_scopes=needs(Scope.EVENTS_REPLAY),
    )
    async def replay_events(
        self,
        info: Info,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
        idempotency_key: IdempotencyKey,
        type: str | None = None,
    ) -> ReplayEventsPayload:
        arguments = {"from": from_.isoformat(), "to": to.isoformat(), "type": type}

        principal = info.context.principal
        if principal is not None and principal.entities is not None:
            raise Forbidden("Replaying events needs a principal of every legal entity.")

        async def act(claim: Claim) -> Answer:
            if from_.tzinfo is None or to.tzinfo is None:
                raise BadUserInput("from and to need a time zone (2026-12-07T09:00:00Z)")
            done = await info.context.services.router.replay(from_, to, type)
            counts = {k: getattr(done, k) for k in ("events", "started", "retried", "unchanged")}
            return {**counts, "userErrors": []}

        answer = await governed(info, idempotency_key, arguments, act)
        counts = {k: answer.get(k, 0) for k in ("events", "started", "retried", "unchanged")}
        return ReplayEventsPayload(**counts, user_errors=user_errors(answer))
