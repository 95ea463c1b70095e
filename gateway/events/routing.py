"""Event routing: the rules in ``event_routes.toml`` say which canonical events start which
actions; each matching (event, route) pair becomes one durable workflow run.

A route's run is named by the event and the route (``run_id``), so an event routed again (the
stream redelivering it after a consumer died, an operator's replay) finds its run there and
starts nothing twice. Its steps are the route's actions (``gateway.events.actions``), each
calling its owner with the step's idempotency key: a step re-run after a crash reaches its
owner once. The engine retries a failing step with backoff and jitter and parks the run after
``max_attempts`` (a dead letter, with the last error), where an operator retries it.

The file is checked at start: an unknown action, an unknown key, a condition without exactly
one test, or params an action cannot use stop the gateway with a message naming the route.
"""

from __future__ import annotations

import hashlib
import logging
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cloudevents.http import CloudEvent
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.errors import BadUserInput, ConfigurationError
from gateway.events.canonical import restored, stored
from gateway.storage.tables import InboundEvent, WorkflowRun
from gateway.telemetry.tracing import TRACEPARENT, continued
from gateway.workflows.engine import STOPPED, Engine, Step, StepCall, Workflow
from gateway.workflows.errors import RunStateConflict

log = logging.getLogger("opsgraph.events")

# A route's workflow is registered with the engine under this prefix and the route's name.
PREFIX = "route:"
# The subject kind of a route's runs: the event (``<source system>:<event id>``).
EVENT = "event"
REPLAY_LIMIT = 10_000
PENDING_BATCH = 100


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Strict):
    """One test on a dotted ``path`` into the event's data (the vendor's event)."""

    path: str = Field(min_length=1)
    equals: str | int | bool | None = None
    one_of: list[str | int] | None = None
    contains: str | int | None = None
    present: bool | None = None

    @model_validator(mode="after")
    def _one_test(self) -> Condition:
        tests = [self.equals, self.one_of, self.contains, self.present]
        if sum(t is not None for t in tests) != 1:
            raise ValueError("a condition has exactly one of equals, one_of, contains, present")
        return self

    def holds(self, data: Any) -> bool:
        found, value = _at(data, self.path)
        if self.present is not None:
            return (found and value is not None) == self.present
        if not found:
            return False
        if self.equals is not None:
            return bool(value == self.equals)
        if self.one_of is not None:
            return value in self.one_of
        return isinstance(value, list) and self.contains in value


def _at(data: Any, path: str) -> tuple[bool, Any]:
    for part in path.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return False, None
        data = data[part]
    return True, data


class RouteSpec(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    on: list[str] = Field(min_length=1)
    when: list[Condition] = []
    actions: list[str] = Field(min_length=1)
    params: dict[str, Any] = {}


class _File(_Strict):
    route: list[RouteSpec] = []


@dataclass(frozen=True)
class Action:
    """What a route's step does: ``make(actions, params)`` is its call, given the services'
    ``Actions`` and the route's params as ``params`` checked them (a pydantic model of the
    keys it reads; None: it reads none)."""

    params: type[BaseModel] | None
    make: Callable[[Any, Any], StepCall]


@dataclass(frozen=True)
class Route:
    spec: RouteSpec
    steps: tuple[tuple[Action, BaseModel | None], ...]  # each action with its params

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def workflow_name(self) -> str:
        return PREFIX + self.spec.name

    def workflow(self, actions: object) -> Workflow:
        """The route's workflow, its steps calling ``actions`` (an ``Actions``)."""
        steps = [
            Step(name, action.make(actions, params))
            for name, (action, params) in zip(self.spec.actions, self.steps, strict=True)
        ]
        return Workflow(self.workflow_name, tuple(steps))

    def matches(self, event: CloudEvent) -> bool:
        if event["type"] not in self.spec.on:
            return False
        data = event.get_data()
        return all(condition.holds(data) for condition in self.spec.when)


class Routes:
    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = tuple(routes)

    @classmethod
    def load(cls, path: Path, actions: Mapping[str, Action]) -> Routes:
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigurationError(f"event routes file {path}: {exc.strerror}") from None
        return cls.parse(text, actions, source=f"event routes file {path}")

    @classmethod
    def parse(
        cls, text: str, actions: Mapping[str, Action], source: str = "event routes file"
    ) -> Routes:
        try:
            specs = _File.model_validate(tomllib.loads(text)).route
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{source}: not TOML ({exc})") from None
        except ValidationError as exc:
            raise ConfigurationError(f"{source}: {_first_error(exc)}") from None
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"{source}: two routes have one name")
        return cls([_route(spec, actions, source) for spec in specs])

    def matching(self, event: CloudEvent) -> list[Route]:
        return [route for route in self.routes if route.matches(event)]

    def workflows(self, actions: object) -> dict[str, Workflow]:
        return {route.workflow_name: route.workflow(actions) for route in self.routes}


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}"


def _route(spec: RouteSpec, actions: Mapping[str, Action], source: str) -> Route:
    at = f"{source}: route {spec.name!r}"
    unknown = [name for name in spec.actions if name not in actions]
    if unknown:
        raise ConfigurationError(
            f"{at}: no action {unknown[0]!r} (there are: {', '.join(sorted(actions))})"
        )
    if len(set(spec.actions)) != len(spec.actions):
        raise ConfigurationError(f"{at}: an action is listed twice")
    used: set[str] = set()
    steps = []
    for name in spec.actions:
        action = actions[name]
        params = None
        if action.params is not None:
            used |= set(action.params.model_fields)
            try:
                params = action.params.model_validate(spec.params)
            except ValidationError as exc:
                raise ConfigurationError(f"{at}: params.{_first_error(exc)}") from None
        steps.append((action, params))
    extra = sorted(set(spec.params) - used)
    if extra:
        raise ConfigurationError(f"{at}: no action of the route reads params.{extra[0]}")
    return Route(spec, tuple(steps))


def run_id(source: str, event_id: str, route: str) -> str:
    """The id of the run of ``route`` for the event: the same whoever routes it, whenever."""
    digest = hashlib.sha256()
    for part in (source, event_id, route):
        raw = part.encode("utf-8", "surrogatepass")
        digest.update(b"%d:%b" % (len(raw), raw))
    return "ev_" + digest.hexdigest()[:40]


def _key(event: CloudEvent) -> tuple[str, str]:
    """(source system, event id): the inbox's key of ``event``."""
    return str(event["source"]).removeprefix("/systems/"), str(event["id"])


def event_key(event: CloudEvent) -> str:
    """``<system>:<event id>``: the subject id of its runs, and its stream entry's id."""
    return ":".join(_key(event))


@dataclass(frozen=True)
class Routed:
    started: tuple[str, ...]  # runs created now
    retried: tuple[str, ...] = ()  # stopped runs started again (a replay's)
    unchanged: tuple[str, ...] = ()  # runs that exist and were left alone


@dataclass(frozen=True)
class Replayed:
    events: int
    started: int
    retried: int
    unchanged: int


class Router:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], engine: Engine, routes: Routes
    ) -> None:
        self.sessions = sessions
        self.engine = engine
        self.routes = routes

    async def route(
        self,
        event: CloudEvent,
        *,
        retry_stopped: bool = False,
        advance: bool = True,
        routes: Sequence[Route] | None = None,
    ) -> Routed:
        """``_route`` in a span ``event <type>`` in the trace of what delivered the event
        (its ``traceparent``): the runs it starts, and what they call, are that trace's."""
        attributes = {
            "cloudevents.event_id": str(event["id"]),
            "cloudevents.event_source": str(event["source"]),
            "cloudevents.event_type": str(event["type"]),
        }
        with continued(f"event {event['type']}", event.get(TRACEPARENT), attributes) as span:
            routed = await self._route(
                event, retry_stopped=retry_stopped, advance=advance, routes=routes
            )
            span.set_attribute("workflow.runs_started", len(routed.started))
            return routed

    async def _route(
        self,
        event: CloudEvent,
        *,
        retry_stopped: bool = False,
        advance: bool = True,
        routes: Sequence[Route] | None = None,
    ) -> Routed:
        """Creates the runs of the routes ``event`` matches (``routes``, if worked out
        already) that do not exist yet and marks the event routed, in one transaction, then
        advances the new runs (``advance``; else the engine's background loop does); with
        ``retry_stopped`` a failed or parked run of the event runs again from its first
        unfinished step."""
        source, event_id = str(event["source"]), str(event["id"])
        chosen = self.routes.matching(event) if routes is None else routes
        matched = {run_id(source, event_id, r.name): r for r in chosen}
        existing: dict[str, str] = {}
        if matched:
            async with self.sessions() as session:
                found = await session.execute(
                    select(WorkflowRun.id, WorkflowRun.status).where(WorkflowRun.id.in_(matched))
                )
                existing = {id_: status for id_, status in found}
        new = [id_ for id_ in matched if id_ not in existing]
        subject, payload = event_key(event)[:255], stored(event)
        try:
            async with self.sessions.begin() as session:
                for id_ in new:
                    workflow = matched[id_].workflow_name
                    input = {"event": payload}
                    await self.engine.start(
                        workflow, EVENT, subject, input, run_id=id_, session=session
                    )
                await session.execute(
                    update(InboundEvent)
                    .where(
                        InboundEvent.source == source.removeprefix("/systems/"),
                        InboundEvent.event_id == event_id,
                        InboundEvent.routed_at.is_(None),
                    )
                    .values(routed_at=datetime.now(UTC))
                )
        except IntegrityError:
            # Another consumer created them first (both took the event): theirs to run.
            return Routed((), unchanged=tuple(matched))
        if advance:
            for id_ in new:
                await self.engine.advance(id_)
        stopped = {s.value for s in STOPPED}
        retried = []
        if retry_stopped:
            for id_, status in existing.items():
                if status in stopped:
                    try:
                        await self.engine.retry(id_, advance=advance)
                    except RunStateConflict:  # moved meanwhile (retried, cancelled): left
                        continue
                    retried.append(id_)
        unchanged = tuple(id_ for id_ in existing if id_ not in retried)
        return Routed(tuple(new), tuple(retried), unchanged)

    async def route_many(self, events: Sequence[CloudEvent]) -> int:
        """``route`` for each event not routed yet (a stream redelivers, a sweep and a
        consumer may both take one); those that match no route are marked routed together,
        in one statement (most events start nothing). An event that cannot be routed is
        logged and left for the next sweep, without holding up the others; answers how
        many could not."""
        keys = {_key(event): event for event in events}
        if not keys:
            return 0
        # One transaction, Core statements on its connection: no ORM objects are needed,
        # and the ORM's bulk update would look for the rows in the session.
        async with self.sessions.begin() as session:
            connection = await session.connection()
            found = await connection.execute(
                select(InboundEvent.source, InboundEvent.event_id).where(
                    tuple_(InboundEvent.source, InboundEvent.event_id).in_(list(keys)),
                    InboundEvent.routed_at.is_not(None),
                )
            )
            done = {(source, event_id) for source, event_id in found}
            waiting = [(key, event) for key, event in keys.items() if key not in done]
            chosen = {key: self.routes.matching(event) for key, event in waiting}
            idle = [key for key, _ in waiting if not chosen[key]]
            if idle:
                await connection.execute(
                    update(InboundEvent)
                    .where(
                        tuple_(InboundEvent.source, InboundEvent.event_id).in_(idle),
                        InboundEvent.routed_at.is_(None),
                    )
                    .values(routed_at=datetime.now(UTC))
                )
        failed = 0
        for key, event in waiting:
            if chosen[key]:
                try:
                    await self.route(event, routes=chosen[key])
                except Exception:
                    log.exception("routing event %s:%s failed", *key)
                    failed += 1
        return failed

    async def route_pending(self, older_than: timedelta) -> int:
        """Routes the events received at least ``older_than`` ago and not routed yet (the
        stream lost them, or their consumer died before it routed them); how many."""
        query = (
            select(InboundEvent.payload)
            .where(
                InboundEvent.routed_at.is_(None),
                InboundEvent.received_at <= datetime.now(UTC) - older_than,
            )
            .order_by(InboundEvent.id)
            .limit(PENDING_BATCH)
        )
        async with self.sessions() as session:
            payloads = (await session.scalars(query)).all()
        await self.route_many([restored(payload) for payload in payloads])
        return len(payloads)

    async def replay(self, since: datetime, until: datetime, type: str | None = None) -> Replayed:
        """Routes again every event received in [``since``, ``until``) (of ``type``), oldest
        first: routes without a run start one, stopped runs run again, and the rest (their
        effects reached their owners, or are on the way) are left. The runs it starts or
        restarts are run by the engine's background loop, not before this answers."""
        if until <= since:
            raise BadUserInput("a replay's to must be after its from")
        query = (
            select(InboundEvent.payload)
            .where(InboundEvent.received_at >= since, InboundEvent.received_at < until)
            .order_by(InboundEvent.id)
            .limit(REPLAY_LIMIT + 1)
        )
        if type is not None:
            query = query.where(InboundEvent.type == type)
        async with self.sessions() as session:
            payloads = (await session.scalars(query)).all()
        if len(payloads) > REPLAY_LIMIT:
            raise BadUserInput(
                f"more than {REPLAY_LIMIT} events in that range: replay a shorter one"
            )
        started = retried = unchanged = 0
        for payload in payloads:
            routed = await self.route(restored(payload), retry_stopped=True, advance=False)
            started += len(routed.started)
            retried += len(routed.retried)
            unchanged += len(routed.unchanged)
        return Replayed(len(payloads), started, retried, unchanged)
