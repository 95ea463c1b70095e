"""Workflow runs: the durable record of a governed write's steps, opsgraph's own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from gateway.auth.scopes import Scope, needs
from gateway.errors import NotFound
from gateway.events.routing import PREFIX
from gateway.logs import quoted
from gateway.workflows.engine import STOPPED, RunStatus, RunView, StepStatus
from resolvers.context import Info
from resolvers.pagination import Connection, Edge, PageInfo, check_first

strawberry.enum(RunStatus, name="WorkflowRunStatus")
strawberry.enum(StepStatus, name="WorkflowStepStatus")


@strawberry.type(name="WorkflowStep", description="One step of a run, and what its owner said.")
class WorkflowStepType:
    name: str
    status: StepStatus
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    output: JSON | None = strawberry.field(
        description="What the step recorded: the system it called and the reference it got."
    )
    error: str | None
    error_code: str | None


@strawberry.federation.type(
    name="WorkflowRun",
    description="A durable run of a workflow (a service credit's posting, say).",
    requires_scopes=needs(Scope.CREDITS_READ),
)
class WorkflowRunType:
    id: strawberry.ID
    workflow: str
    status: RunStatus
    subject_kind: str
    subject_id: str
    error: str | None
    error_code: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    steps: list[WorkflowStepType]

    def stored(self) -> dict[str, Any]:
        """As an idempotency key keeps it: the run as a write answered it."""
        return {
            "id": str(self.id),
            "workflow": self.workflow,
            "status": self.status.value,
            "subject": [self.subject_kind, self.subject_id],
            "error": [self.error, self.error_code],
            "times": [_iso(self.next_attempt_at), _iso(self.created_at), _iso(self.updated_at)],
            "steps": [
                [s.name, s.status.value, s.attempts, _iso(s.started_at), _iso(s.finished_at),
                 s.output, s.error, s.error_code]
                for s in self.steps
            ],
        }  # fmt: skip

    @classmethod
    def restored(cls, stored: Mapping[str, Any]) -> WorkflowRunType:
        next_attempt_at, created_at, updated_at = map(_time, stored["times"])
        assert created_at is not None and updated_at is not None
        return cls(
            id=strawberry.ID(stored["id"]),
            workflow=stored["workflow"],
            status=RunStatus(stored["status"]),
            subject_kind=stored["subject"][0],
            subject_id=stored["subject"][1],
            error=stored["error"][0],
            error_code=stored["error"][1],
            next_attempt_at=next_attempt_at,
            created_at=created_at,
            updated_at=updated_at,
            steps=[
                WorkflowStepType(
                    name=name,
                    status=StepStatus(status),
                    attempts=attempts,
                    started_at=_time(started),
                    finished_at=_time(finished),
                    output=None if output is None else JSON(output),
                    error=error,
                    error_code=code,
                )
                for name, status, attempts, started, finished, output, error, code in stored[
                    "steps"
                ]
            ],
        )

    @classmethod
    def of(cls, run: RunView) -> WorkflowRunType:
        return cls(
            id=strawberry.ID(run.id),
            workflow=run.workflow,
            status=run.status,
            subject_kind=run.subject.kind,
            subject_id=run.subject.id,
            error=run.error,
            error_code=run.error_code,
            next_attempt_at=run.next_attempt_at,
            created_at=run.created_at,
            updated_at=run.updated_at,
            steps=[
                WorkflowStepType(
                    name=s.name,
                    status=s.status,
                    attempts=s.attempts,
                    started_at=s.started_at,
                    finished_at=s.finished_at,
                    output=None if s.output is None else JSON(s.output),
                    error=s.error,
                    error_code=s.error_code,
                )
                for s in run.steps
            ],
        )


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@strawberry.type
class WorkflowQuery:
    @strawberry.federation.field(
        description="One workflow run with its steps.", requires_scopes=needs(Scope.CREDITS_READ)
    )
    async def workflow_run(self, info: Info, id: strawberry.ID) -> WorkflowRunType:
        run = await info.context.services.workflows.get(str(id))
        if run is None or not await visible(info, [run]):
            raise NotFound(f"no workflow run {quoted(id)}")
        return WorkflowRunType.of(run)

    @strawberry.federation.field(
        description="Workflow runs, newest first: those waiting or parked need an eye.",
        requires_scopes=needs(Scope.CREDITS_READ),
    )
    async def workflow_runs(
        self,
        info: Info,
        status: RunStatus | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> Connection[WorkflowRunType]:
        """A page of runs after the run ``after``. A principal limited to legal entities
        finds only the runs of credits it may see in it (a page may then be shorter) and
        ``totalCount`` counts only those: how many others there are is not its to know."""
        check_first(first)
        engine = info.context.services.workflows
        page = await engine.list_runs(status=status, first=first, after=after)
        runs = await visible(info, page.runs)
        return Connection(
            edges=[Edge(cursor=r.id, node=WorkflowRunType.of(r)) for r in runs],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
            total_count=(
                await engine.count(status=status)
                if info.context.principal is not None and info.context.principal.entities is None
                else len(runs)
            ),
        )

    @strawberry.federation.field(
        description="Dead letters: runs of event routes that failed (an owner refused a "
        "step) or were parked (a step failed too often), newest first, with their last "
        "error. `retryWorkflowRun` runs one again; `replayEvents` routes a range again.",
        requires_scopes=needs(Scope.WORKFLOWS_OPERATE),
    )
    async def dead_letters(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[WorkflowRunType]:
        check_first(first)
        principal = info.context.principal
        if principal is None or principal.entities is not None:
            # An event's run is no legal entity's: one limited to entities sees none.
            return Connection.empty()
        engine = info.context.services.workflows
        page = await engine.list_runs(
            status=STOPPED, workflow_prefix=PREFIX, first=first, after=after
        )
        return Connection(
            edges=[Edge(cursor=r.id, node=WorkflowRunType.of(r)) for r in page.runs],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
            total_count=await engine.count(status=STOPPED, workflow_prefix=PREFIX),
        )


async def visible(info: Info, runs: Sequence[RunView]) -> list[RunView]:
    """The runs the principal may see: a run about a credit is seen by whoever sees the
    credit (its customer's entity); one read for them all."""
    principal = info.context.principal
    if principal is None:
        return []
    if principal.entities is None:
        return list(runs)
    subjects = [r.subject.id for r in runs]
    seen = {c.id for c in await info.context.services.credits.visible(principal, ids=subjects)}
    return [r for r in runs if r.subject.id in seen]
