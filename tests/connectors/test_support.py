from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.commands import CommentOnCase, CreateCase
from connectors.errors import (
    UpstreamConflict,
    UpstreamRateLimited,
    WebhookRejected,
)
from connectors.models import (
    Case,
    CasePriority,
    ChangeEvent,
    ConnectorConfig,
    ObjectKind,
    SlaBreach,
    SystemName,
)
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.serve import serve_in_thread
from connectors.sandbox.support import create_app
from connectors.support import SupportConnector, connect, webhooks
from tests.connectors import support_helpers
from tests.connectors.conftest import running_sandbox
from tests.connectors.contract import (
    ConnectorCase,
    ConnectorContract,
    ContractSpec,
    case_fixture,
)
from tests.connectors.support_helpers import AUTH, SEEDED

NEW_CASE = CreateCase(
    organization_id="360000017",
    subject="Credit requested for SLA breach",
    body="The customer asks for a service credit.",
    priority=CasePriority.HIGH,
)
SPEC = ContractSpec(
    connect=connect,
    seeded=SEEDED,
    batched_reads=frozenset({ObjectKind.CUSTOMER, ObjectKind.CASE}),
    related={ObjectKind.CASE: lambda c: c.organization_id},
    write=lambda: NEW_CASE,
)
case = case_fixture(SPEC)


sandbox, fresh = support_helpers.sandbox, support_helpers.fresh


class TestSupportContract(ConnectorContract):
    pass


def _requests(admin: httpx.Client) -> dict[str, int]:
    counts: dict[str, int] = admin.get("/_sandbox/stats").json()["requests"]
    return counts


def test_batch_limit_is_zendesks_show_many_limit() -> None:
    """The sandbox refuses a 101st id (tests/connectors/sandbox/test_support_sandbox.py)."""
    assert SupportConnector.batch_limit == 100


async def test_rate_limit_carries_retry_after(case: ConnectorCase) -> None:
    case.faults(rate_limit_next=2, retry_after_s=30)
    try:
        raw = case.admin.get("/api/v2/tickets.json", auth=AUTH)
        assert raw.status_code == 429
        assert raw.headers["retry-after"] == "30"
        assert raw.json()["error"] == "TooManyRequests"
        with pytest.raises(UpstreamRateLimited) as limited:
            await case.connector.fetch_many(ObjectKind.CASE, ["9001"])
        assert limited.value.retry_after == 30
        assert limited.value.message.startswith("support is rate limiting us: TooManyRequests")
    finally:
        case.faults()


async def test_fetch_related_searches_many_organizations_in_one_request(
    case: ConnectorCase,
) -> None:
    case.admin.post("/_sandbox/stats/reset")
    got = await case.connector.fetch_related(ObjectKind.CASE, ["360000068", "360000119"])
    assert [[c.id for c in group] for group in got] == [["9008", "9009", "9010"], []]
    assert _requests(case.admin) == {"GET /api/v2/search.json": 1}


async def test_list_filters_tickets_by_organization(case: ConnectorCase) -> None:
    case.admin.post("/_sandbox/stats/reset")
    listed = await case.connector.list_all(ObjectKind.CASE, filters={"customer": "360000068"})
    assert [c.id for c in listed] == ["9008", "9009", "9010"]
    assert await case.connector.list_all(ObjectKind.CASE, filters={"customer": "999"}) == []
    assert await case.connector.list_all(ObjectKind.CASE, filters={"customer": "acme"}) == []
    assert _requests(case.admin) == {
        "GET /api/v2/organizations/360000068/tickets.json": 1,
        "GET /api/v2/organizations/999/tickets.json": 1,
    }


async def test_sla_breaches_and_policies(case: ConnectorCase) -> None:
    connector = case.connector
    assert isinstance(connector, SupportConnector)
    got = await connector.fetch_many(ObjectKind.SLA_BREACH, ["9023-breach"])
    assert got == [
        SlaBreach(
            system=SystemName.SUPPORT,
            id="9023-breach",
            case_id="9023",
            metric="reply_time",
            breached_at=datetime(2026, 10, 30, 12, tzinfo=UTC),
        )
    ]
    policies = await connector.sla_policies()
    assert [(p.title, p.hours("urgent"), p.hours("normal")) for p in policies] == [
        ("Premium support", 4, 4),
        ("Priority support", 24, 24),
        ("Standard support", 48, 48),
    ]


async def test_a_write_replay_and_a_reused_key(fresh: tuple[str, httpx.Client]) -> None:
    url, _ = fresh
    connector = connect(ConnectorConfig(base_url=url, secret="sandbox-secret"))
    try:
        first = await connector.write(NEW_CASE, "k1")
        again = await connector.write(NEW_CASE, "k1")
        assert (first.created, again.created, again.id) == (True, False, first.id)
        assert first.record is not None
        assert isinstance(first.record, Case)
        assert first.record == Case(
            system=SystemName.SUPPORT,
            id="9024",
            organization_id="360000017",
            subject="Credit requested for SLA breach",
            priority="high",
            status="new",
            created_at=first.record.created_at,
            updated_at=first.record.created_at,
        )
        changed = replace(NEW_CASE, priority=CasePriority.LOW)
        with pytest.raises(UpstreamConflict):
            await connector.write(changed, "k1")
    finally:
        await connector.aclose()


async def test_a_private_comment_is_written_once_per_key(fresh: tuple[str, httpx.Client]) -> None:
    url, admin = fresh
    connector = connect(ConnectorConfig(base_url=url, secret="sandbox-secret"))
    note = CommentOnCase(case_id="9023", body="Credit of 50.00 USD approved", public=False)
    try:
        first = await connector.write(note, "credit-1")
        again = await connector.write(note, "credit-1")
        assert (first.id, first.created, again.created) == ("9023", True, False)
        assert connector.calls == 4  # audits + PUT, then audits + GET
    finally:
        await connector.aclose()
    audits = admin.get("/api/v2/tickets/9023/audits.json", auth=AUTH).json()["audits"]
    assert [a["events"] for a in audits] == [
        [
            {
                "id": audits[0]["id"] + 1,
                "type": "Comment",
                "author_id": 1000001,
                "body": "Credit of 50.00 USD approved",
                "public": False,
            }
        ]
    ]
    assert audits[0]["metadata"]["custom"] == {"opsgraph_idempotency_key": "credit-1"}
    assert admin.get("/_sandbox/stats").json()["requests"]["PUT /api/v2/tickets/9023.json"] == 1


async def test_changes_report_a_comment_as_an_update(fresh: tuple[str, httpx.Client]) -> None:
    url, _ = fresh
    connector = connect(ConnectorConfig(base_url=url, secret="sandbox-secret"))
    try:
        batch = await connector.changes(None)
        assert (len(batch.events), batch.has_more) == (16, False)
        note = CommentOnCase(case_id="9001", body="x")
        await connector.write(note, "note-1")
        after = await connector.changes(batch.cursor)
        assert [(e.id, e.type) for e in after.events] == [("9001", "updated")]
    finally:
        await connector.aclose()


def _sign(body: bytes, timestamp: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def test_verify_accepts_a_genuine_webhook() -> None:
    body = b'{"type": "zen:event-type:ticket.created", "detail": {"id": "7"}}'
    now = datetime(2026, 11, 1, 9, tzinfo=UTC)
    stamp = "2026-11-01T08:58:00Z"
    payload = webhooks.verify(body, _sign(body, stamp, "whsec"), stamp, "whsec", now=now)
    assert payload == {"type": "zen:event-type:ticket.created", "detail": {"id": "7"}}


@pytest.mark.parametrize(
    ("body", "secret", "stamp", "code"),
    [
        (b'{"detail": {"id": "8"}}', "whsec", "2026-11-01T08:58:00Z", "WEBHOOK_SIGNATURE_INVALID"),
        (b'{"detail": {"id": "7"}}', "other", "2026-11-01T08:58:00Z", "WEBHOOK_SIGNATURE_INVALID"),
        (b'{"detail": {"id": "7"}}', "whsec", "2026-11-01T08:54:59Z", "WEBHOOK_TIMESTAMP_STALE"),
    ],
    ids=["tampered-body", "wrong-secret", "stale-timestamp"],
)
def test_verify_rejects(body: bytes, secret: str, stamp: str, code: str) -> None:
    signature = _sign(b'{"detail": {"id": "7"}}', stamp, "whsec")
    with pytest.raises(WebhookRejected) as refused:
        webhooks.verify(body, signature, stamp, secret, now=datetime(2026, 11, 1, 9, tzinfo=UTC))
    assert refused.value.code == code


def test_to_changes_maps_event_types() -> None:
    def change(event: str) -> list[tuple[ObjectKind, str, str]]:
        payload: dict[str, Any] = {
            "type": f"zen:event-type:{event}",
            "time": "2026-11-01T09:00:00Z",
            "detail": {"id": "42"},
        }
        return [(e.kind, e.id, e.type) for e in webhooks.to_changes(payload)]

    assert change("ticket.created") == [(ObjectKind.CASE, "42", "created")]
    assert change("ticket.comment_added") == [(ObjectKind.CASE, "42", "updated")]
    assert change("ticket.soft_deleted") == [(ObjectKind.CASE, "42", "deleted")]
    assert change("organization.created") == [(ObjectKind.CUSTOMER, "42", "created")]
    assert change("user.created") == []


async def test_ticket_creation_is_delivered_as_a_signed_webhook() -> None:
    received: list[tuple[bytes, dict[str, str]]] = []

    async def receive(request: Request) -> Response:
        received.append((await request.body(), dict(request.headers)))
        return Response(status_code=200)

    receiver = serve_in_thread(Starlette(routes=[Route("/hook", receive, methods=["POST"])]))
    config = SandboxConfig(webhook_url=f"{receiver.url}/hook", webhook_secret="whsec_test")
    try:
        with running_sandbox(create_app, SEEDED, config) as (url, _):
            connector = connect(ConnectorConfig(base_url=url, secret="sandbox-secret"))
            try:
                written = await connector.write(NEW_CASE, "hook-1")
            finally:
                await connector.aclose()
            for _ in range(200):
                if received:
                    break
                await asyncio.sleep(0.01)
    finally:
        receiver.stop()
    [(body, headers)] = received
    payload = webhooks.verify(
        body,
        headers["x-zendesk-webhook-signature"],
        headers["x-zendesk-webhook-signature-timestamp"],
        "whsec_test",
    )
    assert payload["type"] == "zen:event-type:ticket.created"
    assert payload["detail"]["organization_id"] == "360000017"
    [event] = webhooks.to_changes(payload)
    assert event == ChangeEvent(
        system=SystemName.SUPPORT,
        kind=ObjectKind.CASE,
        id=written.id,
        occurred_at=event.occurred_at,
        type="created",
        parent="360000017",  # the organization whose cases list it
    )
    assert abs(event.occurred_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert json.loads(body)["subject"] == f"zen:ticket:{written.id}"
