"""The workflow engine on a migrated SQLite file and on PostgreSQL, with a clock the tests
move instead of sleeping and owners that record every call their steps make."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors.errors import (
    CircuitOpen,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.storage.database import create_engine, sessions
from gateway.storage.tables import Customer
from gateway.workflows.engine import (
    Engine,
    RunStatus,
    RunView,
    Step,
    StepContext,
    StepStatus,
    Subject,
    Workflow,
    backoff_s,
    idempotency_key,
)
from gateway.workflows.errors import RunStateConflict, UnknownWorkflow

WORKFLOW = "service_credit"
STEPS = ("post_memo", "apply_credit_note", "notify")
MAX_ATTEMPTS = 3
BACKOFF = (1.0, 8.0)  # a retry is due within 8 s, whatever the attempt
LEASE_S = 60.0


class Clock:
    """The engine's time, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass(frozen=True)
class Call:
    step: str
    attempt: int
    key: str
    outputs: dict[str, Any]


class Owners:
    """The systems the steps reach. Each call is recorded and takes the next failure
    scripted for its step, if any; otherwise it answers the step's output. A scripted
    failure never used fails the test."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.failures: dict[str, list[Exception]] = {}

    def step(self, name: str) -> Step:
        async def call(context: StepContext) -> dict[str, Any]:
            outputs = {k: dict(v) for k, v in context.outputs.items()}
            self.calls.append(Call(name, context.attempt, context.idempotency_key, outputs))
            await asyncio.sleep(0)  # lets a concurrent advance in
            if self.failures.get(name):
                raise self.failures[name].pop(0)
            return output(name, context.run.input["credit"])

        return Step(name, call)

    def workflow(self) -> Workflow:
        return Workflow(WORKFLOW, tuple(self.step(name) for name in STEPS))

    def steps_called(self) -> list[tuple[str, int]]:
        return [(c.step, c.attempt) for c in self.calls]


def output(step: str, credit: str) -> dict[str, Any]:
    return {"system": step, "reference": f"{step} {credit}"}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def owners() -> Iterator[Owners]:
    fake = Owners()
    yield fake
    assert not any(fake.failures.values()), f"scripted failures never raised: {fake.failures}"


@pytest.fixture
async def db(migrated_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(migrated_url)
    try:
        yield sessions(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def other_db(migrated_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The same database through another pool: what another process would use."""
    engine = create_engine(migrated_url)
    try:
        yield sessions(engine)
    finally:
        await engine.dispose()


def make_engine(db: async_sessionmaker[AsyncSession], workflow: Workflow, clock: Clock) -> Engine:
    return Engine(
        db,
        {WORKFLOW: workflow},
        clock=clock,
        max_attempts=MAX_ATTEMPTS,
        backoff=BACKOFF,
        lease_s=LEASE_S,
        step_timeout_s=5,
    )


@pytest.fixture
def engine(db: async_sessionmaker[AsyncSession], owners: Owners, clock: Clock) -> Engine:
    return make_engine(db, owners.workflow(), clock)


async def start(engine: Engine, credit: str = "cr_1", **kw: Any) -> RunView:
    return await engine.start(WORKFLOW, "credit_request", credit, {"credit": credit}, **kw)


def statuses(run: RunView | None) -> list[tuple[str, StepStatus, int]]:
    assert run is not None
    return [(s.name, s.status, s.attempts) for s in run.steps]


async def test_a_run_succeeds_step_by_step_with_earlier_outputs_passed_on(
    engine: Engine, owners: Owners, clock: Clock
) -> None:
    run = await start(engine)
    memo, note = output("post_memo", "cr_1"), output("apply_credit_note", "cr_1")
    assert [(c.step, c.outputs) for c in owners.calls] == [
        ("post_memo", {}),
        ("apply_credit_note", {"post_memo": memo}),
        ("notify", {"post_memo": memo, "apply_credit_note": note}),
    ]
    assert run.status == RunStatus.SUCCEEDED and run.error is None
    assert [(s.name, s.status, s.attempts, s.output) for s in run.steps] == [
        ("post_memo", StepStatus.SUCCEEDED, 1, memo),
        ("apply_credit_note", StepStatus.SUCCEEDED, 1, note),
        ("notify", StepStatus.SUCCEEDED, 1, output("notify", "cr_1")),
    ]
    assert {(s.started_at, s.finished_at) for s in run.steps} == {(clock.now, clock.now)}
    assert await engine.get(run.id) == run


async def test_a_refusal_fails_the_run_with_the_owners_message_and_later_steps_never_run(
    engine: Engine, owners: Owners, clock: Clock
) -> None:
    owners.failures["apply_credit_note"] = [
        UpstreamRejected("The invoice is void.", system="billing", internal="HTTP 400 {...}")
    ]
    run = await start(engine)
    assert (run.status, run.error, run.error_code) == (
        RunStatus.FAILED,
        "The invoice is void.",
        "UPSTREAM_REJECTED",
    )
    assert statuses(run) == [
        ("post_memo", StepStatus.SUCCEEDED, 1),
        ("apply_credit_note", StepStatus.FAILED, 1),
        ("notify", StepStatus.PENDING, 0),
    ]
    assert run.steps[1].error == "The invoice is void."
    clock.advance(3600)
    assert await engine.resume_due() == 0
    assert owners.steps_called() == [("post_memo", 1), ("apply_credit_note", 1)]


@pytest.mark.parametrize(
    ("failure", "code", "message"),
    [
        (UpstreamUnavailable("The ERP is down."), "UPSTREAM_UNAVAILABLE", "The ERP is down."),
        (UpstreamTimeout("The ERP did not answer."), "UPSTREAM_TIMEOUT", None),
        (CircuitOpen("The ERP's breaker is open."), "CIRCUIT_OPEN", None),
        (
            RuntimeError("secret=hunter2"),
            "INTERNAL",
            "The step failed unexpectedly (RuntimeError).",
        ),
    ],
    ids=["unavailable", "timeout", "circuit_open", "unexpected"],
)
async def test_a_transient_failure_waits_and_is_retried_when_due(
    engine: Engine,
    owners: Owners,
    clock: Clock,
    failure: Exception,
    code: str,
    message: str | None,
) -> None:
    owners.failures["post_memo"] = [failure]
    run = await start(engine)
    assert (run.status, run.error_code) == (RunStatus.WAITING, code)
    assert message is None or run.error == message
    assert statuses(run)[0] == ("post_memo", StepStatus.PENDING, 1)
    # equal jitter: between half and all of the first backoff, 1 s
    assert run.next_attempt_at is not None
    assert (
        clock.now + timedelta(seconds=0.5)
        <= run.next_attempt_at
        <= clock.now + timedelta(seconds=1)
    )
    clock.advance(0.49)
    assert await engine.resume_due() == 0
    clock.advance(0.51)
    assert await engine.resume_due() == 1
    resumed = await engine.get(run.id)
    assert resumed is not None and resumed.status == RunStatus.SUCCEEDED
    assert resumed.error is None and resumed.next_attempt_at is None
    assert owners.steps_called() == [
        ("post_memo", 1),
        ("post_memo", 2),
        ("apply_credit_note", 1),
        ("notify", 1),
    ]


async def test_a_rate_limited_step_waits_at_least_its_retry_after(
    engine: Engine, owners: Owners, clock: Clock
) -> None:
    owners.failures["post_memo"] = [UpstreamRateLimited("Slow down.", retry_after=30)]
    run = await start(engine)
    assert run.next_attempt_at == clock.now + timedelta(seconds=30)
    clock.advance(29)
    assert await engine.resume_due() == 0
    clock.advance(1)
    assert await engine.resume_due() == 1


async def park(engine: Engine, owners: Owners, clock: Clock) -> RunView:
    """A run whose second step failed MAX_ATTEMPTS times."""
    owners.failures["apply_credit_note"] = [UpstreamUnavailable("Billing is down.")] * 3
    run = await start(engine)
    for _ in range(MAX_ATTEMPTS - 1):
        assert run.status == RunStatus.WAITING
        clock.advance(BACKOFF[1])
        assert await engine.resume_due() == 1
        parked = await engine.get(run.id)
        assert parked is not None
        run = parked
    return run


async def test_a_step_that_keeps_failing_parks_the_run_after_max_attempts(
    engine: Engine, owners: Owners, clock: Clock
) -> None:
    run = await park(engine, owners, clock)
    assert (run.status, run.error) == (RunStatus.PARKED, "Billing is down.")
    assert statuses(run) == [
        ("post_memo", StepStatus.SUCCEEDED, 1),
        ("apply_credit_note", StepStatus.FAILED, 3),
        ("notify", StepStatus.PENDING, 0),
    ]
    clock.advance(3600)
    assert await engine.resume_due() == 0
    assert owners.steps_called().count(("post_memo", 1)) == 1


async def test_retry_completes_a_parked_run(engine: Engine, owners: Owners, clock: Clock) -> None:
    parked = await park(engine, owners, clock)
    owners.calls.clear()
    run = await engine.retry(parked.id)
    assert run.status == RunStatus.SUCCEEDED and run.error is None
    assert owners.steps_called() == [("apply_credit_note", 1), ("notify", 1)]
    assert statuses(run)[1] == ("apply_credit_note", StepStatus.SUCCEEDED, 1)


async def test_retry_runs_a_refused_step_again_with_the_same_key(
    engine: Engine, owners: Owners
) -> None:
    owners.failures["post_memo"] = [UpstreamRejected("The period is closed.")]
    failed = await start(engine)
    assert failed.status == RunStatus.FAILED
    run = await engine.retry(failed.id)
    assert run.status == RunStatus.SUCCEEDED
    assert owners.calls[0].key == owners.calls[1].key == idempotency_key(run.id, "post_memo")


async def test_cancel_skips_the_pending_steps_and_nothing_runs_after(
    engine: Engine, owners: Owners, clock: Clock
) -> None:
    owners.failures["apply_credit_note"] = [UpstreamUnavailable("Billing is down.")]
    waiting = await start(engine)
    run = await engine.cancel(waiting.id, "The customer withdrew the request.")
    assert (run.status, run.error, run.error_code) == (
        RunStatus.CANCELLED,
        "The customer withdrew the request.",
        "CANCELLED",
    )
    assert statuses(run) == [
        ("post_memo", StepStatus.SUCCEEDED, 1),
        ("apply_credit_note", StepStatus.SKIPPED, 1),
        ("notify", StepStatus.SKIPPED, 0),
    ]
    clock.advance(3600)
    assert await engine.resume_due() == 0
    assert (await engine.advance(run.id)).status == RunStatus.CANCELLED
    assert (await engine.cancel(run.id, "again")).error == "The customer withdrew the request."
    assert owners.steps_called() == [("post_memo", 1), ("apply_credit_note", 1)]


async def test_a_succeeded_run_can_be_neither_cancelled_nor_retried(engine: Engine) -> None:
    run = await start(engine)
    with pytest.raises(RunStateConflict) as refused:
        await engine.cancel(run.id, "too late")
    assert refused.value.code == "WORKFLOW_RUN_STATE"
    with pytest.raises(RunStateConflict):
        await engine.retry(run.id)
    assert await engine.get(run.id) == run


async def test_the_idempotency_key_is_the_same_on_every_attempt_and_after_a_restart(
    engine: Engine,
    owners: Owners,
    clock: Clock,
    other_db: async_sessionmaker[AsyncSession],
) -> None:
    owners.failures["post_memo"] = [UpstreamUnavailable("The ERP is down.")]
    run = await start(engine)
    restarted = make_engine(other_db, owners.workflow(), clock)
    clock.advance(BACKOFF[1])
    assert await restarted.resume_due() == 1
    keys = [c.key for c in owners.calls if c.step == "post_memo"]
    assert keys == [idempotency_key(run.id, "post_memo")] * 2
    assert keys[0].startswith("wf_") and len(keys[0]) == 43
    assert len({c.key for c in owners.calls}) == len(STEPS)


async def test_a_run_abandoned_mid_step_is_resumed_by_another_engine_with_the_same_key(
    db: async_sessionmaker[AsyncSession],
    other_db: async_sessionmaker[AsyncSession],
    owners: Owners,
    clock: Clock,
) -> None:
    called = asyncio.Event()
    keys: list[str] = []

    async def hang(context: StepContext) -> dict[str, Any]:
        keys.append(context.idempotency_key)
        called.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    steps = (owners.step("post_memo"), Step("apply_credit_note", hang), owners.step("notify"))
    crashing = make_engine(db, Workflow(WORKFLOW, steps), clock)
    process = asyncio.create_task(start(crashing, run_id="wr_1"))
    await called.wait()
    process.cancel()  # the process dies while the owner has the request
    with contextlib.suppress(asyncio.CancelledError):
        await process
    left = await crashing.get("wr_1")
    assert left is not None and left.status == RunStatus.RUNNING
    assert statuses(left)[1] == ("apply_credit_note", StepStatus.RUNNING, 1)

    restarted = make_engine(other_db, owners.workflow(), clock)
    assert await restarted.resume_due() == 0  # its lease has not run out yet
    clock.advance(LEASE_S)
    assert await restarted.resume_due() == 1
    run = await restarted.get("wr_1")
    assert run is not None and run.status == RunStatus.SUCCEEDED
    assert owners.steps_called() == [("post_memo", 1), ("apply_credit_note", 2), ("notify", 1)]
    assert keys == [owners.calls[1].key] == [idempotency_key("wr_1", "apply_credit_note")]


async def test_a_holder_overtaken_after_its_lease_ran_out_records_nothing(
    db: async_sessionmaker[AsyncSession],
    other_db: async_sessionmaker[AsyncSession],
    owners: Owners,
    clock: Clock,
) -> None:
    """A step slower than its lease: another engine takes the run over and finishes it; the
    slow answer that comes afterwards is not recorded and starts nothing."""
    called, answer = asyncio.Event(), asyncio.Event()

    async def slow(context: StepContext) -> dict[str, Any]:
        called.set()
        await answer.wait()
        return {"system": "billing", "reference": "late"}

    steps = (owners.step("post_memo"), Step("apply_credit_note", slow), owners.step("notify"))
    slow_engine = make_engine(db, Workflow(WORKFLOW, steps), clock)
    first = asyncio.create_task(start(slow_engine, run_id="wr_1"))
    await called.wait()
    clock.advance(LEASE_S)
    assert await make_engine(other_db, owners.workflow(), clock).resume_due() == 1
    answer.set()
    run = await first
    assert run.status == RunStatus.SUCCEEDED
    assert run.steps[1].output == output("apply_credit_note", "cr_1")
    assert owners.steps_called() == [("post_memo", 1), ("apply_credit_note", 2), ("notify", 1)]


async def test_concurrent_advances_call_each_step_once(
    db: async_sessionmaker[AsyncSession],
    other_db: async_sessionmaker[AsyncSession],
    owners: Owners,
    clock: Clock,
) -> None:
    here, there = (make_engine(d, owners.workflow(), clock) for d in (db, other_db))
    async with db.begin() as session:
        created = await start(here, session=session)
    assert created.status == RunStatus.PENDING
    await asyncio.gather(*(engine.advance(created.id) for engine in (here, there) * 3))
    assert owners.steps_called() == [(name, 1) for name in STEPS]
    run = await there.get(created.id)
    assert run is not None and run.status == RunStatus.SUCCEEDED


async def test_a_run_started_in_the_callers_transaction_exists_only_if_it_commits(
    engine: Engine, db: async_sessionmaker[AsyncSession], owners: Owners
) -> None:
    with pytest.raises(RuntimeError, match="the mutation failed"):
        async with db.begin() as session:
            session.add(Customer(id="c1", name="One"))
            await start(engine, run_id="wr_gone", session=session)
            raise RuntimeError("the mutation failed")
    assert await engine.get("wr_gone") is None
    async with db.begin() as session:
        session.add(Customer(id="c1", name="One"))
        created = await start(engine, run_id="wr_1", session=session)
    assert created.status == RunStatus.PENDING and owners.calls == []
    assert await engine.resume_due() == 1  # committed, never advanced: the caller died
    run = await engine.get("wr_1")
    assert run is not None and run.status == RunStatus.SUCCEEDED


async def test_runs_are_listed_newest_first_filtered_and_paged(
    engine: Engine, owners: Owners, clock: Clock
) -> None:
    for credit in ("cr_1", "cr_2", "cr_3"):
        clock.advance(1)
        owners.failures["post_memo"] = [UpstreamRejected("No.")] if credit == "cr_2" else []
        await start(engine, credit, run_id=f"wr_{credit}")
    page = await engine.list_runs(first=2)
    assert [r.id for r in page.runs] == ["wr_cr_3", "wr_cr_2"] and page.has_next_page
    assert [s.name for s in page.runs[0].steps] == list(STEPS)
    rest = await engine.list_runs(first=2, after=page.end_cursor)
    assert [r.id for r in rest.runs] == ["wr_cr_1"] and not rest.has_next_page
    failed = await engine.list_runs(status=RunStatus.FAILED, workflow=WORKFLOW)
    assert [r.id for r in failed.runs] == ["wr_cr_2"]
    about = await engine.list_runs(subject=Subject("credit_request", "cr_1"))
    assert [r.id for r in about.runs] == ["wr_cr_1"]
    assert (await engine.list_runs(workflow="other")).runs == ()


class Watched(Engine):
    """An engine that reports how many runs each pass of ``resume_due`` took."""

    passes: asyncio.Queue[int]

    async def resume_due(self) -> int:
        taken = await super().resume_due()
        self.passes.put_nowait(taken)
        return taken


async def test_run_forever_resumes_due_runs(
    db: async_sessionmaker[AsyncSession], owners: Owners, clock: Clock
) -> None:
    engine = Watched(db, {WORKFLOW: owners.workflow()}, clock=clock, backoff=BACKOFF)
    engine.passes = asyncio.Queue()
    owners.failures["post_memo"] = [UpstreamUnavailable("The ERP is down.")]
    run = await start(engine)
    clock.advance(BACKOFF[1])
    background = asyncio.create_task(engine.run_forever(0.01))
    try:
        async with asyncio.timeout(10):
            assert [await engine.passes.get(), await engine.passes.get()] == [1, 0]
    finally:
        background.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await background
    resumed = await engine.get(run.id)
    assert resumed is not None and resumed.status == RunStatus.SUCCEEDED


async def test_an_unknown_workflow_is_refused(engine: Engine) -> None:
    with pytest.raises(UnknownWorkflow):
        await engine.start("nope", "credit_request", "cr_1", {})


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (50, 8.0)]:
        waits = [backoff_s(attempt, *BACKOFF) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1
