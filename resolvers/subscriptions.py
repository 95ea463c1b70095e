"""GraphQL subscriptions: live status, over WebSocket (``graphql-transport-ws``), fed by the
gateway's broadcast (``gateway.events.broadcast``), so a subscriber on one replica hears what
a webhook or a mutation on another caused.

- ``eventProcessed(type:)``: each event the gateway processed (a webhook's, a change
  feed's), for operations; ``type`` filters by a type or its prefix (``billing.invoice``);
- ``creditRequestUpdated(status:)``: a credit request each time its status changes
  (requested, approved by policy or finance, rejected, posted, failed), as it is then; the
  approvals queue watches ``REQUESTED``;
- ``workflowRunUpdated(id:, workflow:)``: a workflow run each time it moves on (a step
  started, succeeded or failed; the run finished, waits, is parked, retried or cancelled),
  as it is then; a principal limited to legal entities hears only of runs it may see;
- ``customerUpdated(id:)``: the customer, read afresh, each time an event names one of its
  records (a webhook, a change feed) or one of its credits changes.

A subscription needs the same scopes as the matching query, checked when it starts; one
connection runs at most ``limits.max_subscriptions_per_connection`` at once
(``SUBSCRIPTION_LIMIT`` for the one over).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing, contextmanager
from datetime import datetime
from typing import Any

import strawberry
from starlette.websockets import WebSocket
from strawberry.federation.schema_directives import RequiresScopes

from gateway.auth.scopes import Scope, needs
from gateway.errors import NotFound
from gateway.events.broadcast import CREDITS, CUSTOMERS, EVENTS, WORKFLOW_RUNS, Broadcast
from gateway.limits.errors import SubscriptionLimit
from gateway.logs import quoted
from gateway.reconcile.engine import (
    RECONCILIATION_EXCEPTIONS,
    RECONCILIATION_RUNS,
    RunNotFound,
    RunView,
)
from gateway.reconcile.engine import RunStatus as ReconciliationRunStatus
from gateway.rules.severity import Severity
from gateway.workflows.engine import run_of
from resolvers.context import Info
from resolvers.credit import CreditRequestType
from resolvers.customer import CustomerType
from resolvers.enums import CreditStatus, ExceptionSeverity
from resolvers.reconciliation import ReconciliationExceptionType, ReconciliationRunType, visible_run
from resolvers.workflow import WorkflowRunType, visible

# How long a run's subscription waits for a notice before it reads the run itself.
RUN_RECHECK_S = 5.0


@strawberry.type(name="ProcessedEvent", description="An event the gateway has processed.")
class ProcessedEventType:
    id: str = strawberry.field(description="The source's event id.")
    source: str = strawberry.field(description="/systems/<system>")
    type: str = strawberry.field(description="<system>.<type>: billing.invoice.paid, ...")
    subject: str | None = strawberry.field(description="<kind>/<id> of the record it is about.")
    time: datetime = strawberry.field(description="When the source says it happened.")


@contextmanager
def _running(info: Info) -> Iterator[None]:
    """One more subscription on the connection while it runs, and for one streamed over
    HTTP (a request of its own) one more of its principal's streams; refused over either
    limit."""
    context = info.context
    limit = context.services.subscriptions_per_connection
    if context.subscriptions >= limit:
        raise SubscriptionLimit(
            f"A connection runs at most {limit} subscriptions at once; end one first."
        )
    streams = context.services.streams
    holder = None
    if not isinstance(context.request, WebSocket) and context.principal is not None:
        holder = context.principal.subject
        most = context.services.streams_per_principal
        if streams[holder] >= most:
            raise SubscriptionLimit(
                f"A principal streams at most {most} subscriptions over HTTP at once; "
                "end one first."
            )
        streams[holder] += 1
    context.subscriptions += 1
    try:
        yield
    finally:
        context.subscriptions -= 1
        if holder is not None:
            streams[holder] -= 1
            if streams[holder] <= 0:
                del streams[holder]


async def _messages(info: Info, topic: str) -> AsyncGenerator[dict[str, Any], None]:
    """The broadcast's messages on ``topic``, counted against the connection's limit while
    the subscription runs."""
    broadcast: Broadcast = info.context.services.broadcast
    with _running(info):
        async with aclosing(broadcast.subscribe(topic)) as messages:
            async for message in messages:
                yield message


def _matches(wanted: str | None, type_: str) -> bool:
    return wanted is None or type_ == wanted or type_.startswith(f"{wanted}.")


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Each event the gateway processes from now on; `type` filters by a type "
        "or its prefix (`billing.invoice`).",
        directives=[RequiresScopes(scopes=needs(Scope.SYSTEMS_READ))],
    )
    async def event_processed(
        self, info: Info, type: str | None = None
    ) -> AsyncGenerator[ProcessedEventType, None]:
        async with aclosing(_messages(info, EVENTS)) as messages:
            async for message in messages:
                if _matches(type, message["type"]):
                    yield ProcessedEventType(
                        id=message["id"],
                        source=message["source"],
                        type=message["type"],
                        subject=message.get("subject"),
                        time=datetime.fromisoformat(message["time"].replace("Z", "+00:00")),
                    )

    @strawberry.subscription(
        description="A workflow run each time it moves on, as it is then.",
        directives=[RequiresScopes(scopes=needs(Scope.CREDITS_READ))],
    )
    async def workflow_run_updated(
        self, info: Info, id: strawberry.ID | None = None, workflow: str | None = None
    ) -> AsyncGenerator[WorkflowRunType, None]:
        services = info.context.services
        async with aclosing(_messages(info, WORKFLOW_RUNS)) as messages:
            async for message in messages:
                if id is not None and message["run"] != str(id):
                    continue
                # As it was when it moved (the broadcast carries it), else as it is now.
                given = message.get("view")
                run = run_of(given) if given else await services.workflows.get(message["run"])
                if run is None or (workflow is not None and run.workflow != workflow):
                    continue
                if await visible(info, [run]):
                    yield WorkflowRunType.of(run)

    @strawberry.subscription(
        description="The customer, read afresh, each time an event names one of its records "
        "(a webhook, a change feed) or one of its credit requests changes.",
        directives=[RequiresScopes(scopes=needs(Scope.CUSTOMERS_READ))],
    )
    async def customer_updated(
        self, info: Info, id: strawberry.ID
    ) -> AsyncGenerator[CustomerType, None]:
        context = info.context
        if await context.loaders.customer(str(id)) is None:  # another entity's: not there
            raise NotFound(f"no customer {quoted(id)}")
        async with aclosing(_messages(info, CUSTOMERS)) as messages:
            async for message in messages:
                if message["customer"] != str(id):
                    continue
                context.afresh()
                identity = await context.loaders.customer(str(id))
                if identity is not None:
                    yield CustomerType.of(identity)

    @strawberry.subscription(
        description="A credit request each time its status changes, as it is then; `status` "
        "keeps those that changed to it (`REQUESTED`: the approvals queue).",
        directives=[RequiresScopes(scopes=needs(Scope.CREDITS_READ))],
    )
    async def credit_request_updated(
        self, info: Info, status: CreditStatus | None = None
    ) -> AsyncGenerator[CreditRequestType, None]:
        services, principal = info.context.services, info.context.principal
        if principal is None:  # the schema's scopes refuse such a subscription first
            return
        async with aclosing(_messages(info, CREDITS)) as messages:
            async for message in messages:
                # Read as the principal may see it: another legal entity's is not there.
                found = await services.credits.visible(principal, status, [message["credit"]])
                if found:
                    yield CreditRequestType.of(found[0])

    @strawberry.subscription(
        description="A reconciliation run each time it makes progress (about once a second "
        "while it works) and when it ends, as it is then.",
        directives=[RequiresScopes(scopes=needs(Scope.RECONCILIATION_READ))],
    )
    async def reconciliation_run_updated(
        self, info: Info, id: strawberry.ID
    ) -> AsyncGenerator[ReconciliationRunType, None]:
        reconciler = info.context.services.reconciler
        run = await reconciler.get(str(id))
        if not visible_run(info, run):
            raise RunNotFound(f"no reconciliation run {quoted(id)}")
        if run.status is not ReconciliationRunStatus.RUNNING:
            yield ReconciliationRunType.of(run)  # it ended already: as it ended
            return
        async with aclosing(_messages(info, RECONCILIATION_RUNS)) as messages:
            stream = aiter(messages)
            waiting: asyncio.Future[dict[str, Any]] | None = None
            try:
                while True:
                    if waiting is None:
                        waiting = asyncio.ensure_future(anext(stream))
                    done, _ = await asyncio.wait({waiting}, timeout=RUN_RECHECK_S)
                    if not done:
                        # Quiet: a notice lost (the run ended before this listened, a
                        # replica died) must not keep the subscription open. Read it.
                        now = await reconciler.get(str(id))
                        if now.status is not ReconciliationRunStatus.RUNNING:
                            yield ReconciliationRunType.of(now)
                            return
                        continue
                    message, waiting = waiting.result(), None
                    moved = RunView.of_json(message["run"])
                    if moved.id != str(id):
                        continue
                    yield ReconciliationRunType.of(moved)
                    if moved.status is not ReconciliationRunStatus.RUNNING:
                        return
            finally:
                if waiting is not None:
                    waiting.cancel()

    @strawberry.subscription(
        description="Each reconciliation exception a run finds new (or finds again after it "
        "was resolved), at least as severe as `severity`.",
        directives=[RequiresScopes(scopes=needs(Scope.RECONCILIATION_READ))],
    )
    async def reconciliation_exception_raised(
        self, info: Info, severity: ExceptionSeverity = ExceptionSeverity.LOW
    ) -> AsyncGenerator[ReconciliationExceptionType, None]:
        principal = info.context.principal
        if principal is None:
            return
        at_least = Severity.of(severity)
        book = info.context.services.book
        async with aclosing(_messages(info, RECONCILIATION_EXCEPTIONS)) as messages:
            async for message in messages:
                notice = message["exception"]
                if Severity.of(ExceptionSeverity(notice["severity"])) < at_least:
                    continue
                if principal.entities is not None and notice["entity"] not in principal.entities:
                    continue
                try:
                    found = await book.get(notice["id"], principal.entities)
                except NotFound:
                    continue
                yield ReconciliationExceptionType.of(found)
