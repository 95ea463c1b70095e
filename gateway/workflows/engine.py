"""Durable workflow runs: named steps, called in order, that survive a crash.

A run and its steps are rows. ``advance`` takes the run, then for each step not yet
succeeded commits it ``running`` (attempts + 1) before calling it, so a crash leaves
evidence, calls it, and commits what it answered before the next step starts. A process
that dies mid-step leaves the run ``running`` under a lease that runs out; ``resume_due``,
in any process, takes it over and calls the step again with the same ``idempotency_key``,
which the step's owner dedupes: a step that reached its owner takes effect there once.
Each call of a step is a span, ``workflow <workflow>.<step>``.

Taking a run is a compare-and-swap on ``WorkflowRun.version`` (on SQLite as on
PostgreSQL): it succeeds only if the row is still what was read and nobody holds the
lease. Every later write of the holder first updates the run where the version is still
its own, which also renews the lease; a holder whose run was taken over stops there.

A ``GatewayError`` that is not retryable (the owner said no) fails the step and the run.
Anything else (a retryable error, a timeout, an open breaker, an unexpected exception)
puts the run to ``waiting`` until now + backoff; when a step has had ``max_attempts`` the
run is ``parked`` until an operator retries or cancels it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from sqlalchemy import ColumnElement, Executable, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors.errors import CircuitOpen, GatewayError, UpstreamRateLimited, UpstreamTimeout
from gateway.errors import BadUserInput
from gateway.storage.tables import WorkflowRun, WorkflowStep, utcnow
from gateway.telemetry.tracing import tracer
from gateway.workflows.errors import RunNotFound, RunStateConflict, UnknownWorkflow

log = logging.getLogger("opsgraph.workflows")

JSONObject = dict[str, Any]
MAX_PAGE = 200


class RunStatus(StrEnum):
    PENDING = "pending"  # created in a caller's transaction; no engine has taken it yet
    RUNNING = "running"
    WAITING = "waiting"  # a step failed; tried again from next_attempt_at
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # a step's owner refused it
    PARKED = "parked"  # a step failed max_attempts times: an operator retries or cancels
    CANCELLED = "cancelled"


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"  # called, outcome not recorded: it may have reached its owner
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Subject:
    """What the run is about: a credit request, say."""

    kind: str
    id: str


@dataclass(frozen=True)
class RunInfo:
    id: str
    workflow: str
    subject: Subject
    input: Mapping[str, Any]


@dataclass(frozen=True)
class StepContext:
    run: RunInfo
    outputs: Mapping[str, Mapping[str, Any]]  # of the steps before this one, by name
    attempt: int  # 1 on the first call
    idempotency_key: str  # send it to the owner: the same on every attempt, in every process


StepCall = Callable[[StepContext], Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True)
class Step:
    name: str
    call: StepCall  # answers the step's output, a JSON object


@dataclass(frozen=True)
class Workflow:
    name: str
    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        names = [step.name for step in self.steps]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"workflow {self.name!r} needs steps, with distinct names")


@dataclass(frozen=True)
class StepView:
    name: str
    status: StepStatus
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    output: JSONObject | None
    error: str | None
    error_code: str | None


@dataclass(frozen=True)
class RunView:
    id: str
    workflow: str
    status: RunStatus
    subject: Subject
    input: JSONObject
    error: str | None
    error_code: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    steps: tuple[StepView, ...]


def run_json(run: RunView) -> JSONObject:
    """``run`` as JSON, without its input (what a broadcast of it carries: an event
    route's input is the whole event); ``run_of`` reads it back."""

    def at(when: datetime | None) -> str | None:
        return None if when is None else when.isoformat()

    return {
        "id": run.id,
        "workflow": run.workflow,
        "status": run.status.value,
        "subject": [run.subject.kind, run.subject.id],
        "error": [run.error, run.error_code],
        "times": [at(run.next_attempt_at), at(run.created_at), at(run.updated_at)],
        "steps": [
            [s.name, s.status.value, s.attempts, at(s.started_at), at(s.finished_at), s.output,
             s.error, s.error_code]
            for s in run.steps
        ],
    }  # fmt: skip


def run_of(data: Mapping[str, Any]) -> RunView:
    def at(text: str | None) -> datetime | None:
        return None if text is None else datetime.fromisoformat(text)

    next_attempt, created, updated = (at(t) for t in data["times"])
    assert created is not None and updated is not None
    return RunView(
        id=data["id"],
        workflow=data["workflow"],
        status=RunStatus(data["status"]),
        subject=Subject(*data["subject"]),
        input={},
        error=data["error"][0],
        error_code=data["error"][1],
        next_attempt_at=next_attempt,
        created_at=created,
        updated_at=updated,
        steps=tuple(
            StepView(name, StepStatus(status), attempts, at(started), at(finished), output,
                     error, code)
            for name, status, attempts, started, finished, output, error, code in data["steps"]
        ),
    )  # fmt: skip


@dataclass(frozen=True)
class RunPage:
    runs: tuple[RunView, ...]
    has_next_page: bool

    @property
    def end_cursor(self) -> str | None:
        return self.runs[-1].id if self.runs else None


def idempotency_key(run_id: str, step: str) -> str:
    """The key that ``step`` of run ``run_id`` sends its owner, the same in every process and
    after a restart. Each part is length-prefixed: no two pairs join to the same bytes."""
    digest = hashlib.sha256()
    for part in (run_id, step):
        raw = part.encode("utf-8", "surrogatepass")
        digest.update(b"%d:%b" % (len(raw), raw))
    return "wf_" + digest.hexdigest()[:40]


def backoff_s(attempt: int, base_s: float, cap_s: float) -> float:
    """Between half and all of min(cap, base * 2^(attempt - 1)) ("equal jitter"). Written
    here rather than taken from tenacity: its waits read the attempt from a live retry
    loop's RetryCallState, and these attempts are counted in the database across restarts."""
    ceiling = min(cap_s, base_s * 2.0 ** min(attempt - 1, 60))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class Engine:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        workflows: Mapping[str, Workflow],
        *,
        clock: Callable[[], datetime] = utcnow,
        max_attempts: int = 5,
        backoff: tuple[float, float] = (1.0, 300.0),
        lease_s: float = 120.0,
        step_timeout_s: float = 60.0,
        moved: Callable[[str], Awaitable[None]] | None = None,
        ended: Callable[[str, RunStatus], None] | None = None,
    ) -> None:
        if any(name != workflow.name for name, workflow in workflows.items()):
            raise ValueError("workflows are registered under their own names")
        # A step cut short before its lease runs out is never called by two engines at once.
        if not 0 < step_timeout_s < lease_s or max_attempts < 1:
            raise ValueError("need max_attempts >= 1 and 0 < step_timeout_s < lease_s")
        self.sessions = sessions
        self.workflows = dict(workflows)
        self.clock = clock
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.lease = timedelta(seconds=lease_s)
        self.step_timeout_s = step_timeout_s
        # Told the id of each run that moved on (its status or a step's changed), once the
        # change is committed: what ``workflowRunUpdated`` subscribers hear.
        self.moved = moved
        # Told the workflow and the status of each run that ends (succeeded, failed, parked,
        # cancelled) as it is committed, in the process that ended it: the metrics.
        self.ended = ended

    async def start(
        self,
        workflow: str,
        subject_kind: str,
        subject_id: str,
        input: Mapping[str, Any],
        *,
        run_id: str | None = None,
        session: AsyncSession | None = None,
    ) -> RunView:
        """Creates a run of ``workflow`` with its steps pending, and advances it.

        With ``session`` the run joins the caller's transaction and is not advanced: it
        exists if the caller commits, and then ``advance`` (or ``resume_due``) runs it."""
        definition = self.workflows.get(workflow)
        if definition is None:
            raise UnknownWorkflow(workflow)
        now = self.clock()
        run = WorkflowRun(
            id=run_id or f"wr_{uuid.uuid4().hex}",
            workflow=workflow,
            status=RunStatus.PENDING,
            subject_kind=subject_kind,
            subject_id=subject_id,
            input=dict(input),
            version=1,
            created_at=now,
            updated_at=now,
        )
        steps = [
            WorkflowStep(run_id=run.id, name=step.name, status=StepStatus.PENDING, attempts=0)
            for step in definition.steps
        ]
        if session is not None:
            session.add_all([run, *steps])
            await session.flush()
            return _view(run, steps)
        async with self.sessions.begin() as own:
            own.add_all([run, *steps])
        await self._moved(run.id)
        return await self.advance(run.id)

    async def advance(self, run_id: str) -> RunView:
        """Runs the run's remaining steps unless another engine holds it; the run afterwards.
        A waiting run is taken now, whatever its ``next_attempt_at``."""
        await self._advance(run_id, self._takeable(due_only=False))
        return await self._get(run_id)

    async def resume_due(self) -> int:
        """Advances the runs nobody holds (their engine died) and the waiting runs whose
        time has come; how many it took."""
        due = (
            select(WorkflowRun.id)
            .where(WorkflowRun.workflow.in_(self.workflows), self._takeable(due_only=True))
            .order_by(WorkflowRun.created_at)
        )
        async with self.sessions() as session:
            run_ids = (await session.scalars(due)).all()
        taken = 0
        for run_id in run_ids:
            taken += await self._advance(run_id, self._takeable(due_only=True))
        return taken

    async def run_forever(self, interval_s: float) -> None:
        """``resume_due`` every ``interval_s`` until cancelled; a failed pass is logged."""
        while True:
            try:
                await self.resume_due()
            except Exception:
                log.exception("resuming workflow runs failed")
            await asyncio.sleep(interval_s)

    async def retry(self, run_id: str, *, advance: bool = True) -> RunView:
        """Operator action: a parked or failed run runs again from its first step not
        succeeded, each such step with its attempts counted afresh (and the same key); now,
        or (``advance`` False) by the next ``resume_due``."""
        again = (
            update(WorkflowRun)
            .where(WorkflowRun.id == run_id, WorkflowRun.status.in_(STOPPED))
            .values(
                status=RunStatus.RUNNING,
                version=WorkflowRun.version + 1,
                lease_expires_at=None,
                next_attempt_at=None,
                error=None,
                error_code=None,
                updated_at=self.clock(),
            )
        )
        reset = (
            update(WorkflowStep)
            .where(WorkflowStep.run_id == run_id, WorkflowStep.status != StepStatus.SUCCEEDED)
            .values(status=StepStatus.PENDING, attempts=0, error=None, error_code=None)
        )
        async with self.sessions.begin() as session:
            retried = await _rows(session, again) == 1
            if retried:
                await _rows(session, reset)
        if not retried:
            raise RunStateConflict(run_id, (await self._get(run_id)).status, "retried")
        await self._moved(run_id)
        return await self.advance(run_id) if advance else await self._get(run_id)

    async def cancel(self, run_id: str, reason: str) -> RunView:
        """Operator action: the run stops for good and its pending steps are skipped. A step
        being called right now still records its outcome (it may have reached its owner);
        none starts after it. Cancelling a cancelled run changes nothing."""
        stop = (
            update(WorkflowRun)
            .where(WorkflowRun.id == run_id, WorkflowRun.status.not_in(_FINAL))
            .values(
                status=RunStatus.CANCELLED,
                error=reason,
                error_code="CANCELLED",
                lease_expires_at=None,
                next_attempt_at=None,
                updated_at=self.clock(),
            )
        )
        skip = (
            update(WorkflowStep)
            .where(WorkflowStep.run_id == run_id, WorkflowStep.status == StepStatus.PENDING)
            .values(status=StepStatus.SKIPPED)
        )
        async with self.sessions.begin() as session:
            stopped = await _rows(session, stop)
            if stopped:
                await _rows(session, skip)
        if stopped:
            await self._moved(run_id)
        run = await self._get(run_id)
        if stopped and self.ended is not None:
            self.ended(run.workflow, RunStatus.CANCELLED)
        if run.status != RunStatus.CANCELLED:
            raise RunStateConflict(run_id, run.status, "cancelled")
        return run

    async def get(self, run_id: str) -> RunView | None:
        async with self.sessions() as session:
            run = await session.get(WorkflowRun, run_id)
            return None if run is None else (await _views(session, [run]))[0]

    async def list_runs(
        self,
        *,
        status: RunStatus | Sequence[RunStatus] | None = None,
        workflow: str | None = None,
        workflow_prefix: str | None = None,
        subject: Subject | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> RunPage:
        """Runs, newest first: ``first`` of them after the run ``after`` (a page's cursor)."""
        if not 0 < first <= MAX_PAGE:
            raise BadUserInput(f"first must be 1 to {MAX_PAGE}.")
        runs = WorkflowRun
        query = select(runs).order_by(runs.created_at.desc(), runs.id.desc()).limit(first + 1)
        query = query.where(*_filters(status, workflow_prefix))
        if workflow is not None:
            query = query.where(runs.workflow == workflow)
        if subject is not None:
            query = query.where(runs.subject_kind == subject.kind, runs.subject_id == subject.id)
        async with self.sessions() as session:
            if after is not None:
                cursor = await session.get(WorkflowRun, after)
                if cursor is None:
                    raise BadUserInput("after is not a cursor of this list.")
                query = query.where(
                    or_(
                        runs.created_at < cursor.created_at,
                        and_(runs.created_at == cursor.created_at, runs.id < cursor.id),
                    )
                )
            rows = (await session.scalars(query)).all()
            views = await _views(session, rows[:first])
        return RunPage(tuple(views), has_next_page=len(rows) > first)

    async def count(
        self,
        *,
        status: RunStatus | Sequence[RunStatus] | None = None,
        workflow_prefix: str | None = None,
    ) -> int:
        """How many runs there are (with ``status``, of workflows named ``workflow_prefix…``)."""
        query = select(func.count()).select_from(WorkflowRun)
        query = query.where(*_filters(status, workflow_prefix))
        async with self.sessions() as session:
            return await session.scalar(query) or 0

    async def tally(
        self,
        *,
        status: RunStatus | Sequence[RunStatus] | None = None,
        workflow_prefix: str | None = None,
    ) -> dict[tuple[str, str], int]:
        """How many runs there are by (workflow, status), of those ``count`` counts."""
        runs = WorkflowRun
        query = select(runs.workflow, runs.status, func.count()).where(
            *_filters(status, workflow_prefix)
        )
        query = query.group_by(runs.workflow, runs.status)
        async with self.sessions() as session:
            return {(workflow, state): n for workflow, state, n in await session.execute(query)}

    def _takeable(self, *, due_only: bool) -> ColumnElement[bool]:
        """Runs that no engine holds: not yet taken, or whose holder's lease ran out; and
        waiting runs (``due_only``: whose next attempt is due)."""
        now = self.clock()
        waiting = WorkflowRun.status == RunStatus.WAITING
        return or_(
            and_(
                WorkflowRun.status.in_([RunStatus.PENDING, RunStatus.RUNNING]),
                or_(WorkflowRun.lease_expires_at.is_(None), WorkflowRun.lease_expires_at <= now),
            ),
            and_(waiting, WorkflowRun.next_attempt_at <= now) if due_only else waiting,
        )

    async def _advance(self, run_id: str, takeable: ColumnElement[bool]) -> bool:
        """Takes the run if it is ``takeable`` and runs its steps; whether it took it."""
        async with self.sessions() as session:
            run = await session.get(WorkflowRun, run_id)
        if run is None:
            raise RunNotFound(run_id)
        if run.workflow not in self.workflows:
            raise UnknownWorkflow(run.workflow)
        now = self.clock()
        take = (
            update(WorkflowRun)
            .where(WorkflowRun.id == run_id, WorkflowRun.version == run.version, takeable)
            .values(
                status=RunStatus.RUNNING,
                version=run.version + 1,
                lease_expires_at=now + self.lease,
                next_attempt_at=None,
                updated_at=now,
            )
        )
        async with self.sessions.begin() as session:
            if not await _rows(session, take):
                return False
        await self._moved(run_id)
        # Read once taken: whatever an earlier holder recorded before losing it is in.
        async with self.sessions() as session:
            steps = await _steps(session, [run_id])
        await self._run_steps(run, run.version + 1, steps)
        return True

    async def _run_steps(self, run: WorkflowRun, token: int, steps: Sequence[WorkflowStep]) -> None:
        calls = {step.name: step.call for step in self.workflows[run.workflow].steps}
        subject = Subject(run.subject_kind, run.subject_id)
        info = RunInfo(run.id, run.workflow, subject, MappingProxyType(dict(run.input)))
        outputs: dict[str, JSONObject] = {}
        for row in steps:
            if row.status == StepStatus.SUCCEEDED:
                outputs[row.name] = row.output or {}
                continue
            call = calls.get(row.name)
            if call is None:
                message = f"The workflow has no step {row.name!r} any more."
                await self._stop(
                    run.id, token, row.id, RunStatus.FAILED, "WORKFLOW_CHANGED", message
                )
                return
            if row.attempts >= self.max_attempts:  # each attempt ended its process
                message = f"Step {row.name!r} was called {row.attempts} times, never to answer."
                await self._stop(run.id, token, row.id, RunStatus.PARKED, "STEP_ABANDONED", message)
                return
            attempt = row.attempts + 1
            begun = {"status": StepStatus.RUNNING, "attempts": attempt, "finished_at": None}
            begun["started_at"] = self.clock()
            if not await self._write(run.id, token, row.id, begun, running=True):
                return
            key = idempotency_key(run.id, row.name)
            context = StepContext(info, MappingProxyType(dict(outputs)), attempt, key)
            try:
                with tracer.start_as_current_span(
                    f"workflow {run.workflow}.{row.name}",
                    attributes={
                        "workflow.name": run.workflow,
                        "workflow.step": row.name,
                        "workflow.run_id": run.id,
                        "workflow.attempt": attempt,
                    },
                ):
                    async with asyncio.timeout(self.step_timeout_s):
                        output = _json_object(await call(context))
            except Exception as exc:
                await self._step_failed(run.id, token, row.id, attempt, exc)
                return
            done = {"status": StepStatus.SUCCEEDED, "output": output, "finished_at": self.clock()}
            if not await self._write(run.id, token, row.id, done | _error(None, None)):
                return
            outputs[row.name] = output
        await self._write(run.id, token, None, None, _let_go(RunStatus.SUCCEEDED, None, None))

    async def _step_failed(
        self, run_id: str, token: int, step_id: int, attempt: int, exc: Exception
    ) -> None:
        code, message = _describe(exc, self.step_timeout_s)
        if not _transient(exc):
            await self._stop(run_id, token, step_id, RunStatus.FAILED, code, message)
        elif attempt >= self.max_attempts:
            await self._stop(run_id, token, step_id, RunStatus.PARKED, code, message)
        else:
            delay = backoff_s(attempt, *self.backoff)
            if isinstance(exc, UpstreamRateLimited) and exc.retry_after:
                delay = max(delay, exc.retry_after)
            now = self.clock()
            step = {"status": StepStatus.PENDING, "finished_at": now} | _error(code, message)
            run = _let_go(RunStatus.WAITING, code, message)
            run["next_attempt_at"] = now + timedelta(seconds=delay)
            await self._write(run_id, token, step_id, step, run)

    async def _stop(
        self, run_id: str, token: int, step_id: int, status: RunStatus, code: str, message: str
    ) -> None:
        """The step failed and the run stops as ``status`` (failed or parked)."""
        step = {"status": StepStatus.FAILED, "finished_at": self.clock()} | _error(code, message)
        await self._write(run_id, token, step_id, step, _let_go(status, code, message))

    async def _write(
        self,
        run_id: str,
        token: int,
        step_id: int | None,
        step: JSONObject | None,
        run: JSONObject | None = None,
        *,
        running: bool = False,
    ) -> bool:
        """As the run's holder, in one transaction: renews the lease, updates the step, and
        moves the run on unless it was cancelled meanwhile. False, writing nothing, if the
        run is no longer held under ``token`` or, with ``running``, no longer running."""
        now = self.clock()
        runs = update(WorkflowRun).where(WorkflowRun.id == run_id)
        hold = runs.where(WorkflowRun.version == token)
        if running:
            hold = hold.where(WorkflowRun.status == RunStatus.RUNNING)
        hold = hold.values(lease_expires_at=now + self.lease, updated_at=now)
        workflow = None  # of the run moved on
        async with self.sessions.begin() as session:
            if not await _rows(session, hold):
                return False
            if step is not None:
                await _rows(session, update(WorkflowStep).filter_by(id=step_id).values(step))
            if run is not None:
                let_go = runs.where(WorkflowRun.status == RunStatus.RUNNING).values(run)
                connection = await session.connection()
                moved_on = await connection.execute(let_go.returning(WorkflowRun.workflow))
                workflow = moved_on.scalar()
        if workflow is not None and run is not None and run["status"] in _ENDED:
            if self.ended is not None:
                self.ended(workflow, run["status"])
        await self._moved(run_id)
        return True

    async def _moved(self, run_id: str) -> None:
        """Tells ``moved`` of the run; its failure is logged, never the run's."""
        if self.moved is None:
            return
        try:
            await self.moved(run_id)
        except Exception:
            log.exception("telling of workflow run %s failed", run_id)

    async def _get(self, run_id: str) -> RunView:
        run = await self.get(run_id)
        if run is None:
            raise RunNotFound(run_id)
        return run


def _filters(
    status: RunStatus | Sequence[RunStatus] | None, workflow_prefix: str | None
) -> list[ColumnElement[bool]]:
    wanted = []
    if isinstance(status, RunStatus):
        wanted.append(WorkflowRun.status == status)
    elif status is not None:
        wanted.append(WorkflowRun.status.in_(list(status)))
    if workflow_prefix is not None:
        wanted.append(WorkflowRun.workflow.startswith(workflow_prefix, autoescape=True))
    return wanted


_FINAL = [RunStatus.SUCCEEDED, RunStatus.CANCELLED]
# What a holder lets a run go as when it is over (until an operator retries it).
# Runs that stopped short of succeeding: the dead letters.
STOPPED = (RunStatus.PARKED, RunStatus.FAILED)
_ENDED = frozenset({RunStatus.SUCCEEDED, *STOPPED})


def _transient(exc: Exception) -> bool:
    """Whether trying again later could help. An open breaker and a deadline are no answer
    from the owner, whatever their ``retryable`` says about retrying within one request."""
    if isinstance(exc, GatewayError):
        return exc.retryable or isinstance(exc, CircuitOpen | UpstreamTimeout)
    return True


def _describe(exc: Exception, timeout_s: float) -> tuple[str, str]:
    """The error's code and a message that may leave the gateway."""
    if isinstance(exc, GatewayError):
        return exc.code, exc.message
    if isinstance(exc, TimeoutError):
        return "STEP_TIMEOUT", f"The step did not finish within {timeout_s:g} s."
    log.error("a workflow step failed unexpectedly", exc_info=exc)
    return "INTERNAL", f"The step failed unexpectedly ({type(exc).__name__})."


def _error(code: str | None, message: str | None) -> JSONObject:
    return {"error": message, "error_code": code}


def _let_go(status: RunStatus, code: str | None, message: str | None) -> JSONObject:
    """The run's values when its holder lets go of it, as ``status``."""
    return {"status": status, "lease_expires_at": None} | _error(code, message)


def _json_object(output: Mapping[str, Any]) -> JSONObject:
    """A copy of ``output`` as the database will store it; TypeError if it is not JSON."""
    loaded: JSONObject = json.loads(json.dumps(dict(output), allow_nan=False))
    return loaded


async def _steps(session: AsyncSession, run_ids: Sequence[str]) -> Sequence[WorkflowStep]:
    query = select(WorkflowStep).where(WorkflowStep.run_id.in_(run_ids)).order_by(WorkflowStep.id)
    return (await session.scalars(query)).all()


async def _views(session: AsyncSession, runs: Sequence[WorkflowRun]) -> list[RunView]:
    steps: dict[str, list[WorkflowStep]] = {run.id: [] for run in runs}
    for step in await _steps(session, list(steps)):
        steps[step.run_id].append(step)
    return [_view(run, steps[run.id]) for run in runs]


def _view(run: WorkflowRun, steps: Sequence[WorkflowStep]) -> RunView:
    return RunView(
        id=run.id,
        workflow=run.workflow,
        status=RunStatus(run.status),
        subject=Subject(run.subject_kind, run.subject_id),
        input=dict(run.input),
        error=run.error,
        error_code=run.error_code,
        next_attempt_at=run.next_attempt_at,
        created_at=run.created_at,
        updated_at=run.updated_at,
        steps=tuple(
            StepView(
                name=s.name,
                status=StepStatus(s.status),
                attempts=s.attempts,
                started_at=s.started_at,
                finished_at=s.finished_at,
                output=s.output,
                error=s.error,
                error_code=s.error_code,
            )
            for s in steps
        ),
    )


async def _rows(session: AsyncSession, statement: Executable) -> int:
    """How many rows ``statement`` changed, run as plain SQL in the session's transaction
    (the ORM's bulk forms would also look for the rows among loaded objects)."""
    connection = await session.connection()
    return (await connection.execute(statement)).rowcount
