"""``EscalateCase`` end to end: the command's checks, the support connector, and the Zendesk
sandbox over real HTTP; and the same update made with zenpy, Zendesk's own client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest
from zenpy.lib.api_objects import Comment

from connectors.commands import EscalateCase, InvalidCommand, WriteResult
from connectors.errors import UpstreamNotFound, UpstreamRejected
from connectors.models import Case, CasePriority, ConnectorConfig, ObjectKind, SystemName
from connectors.support import SupportConnector, connect
from tests.connectors import support_helpers
from tests.connectors.sandbox.test_support_vendor_client import AGENT, zendesk
from tests.connectors.support_helpers import AUTH, SEEDED

ESCALATION = EscalateCase(
    case_id="9014", priority=CasePriority.HIGH, reason="Blocks the customer's month-end close"
)

fresh = support_helpers.fresh


@pytest.fixture
async def connector(fresh: tuple[str, httpx.Client]) -> AsyncIterator[SupportConnector]:
    support = connect(ConnectorConfig(base_url=fresh[0], secret="sandbox-secret"))
    assert isinstance(support, SupportConnector)
    yield support
    await support.aclose()


def _requests(admin: httpx.Client) -> dict[str, int]:
    counts: dict[str, int] = admin.get("/_sandbox/stats").json()["requests"]
    return counts


def _comments(admin: httpx.Client, ticket: str) -> list[tuple[str, bool]]:
    comments = admin.get(f"/api/v2/tickets/{ticket}/comments.json", auth=AUTH).json()["comments"]
    return [(c["body"], c["public"]) for c in comments]


def _seeded(ticket: str) -> Case:
    [case] = [r for r in SEEDED if isinstance(r, Case) and r.id == ticket]
    return case


async def test_an_escalation_raises_priority_adds_the_tag_and_an_internal_note(
    fresh: tuple[str, httpx.Client], connector: SupportConnector
) -> None:
    _, admin = fresh
    tagged = {"ticket": {"tags": ["billing"]}}
    assert admin.put("/api/v2/tickets/9014.json", json=tagged, auth=AUTH).status_code == 200
    admin.post("/_sandbox/stats/reset")

    result = await connector.write(ESCALATION, "esc-1")

    assert _requests(admin) == {
        "GET /api/v2/tickets/9014/audits.json": 1,
        "PUT /api/v2/tickets/9014.json": 1,
    }
    assert result.record is not None
    assert result == WriteResult(
        system=SystemName.SUPPORT,
        kind=ObjectKind.CASE,
        id="9014",
        created=True,
        record=replace(
            _seeded("9014"), priority=CasePriority.HIGH, updated_at=result.record.updated_at
        ),
    )
    assert result.record.updated_at > _seeded("9014").updated_at
    assert await connector.fetch_many(ObjectKind.CASE, ["9014"]) == [result.record]
    ticket = admin.get("/api/v2/tickets/9014.json", auth=AUTH).json()["ticket"]
    assert ticket["tags"] == ["billing", "escalated"]
    assert _comments(admin, "9014")[-1] == ("Blocks the customer's month-end close", False)
    audits = admin.get("/api/v2/tickets/9014/audits.json", auth=AUTH).json()["audits"]
    assert [(e["type"], e.get("field_name"), e.get("value")) for e in audits[-1]["events"]] == [
        ("Comment", None, None),
        ("Change", "priority", "high"),
        ("Change", "tags", ["billing", "escalated"]),
    ]
    assert audits[-1]["metadata"]["custom"] == {"opsgraph_idempotency_key": "esc-1"}


async def test_the_same_key_escalates_once(
    fresh: tuple[str, httpx.Client], connector: SupportConnector
) -> None:
    _, admin = fresh
    first = await connector.write(ESCALATION, "esc-1")
    again = await connector.write(ESCALATION, "esc-1")

    assert (first.created, again.created) == (True, False)
    assert again == replace(first, created=False)
    assert _comments(admin, "9014") == [
        ("Invoice shows wrong tax", True),
        ("Blocks the customer's month-end close", False),
    ]
    assert _requests(admin)["PUT /api/v2/tickets/9014.json"] == 1


async def test_an_unknown_ticket_is_not_found_and_nothing_is_written(
    fresh: tuple[str, httpx.Client], connector: SupportConnector
) -> None:
    _, admin = fresh
    with pytest.raises(UpstreamNotFound) as missing:
        await connector.write(replace(ESCALATION, case_id="424242"), "esc-1")
    assert missing.value.message == "support: RecordNotFound: Not found"
    assert _requests(admin) == {"GET /api/v2/tickets/424242/audits.json": 1}


async def test_a_closed_ticket_is_refused_in_zendesks_words(
    fresh: tuple[str, httpx.Client], connector: SupportConnector
) -> None:
    _, admin = fresh
    closed = {"ticket": {"status": "closed"}}
    assert admin.put("/api/v2/tickets/9001.json", json=closed, auth=AUTH).status_code == 200
    before = admin.get("/api/v2/tickets/9001.json", auth=AUTH).json()

    with pytest.raises(UpstreamRejected) as refused:
        await connector.write(replace(ESCALATION, case_id="9001"), "esc-1")

    assert type(refused.value) is UpstreamRejected
    assert refused.value.message == (
        "support rejected the request: RecordInvalid: Record validation errors: "
        "status: Status: closed prevents ticket update"
    )
    assert admin.get("/api/v2/tickets/9001.json", auth=AUTH).json() == before


@pytest.mark.parametrize(
    ("build", "problem"),
    [
        (lambda: replace(ESCALATION, priority=CasePriority.LOW),
         "priority must be CasePriority.HIGH or CasePriority.URGENT"),
        (lambda: replace(ESCALATION, priority=CasePriority.NORMAL),
         "priority must be CasePriority.HIGH or CasePriority.URGENT"),
        (lambda: replace(ESCALATION, priority="urgent"),
         "priority must be CasePriority.HIGH or CasePriority.URGENT"),
        (lambda: replace(ESCALATION, reason=""), "reason must be a non-empty string"),
        (lambda: replace(ESCALATION, case_id=""), "case_id must be a non-empty string"),
    ],
    ids=["low", "normal", "priority-string", "no-reason", "no-case"],
)  # fmt: skip
async def test_a_malformed_escalation_is_refused_before_any_request(
    fresh: tuple[str, httpx.Client],
    connector: SupportConnector,
    build: Callable[[], EscalateCase],
    problem: str,
) -> None:
    _, admin = fresh
    with pytest.raises(InvalidCommand) as refused:
        await connector.write(build(), "esc-1")
    assert refused.value.message == f"EscalateCase: {problem}"
    assert (connector.calls, _requests(admin)) == (0, {})


def test_an_idempotency_key_on_an_update_is_no_replay(fresh: tuple[str, httpx.Client]) -> None:
    """Zendesk honours ``Idempotency-Key`` on ticket creation alone, and so does the
    sandbox: why the connector keys an escalation by its audit instead."""
    _, admin = fresh
    note = {"ticket": {"comment": {"body": "Escalated", "public": False}}}
    for _ in range(2):
        answer = admin.put(
            "/api/v2/tickets/9014.json", json=note, auth=AUTH, headers={"Idempotency-Key": "k"}
        )
        assert (answer.status_code, answer.headers.get("x-idempotency-lookup")) == (200, None)
    assert _comments(admin, "9014")[1:] == [("Escalated", False), ("Escalated", False)]


def test_zenpy_raises_priority_and_adds_an_internal_note(fresh: tuple[str, httpx.Client]) -> None:
    client = zendesk(fresh[0])
    ticket = client.tickets(id=9014)
    ticket.priority = "urgent"
    ticket.comment = Comment(body="Escalated: month-end close is blocked", public=False)
    audit = client.tickets.update(ticket).audit
    events: list[dict[str, Any]] = audit.events
    assert [(e["type"], e.get("field_name"), e.get("value")) for e in events] == [
        ("Comment", None, None),
        ("Change", "priority", "urgent"),
    ]
    again = client.tickets(id=9014)
    assert (again.priority, again.status, again.updated > ticket.updated) == (
        "urgent",
        "open",
        True,
    )
    comments = client.tickets.comments(9014)
    assert [(c.body, c.public, c.author_id) for c in comments][-1] == (
        "Escalated: month-end close is blocked", False, AGENT
    )  # fmt: skip
