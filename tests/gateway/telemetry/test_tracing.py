"""Traces of a gateway served over real HTTP against sandboxes of this module's own, each
behind a layer that keeps the ``traceparent`` header of every request it gets (what the
system of record sees). Spans are recorded in memory (``spans``)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import create_engine, text
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from connectors.models import Case, SystemName
from connectors.sandbox import fleet
from connectors.sandbox.billing.writes import signed
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.seed import generate
from connectors.sandbox.serve import Running, serve_in_thread
from gateway.app import create_app
from gateway.data.services import Services
from gateway.demo import link_customers
from gateway.extensions.tracing import Tracing
from gateway.ownership import OwnershipMap
from gateway.storage.database import sessions
from gateway.storage.migrate import upgrade
from gateway.storage.tables import OutboxMessage
from gateway.writes.credits import NOTIFY_SUPPORT
from tests.gateway.telemetry.spans import Spans
from tests.gateways import AUTH
from tests.world import SECRET, Sandboxes

BILLING, ERP, CRM, SUPPORT = SystemName.BILLING, SystemName.ERP, SystemName.CRM, SystemName.SUPPORT
WHSEC = "whsec_tracing"
TRACED = {"enabled": True}


class Recorder:
    """In front of a sandbox: the ``traceparent`` of each request to its API."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[str | None] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/_sandbox"):
            self.seen.append(Headers(scope=scope).get("traceparent"))
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def recorded() -> Iterator[tuple[Sandboxes, dict[SystemName, Recorder]]]:
    world = generate(customers=6, seed=5)
    with ExitStack() as stack:
        urls, admin, recorders = {}, {}, {}
        for system, create in fleet.APPS.items():
            recorders[system] = Recorder(create(SandboxConfig(secret=SECRET)))
            running = serve_in_thread(recorders[system])
            stack.callback(running.stop)
            urls[system] = running.url
            admin[system] = stack.enter_context(httpx.Client(base_url=running.url, timeout=30))
        boxes = Sandboxes(urls, admin, world)
        boxes.seed(world)
        yield boxes, recorders


@pytest.fixture
def boxes(recorded: tuple[Sandboxes, dict[SystemName, Recorder]]) -> Iterator[Sandboxes]:
    yield recorded[0]
    recorded[0].reset()


@pytest.fixture
def recorders(
    recorded: tuple[Sandboxes, dict[SystemName, Recorder]],
) -> dict[SystemName, Recorder]:
    for recorder in recorded[1].values():
        recorder.seen.clear()
    return recorded[1]


@pytest.fixture
def database(boxes: Sandboxes, tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'opsgraph.db'}"
    upgrade(url)
    asyncio.run(link_customers(url, boxes.world))
    return url


@pytest.fixture
def gateway(boxes: Sandboxes, database: str, spans: Spans) -> Iterator[str]:
    """A gateway that traces, served over HTTP; its URL. Spans are counted from its first
    request's end on."""
    settings = boxes.settings(
        database, connector={"timeout_s": 5, "webhook_secret": WHSEC}, telemetry=TRACED
    )
    running: Running = serve_in_thread(create_app(settings), lifespan="on")
    try:
        ask(running.url, "{ systems { name } }")
        spans.wait(lambda found: found.named("POST /graphql"))
        boxes.reset_stats()
        spans.clear()
        yield running.url
    finally:
        boxes.reset()
        running.stop()


def ask(url: str, query: str, **variables: Any) -> dict[str, Any]:
    answer = httpx.post(
        f"{url}/graphql", json={"query": query, "variables": variables}, headers=AUTH, timeout=30
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def trace_id(span: ReadableSpan) -> str:
    return f"{span.context.trace_id:032x}"


def traced(header: str | None) -> str | None:
    """The trace id a ``traceparent`` header carries."""
    return None if header is None else header.split("-")[1]


PAGE = """
query CustomerPage($first: Int!) {
  customers(first: $first) { edges { node { name account { name } subscriptions { status } } } }
}
"""


def test_a_query_traces_its_connector_calls_under_its_operation(
    gateway: str, spans: Spans, recorders: dict[SystemName, Recorder]
) -> None:
    answer = ask(gateway, PAGE, first=3)
    assert "errors" not in answer
    spans.wait(lambda found: found.named("POST /graphql"))

    (server,) = spans.named("POST /graphql")
    (operation,) = spans.named("query CustomerPage")
    assert server.kind is SpanKind.SERVER and server.attributes["http.route"] == "/graphql"
    assert spans.parent(operation) is server
    assert operation.attributes == {
        "graphql.operation.type": "query",
        "graphql.operation.name": "CustomerPage",
    }
    # One call per system and kind for the page's three customers: batched, not per row.
    called = sorted(spans.starting("connector "), key=lambda s: s.name)
    assert [(s.name, dict(s.attributes or {})) for s in called] == [
        (
            "connector billing.fetch_related",
            {
                "connector.system": "billing",
                "connector.operation": "fetch_related",
                "connector.kind": "subscription",
                "connector.batch_size": 3,
                "connector.attempt": 1,
                "connector.breaker_state": "closed",
            },
        ),
        (
            "connector crm.fetch_many",
            {
                "connector.system": "crm",
                "connector.operation": "fetch_many",
                "connector.kind": "account",
                "connector.batch_size": 3,
                "connector.attempt": 1,
                "connector.breaker_state": "closed",
            },
        ),
    ]
    for call in called:
        assert spans.parent(call) is operation
        (request,) = [s for s in spans.all() if spans.parent(s) is call]
        assert request.kind is SpanKind.CLIENT and request.name == "GET"
        # The system of record was sent this trace, with the request's span as its parent.
        (sent,) = recorders[SystemName(call.attributes["connector.system"])].seen
        assert sent is not None
        assert sent.split("-")[1:3] == [trace_id(server), f"{request.context.span_id:016x}"]
    assert not recorders[ERP].seen and not recorders[SUPPORT].seen


def test_a_retried_call_shows_each_attempt(
    gateway: str, spans: Spans, boxes: Sandboxes, recorders: dict[SystemName, Recorder]
) -> None:
    boxes.faults(CRM, error_next=1)  # the first request answers 500, the retry 200

    answer = ask(
        gateway, "query Accounts { customers(first: 2) { edges { node { account { name } } } } }"
    )
    assert "errors" not in answer
    spans.wait(lambda found: found.named("POST /graphql"))

    (operation,) = spans.named("query Accounts")
    first, second = sorted(
        spans.named("connector crm.fetch_many"), key=lambda s: s.attributes["connector.attempt"]
    )
    assert (first.attributes["connector.attempt"], second.attributes["connector.attempt"]) == (1, 2)
    assert spans.parent(first) is operation and spans.parent(second) is operation
    assert first.status.status_code is StatusCode.ERROR
    assert first.attributes["error.type"] == "UPSTREAM_UNAVAILABLE"
    assert second.status.status_code is StatusCode.UNSET and "error.type" not in second.attributes
    assert [traced(t) for t in recorders[CRM].seen] == [trace_id(operation)] * 2


def test_an_operation_span_carries_the_codes_of_its_errors(gateway: str, spans: Spans) -> None:
    answer = ask(gateway, '{ customer(id: "cust_none") { name } nosuchfield }')
    assert answer["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    spans.wait(lambda found: found.named("POST /graphql"))

    (operation,) = spans.named("query")  # anonymous
    assert operation.attributes == {
        "graphql.operation.type": "query",
        "graphql.error.codes": ("GRAPHQL_VALIDATION_FAILED",),
    }
    assert operation.status.status_code is StatusCode.ERROR
    assert not spans.starting("connector ")


def _plan_change(boxes: Sandboxes) -> dict[str, Any]:
    """Stripe's ``customer.subscription.updated`` for a change of plan of a customer's
    subscription: what starts the ``plan_changed`` route."""
    customer = next(c for c in boxes.world.customers if CRM in c.external_ids)
    listed = httpx.get(
        f"{boxes.urls[BILLING]}/v1/subscriptions",
        params={"customer": customer.external_ids[BILLING]},
        auth=(SECRET, ""),
    )
    subscription = listed.json()["data"][0]
    return {
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "created": int(datetime.now(UTC).timestamp()),
        "type": "customer.subscription.updated",
        "data": {"object": subscription, "previous_attributes": {"items": subscription["items"]}},
    }


def test_a_webhook_and_the_work_it_causes_share_its_trace(
    gateway: str,
    spans: Spans,
    boxes: Sandboxes,
    database: str,
    recorders: dict[SystemName, Recorder],
) -> None:
    event = _plan_change(boxes)
    recorders[BILLING].seen.clear()
    body = json.dumps(event).encode()
    delivered = httpx.post(f"{gateway}/webhooks/billing", content=body, headers=signed(WHSEC, body))
    assert delivered.status_code == 200, delivered.text

    # The relay routes the stored event within a second (no Redis here), in a task of its own.
    steps = ("refresh_entitlements", "crm_plan_changed")
    step_names = [f"workflow route:plan_changed.{step}" for step in steps]
    event_name = "event billing.customer.subscription.updated"
    spans.wait(lambda found: found.named(event_name))  # it ends after its steps
    (webhook,) = spans.named("POST /webhooks/{system}")
    (processed,) = spans.named(event_name)
    assert processed.parent is not None and processed.parent.span_id == webhook.context.span_id
    assert processed.attributes == {
        "cloudevents.event_id": event["id"],
        "cloudevents.event_source": "/systems/billing",
        "cloudevents.event_type": "billing.customer.subscription.updated",
        "workflow.runs_started": 1,
    }
    for name, step in zip(step_names, steps, strict=True):
        (span,) = spans.named(name)
        assert spans.parent(span) is processed
        assert {k: span.attributes[k] for k in ("workflow.name", "workflow.step")} == {
            "workflow.name": "route:plan_changed",
            "workflow.step": step,
        }
        assert span.attributes["workflow.attempt"] == 1
    # What the steps asked of billing and the CRM carried the webhook's trace there.
    webhook_trace = trace_id(webhook)
    assert {trace_id(s) for s in spans.starting("connector ")} == {webhook_trace}
    assert recorders[CRM].seen and {traced(t) for t in recorders[CRM].seen} == {webhook_trace}
    assert {traced(t) for t in recorders[BILLING].seen} == {webhook_trace}

    # Stored with the event (CloudEvents' traceparent) and its outbox row.
    engine = create_engine(database.replace("+aiosqlite", ""))
    with engine.connect() as connection:
        payload, kept = connection.execute(
            text("SELECT payload, traceparent FROM outbox WHERE key = :key"),
            {"key": f"billing:{event['id']}"},
        ).one()
    engine.dispose()
    stored = json.loads(payload) if isinstance(payload, str) else payload
    assert traced(kept) == webhook_trace and stored["traceparent"] == kept


def test_a_gateway_that_does_not_trace_adds_nothing(
    boxes: Sandboxes, database: str, spans: Spans, recorders: dict[SystemName, Recorder]
) -> None:
    settings = boxes.settings(database, connector={"timeout_s": 5})
    assert not settings.telemetry.tracing  # the default
    app = create_app(settings)
    assert [m.cls.__name__ for m in app.user_middleware][0] == "AllowedHosts"
    running = serve_in_thread(app, lifespan="on")
    try:
        answer = ask(running.url, PAGE, first=3)
    finally:
        running.stop()

    assert "errors" not in answer
    assert not spans.named("POST /graphql") and not spans.named("query CustomerPage")
    assert recorders[CRM].seen and recorders[CRM].seen == [None] * len(recorders[CRM].seen)
    schema = app.routes[0].endpoint.schema  # type: ignore[attr-defined]
    assert Tracing not in schema.extensions


async def test_a_notification_is_delivered_in_the_trace_of_the_step_that_queued_it(
    boxes: Sandboxes, database: str, spans: Spans, recorders: dict[SystemName, Recorder]
) -> None:
    settings = boxes.settings(database, connector={"timeout_s": 5}, telemetry=TRACED)
    services = Services.build(settings, OwnershipMap.load(settings.ownership_file))
    case = next(r for r in boxes.world.slice(SUPPORT) if isinstance(r, Case))
    step_trace, step_span = "ab" * 16, "cd" * 8
    async with sessions(services.engine).begin() as session:
        session.add(
            OutboxMessage(
                topic=NOTIFY_SUPPORT,
                key="tracing:support",
                payload={"case_id": case.id, "body": "A service credit was approved."},
                traceparent=f"00-{step_trace}-{step_span}-01",
            )
        )
    try:
        assert await services.notifications.deliver_due() == 1
    finally:
        await services.aclose()

    (delivery,) = spans.named(f"outbox {NOTIFY_SUPPORT}")
    assert trace_id(delivery) == step_trace
    assert delivery.parent is not None and f"{delivery.parent.span_id:016x}" == step_span
    (write,) = spans.named("connector support.write")
    assert spans.parent(write) is delivery
    assert recorders[SUPPORT].seen
    assert {traced(t) for t in recorders[SUPPORT].seen} == {step_trace}
