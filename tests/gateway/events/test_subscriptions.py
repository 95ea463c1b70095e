"""GraphQL subscriptions over WebSocket (graphql-transport-ws) and over HTTP streams
(Server-Sent Events, multipart), driven by the reference clients ``graphql-ws`` and
``graphql-sse`` from npm and by plain HTTP against a served gateway: an event processed and
a workflow run moving on reach the subscribers that asked, with the same scopes as the
queries; a connection without a valid token is refused; a stream is kept alive while
nothing happens and outlives the request deadline."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from connectors.models import SystemName
from connectors.sandbox.serve import Running, serve_in_thread
from gateway.app import create_app
from gateway.auth.scopes import Role
from gateway.graphql_view import streams
from tests.gateway.events.subscribers import Subscriber, request_credit
from tests.gateway.events.vendor_events import deliver_signed, invoice_paid
from tests.identity import identity
from tests.resolvers.test_credits import breached
from tests.world import SECRET, Sandboxes, migrated_database, sandboxes, until

WHSEC = "whsec_sandbox"
EVENTS = "subscription($type: String) { eventProcessed(type: $type) { id source type subject } }"
RUNS = """subscription($workflow: String) {
  workflowRunUpdated(workflow: $workflow) { id workflow status steps { name status } }
}"""


@pytest.fixture(scope="module")
def boxes() -> Iterator[Sandboxes]:
    with sandboxes() as running:
        yield running


@pytest.fixture(scope="module")
def gateway(
    boxes: Sandboxes, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Starlette]]:
    """A served gateway, and its app (to see who listens)."""
    database = migrated_database(
        tmp_path_factory.mktemp("subscriptions") / "gateway.db", boxes.world
    )
    app = create_app(
        boxes.settings(
            database,
            connector={"timeout_s": 2, "webhook_secret": WHSEC},
            http={"keep_alive_s": 0.5},  # a quiet stream is told twice a second
        )
    )
    running: Running = serve_in_thread(app, lifespan="on")
    try:
        yield running.url, app
    finally:
        running.stop()


def listening(app: Starlette, topic: str, count: int) -> bool:
    return app.state.services.broadcast.subscribers(topic) >= count


def deliver(url: str, event_id: str, customer: str = "cus_x") -> None:
    """A signed ``invoice.paid`` for an invoice of the billing customer ``customer``."""
    deliver_signed(url, invoice_paid(event_id, customer), WHSEC)


def test_a_processed_event_reaches_the_subscribers_that_asked_for_its_type(
    gateway: tuple[str, Starlette],
) -> None:
    url, app = gateway
    token = identity().token(Role.INTEGRATION_ADMIN)
    invoices = Subscriber(url, token, EVENTS, {"type": "billing.invoice"}, 2)
    cases = Subscriber(url, token, EVENTS, {"type": "support"}, 1)
    assert until(lambda: listening(app, "events", 2), within_s=15)
    deliver(url, "evt_sub_1")
    deliver(url, "evt_sub_1")  # the same delivery again: processed once, told once
    deliver(url, "evt_sub_2")
    lines = invoices.lines()
    assert lines[0] == {"connected": True}
    assert [line["next"]["data"]["eventProcessed"] for line in lines[1:3]] == [
        {"id": f"evt_sub_{n}", "source": "/systems/billing", "type": "billing.invoice.paid",
         "subject": f"invoice/in_evt_sub_{n}"}
        for n in (1, 2)
    ]  # fmt: skip
    assert lines[3:] == [{"stopped": True}]
    cases.stop()
    # Told nothing: no support event came (it heard the same broadcasts, which the
    # invoices subscriber has already had).
    assert cases.seen() == [{"connected": True}]
    # Both connections are gone, and so are their subscriptions on the server.
    assert until(lambda: app.state.services.broadcast.subscribers("events") == 0, within_s=5)


def test_a_subscription_needs_the_scopes_its_query_needs(gateway: tuple[str, Starlette]) -> None:
    url, _ = gateway
    agent = identity().token(Role.SUPPORT_AGENT)  # no systems:read
    # Room for two messages: only the server's complete ends it.
    lines = Subscriber(url, agent, EVENTS, {}, 2).lines()
    assert lines[0] == {"connected": True}
    [refused, ended] = lines[1:]
    assert refused["next"]["data"] is None
    assert [(e["extensions"]["code"], e["message"]) for e in refused["next"]["errors"]] == [
        ("FORBIDDEN", "Not authorized: Subscription.eventProcessed needs systems:read.")
    ]
    assert ended == {"complete": True}


@pytest.mark.parametrize("token", ["", "not-a-token"], ids=["none", "invalid"])
def test_a_connection_without_a_valid_token_is_refused(
    gateway: tuple[str, Starlette], token: str
) -> None:
    url, app = gateway
    database = str(app.state.services.engine.url.database)

    def refusals() -> int:
        with closing(sqlite3.connect(database)) as db:
            found = db.execute(
                "SELECT count(*) FROM audit_log WHERE action = 'access.denied'"
                " AND detail LIKE '%UNAUTHENTICATED%' AND detail LIKE '%subscription%'"
            )
            return int(found.fetchone()[0])

    before = refusals()
    lines = Subscriber(url, token, EVENTS, {}, 1).lines()
    assert lines == [{"error": {"code": 4403, "reason": "Forbidden"}}]
    assert until(lambda: refusals() == before + 1, within_s=10)  # audited, like HTTP's


def test_a_workflow_run_is_seen_moving_on_step_by_step(
    boxes: Sandboxes, gateway: tuple[str, Starlette]
) -> None:
    url, app = gateway
    finance = identity().token(Role.FINANCE_APPROVER)
    watcher = Subscriber(url, finance, RUNS, {"workflow": "service_credit"}, 10)
    assert until(lambda: listening(app, "workflow_runs", 1), within_s=15)
    customer, case = breached(boxes)
    asked = request_credit(url, customer, case.id, "20.00", "sub-credit-1")
    run = asked["data"]["requestCredit"]["workflowRun"]
    assert run["status"] == "SUCCEEDED", asked  # below the threshold: approved and posted
    lines = watcher.lines()
    seen = [line["next"]["data"]["workflowRunUpdated"] for line in lines[1:-1]]
    assert {s["id"] for s in seen} == {run["id"]}
    steps = ("erp_customer", "erp_credit_memo", "billing_credit_note", "notify")

    def state(run_status: str, *step_statuses: str) -> tuple[str, tuple[tuple[str, str], ...]]:
        return run_status, tuple(zip(steps, step_statuses, strict=True))

    pending, running, done = "PENDING", "RUNNING", "SUCCEEDED"
    assert [(s["status"], tuple((x["name"], x["status"]) for x in s["steps"])) for s in seen] == [
        state(running, pending, pending, pending, pending),
        state(running, running, pending, pending, pending),
        state(running, done, pending, pending, pending),
        state(running, done, running, pending, pending),
        state(running, done, done, pending, pending),
        state(running, done, done, running, pending),
        state(running, done, done, done, pending),
        state(running, done, done, done, running),
        state(running, done, done, done, done),
        state(done, done, done, done, done),
    ]
    assert lines[-1] == {"stopped": True}


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_subscription_over_http_is_refused_with_its_code(
    gateway: tuple[str, Starlette], method: str
) -> None:
    url, _ = gateway
    viewer = {**identity().headers(Role.VIEWER), "apollo-require-preflight": "1"}
    query = {"query": EVENTS}
    if method == "GET":
        answer = httpx.get(f"{url}/graphql", params=query, headers=viewer)
    else:
        answer = httpx.post(f"{url}/graphql", json=query, headers=viewer)
    assert (answer.status_code, answer.json()) == (400, {"errors": [{
        "message": "A subscription is accepted over a WebSocket to /graphql "
        "(graphql-transport-ws), or over HTTP as a stream: Accept: text/event-stream "
        '(graphql-sse) or multipart/mixed;subscriptionSpec="1.0".',
        "extensions": {"code": "SUBSCRIPTION_OVER_HTTP"},
    }]})  # fmt: skip


def test_server_sent_events_carry_a_subscription_past_the_request_deadline(
    boxes: Sandboxes, tmp_path: Path
) -> None:
    """Through the reference graphql-sse client, from a gateway whose deadline is 1 s."""
    database = migrated_database(tmp_path / "gateway.db", boxes.world)
    settings = boxes.settings(
        database, request_deadline_s=1, connector={"timeout_s": 0.5, "webhook_secret": WHSEC}
    )
    app = create_app(settings)
    running = serve_in_thread(app, lifespan="on")
    try:
        token = identity().token(Role.INTEGRATION_ADMIN)
        watcher = Subscriber(running.url, token, EVENTS, {"type": "billing.invoice"}, 2, sse=True)
        assert until(lambda: listening(app, "events", 1), within_s=15)
        time.sleep(2.5)  # past the deadline and the backstop a query would have had
        deliver(running.url, "evt_sse_1")
        deliver(running.url, "evt_sse_2")
        lines = watcher.lines()
        assert [line["next"]["data"]["eventProcessed"]["id"] for line in lines[:2]] == [
            "evt_sse_1",
            "evt_sse_2",
        ]
        assert lines[2:] == [{"stopped": True}]
        # The client hung up: the stream, and its subscription, are gone.
        assert until(lambda: app.state.services.broadcast.subscribers("events") == 0)
    finally:
        running.stop()


def _stream(url: str, headers: dict[str, str], body: dict[str, Any], read_s: float) -> str:
    """What a raw HTTP stream says in ``read_s`` (then the client hangs up)."""
    chunks: list[str] = []
    deadline = time.monotonic() + read_s
    with httpx.stream("POST", f"{url}/graphql", json=body, headers=headers, timeout=5) as answer:
        assert answer.status_code == 200, answer.read()
        for chunk in answer.iter_text():
            chunks.append(chunk)
            if time.monotonic() > deadline:
                break
    return "".join(chunks)


def test_a_quiet_stream_is_kept_alive_and_only_subscriptions_stream(
    gateway: tuple[str, Starlette],
) -> None:
    url, _ = gateway
    admin = identity().headers(Role.INTEGRATION_ADMIN)
    sse = {**admin, "accept": "text/event-stream"}
    quiet = _stream(url, sse, {"query": EVENTS, "variables": {"type": "nothing.comes"}}, 1.2)
    # Nothing happened: keep-alive comments, twice a second, and no event.
    assert quiet == ": ping\r\n\r\n" * quiet.count(": ping") and quiet.count(": ping") >= 2
    query = _stream(url, sse, {"query": "{ systems { name } }"}, 5)
    event, data, complete = query.strip().split("\r\n", 2)
    assert event == "event: next"
    (error,) = json.loads(data.removeprefix("data: "))["errors"]
    assert error["message"] == (
        "Only a subscription is streamed: send a query with Accept: application/json."
    )
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert complete.strip() == "event: complete\r\ndata:"


def test_a_multipart_subscription_streams_its_messages(gateway: tuple[str, Starlette]) -> None:
    """Apollo's multipart subscriptions, as Apollo Client and Router ask for them."""
    url, app = gateway
    before = app.state.services.broadcast.subscribers("events")
    headers = {
        **identity().headers(Role.INTEGRATION_ADMIN),
        "accept": 'multipart/mixed;subscriptionSpec="1.0", application/json',
    }
    body = {"query": EVENTS, "variables": {"type": "billing.invoice"}}
    parts: list[str] = []
    with httpx.stream("POST", f"{url}/graphql", json=body, headers=headers, timeout=5) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("multipart/mixed")
        chunks = answer.iter_text()
        assert until(lambda: listening(app, "events", before + 1), within_s=15)
        deliver(url, "evt_multipart_1")
        for chunk in chunks:
            parts.append(chunk)
            if "evt_multipart_1" in "".join(parts):
                break
    payloads = [
        json.loads(part.split("\r\n\r\n", 1)[1])
        for part in "".join(parts).split("--graphql")
        if "\r\n\r\n" in part
    ]
    told = [p["payload"]["data"]["eventProcessed"]["id"] for p in payloads if p.get("payload")]
    assert told == ["evt_multipart_1"]
    assert {} in payloads  # the heartbeat, sent at once


CREDITS = """subscription($status: CreditStatus) {
  creditRequestUpdated(status: $status) { id status decidedBy }
}"""
APPROVE = """mutation($id: ID!, $key: String!) {
  approveCredit(id: $id, idempotencyKey: $key) { credit { status } userErrors { code } }
}"""


def test_the_approvals_queue_sees_a_credit_requested_and_each_change_after(
    boxes: Sandboxes, gateway: tuple[str, Starlette]
) -> None:
    url, app = gateway
    finance = identity().token(Role.FINANCE_APPROVER, subject="finance-sub")
    queue = Subscriber(url, finance, CREDITS, {"status": "REQUESTED"}, 1)
    every = Subscriber(url, finance, CREDITS, {}, 3)
    assert until(lambda: listening(app, "credits", 2), within_s=15)
    customer, case = breached(boxes)
    asked = request_credit(url, customer, case.id, "120.00", "sub-credit-2")
    credit = asked["data"]["requestCredit"]["credit"]
    assert credit["status"] == "REQUESTED", asked  # above the threshold: finance decides
    approved = httpx.post(
        f"{url}/graphql",
        json={"query": APPROVE, "variables": {"id": credit["id"], "key": "sub-approve-2"}},
        headers={"Authorization": f"Bearer {finance}"},
        timeout=30,
    ).json()
    assert approved["data"]["approveCredit"]["credit"]["status"] == "POSTED", approved
    queued = queue.lines()
    assert [line["next"]["data"]["creditRequestUpdated"] for line in queued[1:-1]] == [
        {"id": credit["id"], "status": "REQUESTED", "decidedBy": None}
    ]
    seen = [line["next"]["data"]["creditRequestUpdated"] for line in every.lines()[1:-1]]
    assert seen == [
        {"id": credit["id"], "status": "REQUESTED", "decidedBy": None},
        {"id": credit["id"], "status": "APPROVED", "decidedBy": "finance-sub"},
        {"id": credit["id"], "status": "POSTED", "decidedBy": "finance-sub"},
    ]


async def _eventually(done: Callable[[], bool]) -> bool:
    """Whether ``done()`` comes true within 2 s, asked every 20 ms."""
    for _ in range(100):
        if done():
            return True
        await asyncio.sleep(0.02)
    return done()


async def _connected(url: str, token: str) -> ClientConnection:
    """A raw graphql-transport-ws connection, acknowledged."""
    socket_ = await connect(
        url.replace("http://", "ws://") + "/graphql",
        subprotocols=[Subprotocol("graphql-transport-ws")],
    )
    init = {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
    await socket_.send(json.dumps(init))
    assert json.loads(await socket_.recv()) == {"type": "connection_ack"}
    return socket_


async def _receive(socket_: ClientConnection) -> Any:
    """The next message other than the server's keep-alive pings, which it answers."""
    while True:
        message = json.loads(await asyncio.wait_for(socket_.recv(), 10))
        if message != {"type": "ping"}:
            return message
        await socket_.send(json.dumps({"type": "pong"}))


async def test_the_server_pings_and_closes_a_connection_that_never_answers(
    gateway: tuple[str, Starlette],
) -> None:
    """The module's gateway pings every 0.5 s."""
    url, _ = gateway
    token = identity().token(Role.INTEGRATION_ADMIN)
    answering = await _connected(url, token)
    silent = await _connected(url, token)
    try:
        for _ in range(4):  # 2 s: four pings, each answered; the connection stays
            assert json.loads(await asyncio.wait_for(answering.recv(), 2)) == {"type": "ping"}
            await answering.send(json.dumps({"type": "pong"}))
        # The silent one heard its pings and never answered: closed after two intervals.
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                assert json.loads(await asyncio.wait_for(silent.recv(), 3)) == {"type": "ping"}
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (  # type: ignore[union-attr]
            4408,
            "No pong within two pings",
        )
        await answering.send(json.dumps({"type": "ping"}))
        assert await _receive(answering) == {"type": "pong"}
    finally:
        await answering.close()
        await silent.close()


async def test_a_connection_runs_at_most_twenty_subscriptions_at_once(
    gateway: tuple[str, Starlette],
) -> None:
    url, app = gateway
    socket_ = await _connected(url, identity().token(Role.INTEGRATION_ADMIN))
    try:
        for n in range(1, 22):
            subscribe = {"id": str(n), "type": "subscribe", "payload": {"query": EVENTS}}
            await socket_.send(json.dumps(subscribe))
        refused = await _receive(socket_)
        assert refused["id"] == "21"
        [error] = refused["payload"]["errors"]
        assert (error["extensions"]["code"], error["message"]) == (
            "SUBSCRIPTION_LIMIT",
            "A connection runs at most 20 subscriptions at once; end one first.",
        )
        assert await _receive(socket_) == {
            "id": "21", "type": "complete"
        }  # fmt: skip
        assert app.state.services.broadcast.subscribers("events") == 20
        # One ended, one more may start.
        await socket_.send(json.dumps({"id": "1", "type": "complete"}))
        again = {"id": "22", "type": "subscribe", "payload": {"query": EVENTS}}
        assert await _eventually(lambda: app.state.services.broadcast.subscribers("events") == 19)
        await socket_.send(json.dumps(again))
        assert await _eventually(lambda: app.state.services.broadcast.subscribers("events") == 20)
        # Running: an event reaches subscriptions 2-20 and 22, nothing refused 22.
        await asyncio.to_thread(deliver, url, "evt_sub_limit")
        told = [await _receive(socket_) for _ in range(20)]
        assert sorted((m["id"], m["type"]) for m in told) == sorted(
            (str(n), "next") for n in [*range(2, 21), 22]
        )
    finally:
        await socket_.close()


def test_a_principal_of_one_legal_entity_hears_only_of_its_credits(
    boxes: Sandboxes, gateway: tuple[str, Starlette]
) -> None:
    url, app = gateway
    customer, case = breached(boxes)
    entity = next(c.legal_entity for c in boxes.world.customers if c.id == customer)
    other = sorted({c.legal_entity for c in boxes.world.customers} - {entity})[0]
    elsewhere = identity().token(Role.FINANCE_APPROVER, entities=[other], subject="fin-other")
    here = identity().token(Role.FINANCE_APPROVER, entities=[entity], subject="fin-here")
    outsider = Subscriber(url, elsewhere, CREDITS, {}, 1)
    insider = Subscriber(url, here, CREDITS, {}, 1)
    assert until(lambda: listening(app, "credits", 2), within_s=15)
    asked = request_credit(url, customer, case.id, "110.00", "sub-credit-3")
    credit = asked["data"]["requestCredit"]["credit"]
    [_, told, _] = insider.lines()
    assert told["next"]["data"]["creditRequestUpdated"]["id"] == credit["id"]
    time.sleep(0.5)  # the outsider heard the same broadcast: time to print, were it told
    outsider.stop()
    assert outsider.process.returncode is not None and outsider.seen() == [{"connected": True}]


CUSTOMER = """subscription($id: ID!) {
  customerUpdated(id: $id) { id name externalIds { system id } }
}"""


def test_a_customer_watcher_hears_of_events_about_its_customer_only(
    boxes: Sandboxes, gateway: tuple[str, Starlette]
) -> None:
    url, app = gateway
    watched, other = boxes.world.customers[2], boxes.world.customers[3]
    token = identity().token(Role.INTEGRATION_ADMIN)
    foreign = next(c for c in boxes.world.customers if c.legal_entity != watched.legal_entity)
    outsider = identity().token(Role.VIEWER, entities=[foreign.legal_entity], subject="v-out")
    before = app.state.services.broadcast.subscribers("customers")
    watcher = Subscriber(url, token, CUSTOMER, {"id": watched.id}, 1)
    refused = Subscriber(url, outsider, CUSTOMER, {"id": watched.id}, 2)
    assert until(lambda: listening(app, "customers", before + 1), within_s=15)
    deliver(url, "evt_cust_other", other.external_ids[SystemName.BILLING])
    deliver(url, "evt_cust_watched", watched.external_ids[SystemName.BILLING])
    lines = watcher.lines()
    assert lines[0] == {"connected": True}
    told = lines[1]["next"]["data"]["customerUpdated"]
    assert (told["id"], told["name"]) == (watched.id, watched.name)
    assert {e["system"]: e["id"] for e in told["externalIds"]} == {
        s.name: i for s, i in watched.external_ids.items()
    }
    assert lines[2:] == [{"stopped": True}]
    # Another legal entity's principal finds no such customer to watch.
    assert refused.lines()[1:] == [
        {"next": {"data": None, "errors": [
            {"message": f"no customer '{watched.id}'", "extensions": {"code": "NOT_FOUND"}}
        ]}},
        {"complete": True},
    ]  # fmt: skip


def test_a_usage_alert_from_billing_drives_its_route_and_a_watcher_sees_each_step(
    boxes: Sandboxes, gateway: tuple[str, Starlette]
) -> None:
    """Usage reported to billing through Stripe's own SDK crosses an alert's threshold;
    billing delivers the signed ``billing.alert.triggered``; the gateway routes it through
    the ERP, the CRM and the support desk, and a graphql-ws watcher sees every step."""
    url, app = gateway
    customer = next(
        c
        for c in boxes.world.customers
        if c.currency == "USD" and c.legal_entity == "Opsgraph Inc." and len(c.external_ids) == 4
    )
    billing = customer.external_ids[SystemName.BILLING]
    token = identity().token(Role.INTEGRATION_ADMIN)
    before = app.state.services.broadcast.subscribers("workflow_runs")
    watcher = Subscriber(url, token, RUNS, {"workflow": "route:usage_over_threshold"}, 10)
    assert until(lambda: listening(app, "workflow_runs", before + 1), within_s=15)
    boxes.deliver(SystemName.BILLING, f"{url}/webhooks/billing")
    http = stripe.RequestsClient()
    try:
        client = stripe.StripeClient(
            SECRET,
            base_addresses={"api": boxes.urls[SystemName.BILLING]},
            http_client=http,
            max_network_retries=0,
        )
        event_name = f"api_calls_{uuid.uuid4().hex[:8]}"
        meter = client.v1.billing.meters.create(
            {"display_name": "API calls", "event_name": event_name,
             "default_aggregation": {"formula": "sum"}}
        )  # fmt: skip
        threshold = {
            "gte": 1000,
            "meter": meter.id,
            "recurrence": "one_time",
            "filters": [{"type": "customer", "customer": billing}],
        }
        client.v1.billing.alerts.create(
            {"alert_type": "usage_threshold", "title": "Over plan", "usage_threshold": threshold}
        )
        for value in (700, 500):  # 1,200: over the threshold by 200
            payload = {"stripe_customer_id": billing, "value": str(value)}
            client.v1.billing.meter_events.create({"event_name": event_name, "payload": payload})
        lines = watcher.lines(timeout_s=30)
    finally:
        http.close()
        boxes.deliver(SystemName.BILLING, None)
    assert lines[0] == {"connected": True} and lines[-1] == {"stopped": True}
    runs = [line["next"]["data"]["workflowRunUpdated"] for line in lines[1:-1]]
    steps = ["enrich_usage", "erp_post_usage", "crm_usage_health", "support_entitlement_changed"]
    # Taken; then each step started and succeeded, in order; then the run succeeded.
    expected = [("RUNNING", ("PENDING",) * 4)]
    for n in range(4):
        done = ("SUCCEEDED",) * n
        expected += [
            ("RUNNING", (*done, "RUNNING", *("PENDING",) * (3 - n))),
            ("RUNNING", (*done, "SUCCEEDED", *("PENDING",) * (3 - n))),
        ]
    expected.append(("SUCCEEDED", ("SUCCEEDED",) * 4))
    seen = [(r["status"], tuple(s["status"] for s in r["steps"])) for r in runs]
    assert seen == expected
    assert {r["id"] for r in runs} == {runs[0]["id"]}
    assert [s["name"] for s in runs[-1]["steps"]] == steps


@pytest.mark.parametrize(
    ("path", "method", "accept", "stream"),
    [
        ("/graphql", "POST", "text/event-stream", True),
        ("/graphql", "GET", "Text/Event-Stream", True),
        ("/graphql", "POST", 'multipart/mixed;subscriptionSpec="1.0", application/json', True),
        ("/graphql", "POST", "application/json", False),
        ("/graphql", "POST", "multipart/mixed;subscriptionSpec*=utf-8''1.0", False),
        ("/graphql", "PUT", "text/event-stream", False),
        ("/webhooks/billing", "POST", "text/event-stream", False),
        ("/readyz", "GET", "text/event-stream", False),
    ],
)
def test_only_a_subscription_request_to_graphql_streams_without_a_deadline(
    path: str, method: str, accept: str, stream: bool
) -> None:
    scope = {"type": "http", "path": path, "method": method,
             "headers": [(b"accept", accept.encode())]}  # fmt: skip
    assert streams(scope) is stream


def test_a_principal_streams_at_most_its_limit_over_http(boxes: Sandboxes, tmp_path: Path) -> None:
    """Each HTTP stream is a request of its own, with no deadline: a principal holds at
    most ``limits.max_streams_per_principal`` (2 here) open at once; another principal is
    not held back by it."""
    database = migrated_database(tmp_path / "gateway.db", boxes.world)
    app = create_app(boxes.settings(database, limits={"max_streams_per_principal": 2}))
    running = serve_in_thread(app, lifespan="on")
    one = {**identity().headers(Role.INTEGRATION_ADMIN, subject="streamer-1"),
           "accept": "text/event-stream"}  # fmt: skip
    other = {**one, **identity().headers(Role.INTEGRATION_ADMIN, subject="streamer-2")}
    body = {"query": EVENTS}
    url = f"{running.url}/graphql"
    try:
        with httpx.Client(timeout=10) as client:
            with (
                client.stream("POST", url, json=body, headers=one),
                client.stream("POST", url, json=body, headers=one),
            ):
                assert until(lambda: listening(app, "events", 2), within_s=10)
                refused = client.post(url, json=body, headers=one).text
                event, data, *_ = refused.split("\r\n")
                assert event == "event: next"
                (error,) = json.loads(data.removeprefix("data: "))["errors"]
                assert error["extensions"]["code"] == "SUBSCRIPTION_LIMIT"
                assert error["message"] == (
                    "A principal streams at most 2 subscriptions over HTTP at once; end one first."
                )
                with client.stream("POST", url, json=body, headers=other):
                    assert until(lambda: listening(app, "events", 3), within_s=10)
            # Both of the first principal's streams ended with their requests.
            assert until(lambda: app.state.services.streams == {}, within_s=10)
    finally:
        running.stop()
