"""Webhooks in, over real HTTP: the billing and support sandboxes deliver signed events to a
served gateway, which proves them, stores them (inbox and outbox) before it answers, and
forgets what they name, so the next customer 360 read shows the change although the cache
would have kept the old answer for an hour. Forged, stale, malformed and repeated deliveries
are answered as a vendor expects and change nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any

import httpx
import pytest

from connectors.models import Case, Subscription, SystemName
from connectors.sandbox.billing.writes import signed as stripe_signed
from connectors.support import webhooks as zendesk
from gateway.persisted.manifest import operations, sha256
from tests.gateway.events.vendor_events import invoice_paid
from tests.gateway.telemetry.prometheus import lookups
from tests.gateways import AUTH, Served
from tests.world import SECRET, Sandboxes, migrated_database, sandboxes, until

BILLING, SUPPORT = SystemName.BILLING, SystemName.SUPPORT
WHSEC = "whsec_sandbox"  # the sandboxes' webhook secret
# Without a webhook, the cache would answer the old 360 for this long.
CACHED = {"timeout_s": 2, "webhook_secret": WHSEC, "cache_ttl_s": 3600}
SANDBOX = {"Authorization": f"Bearer {SECRET}"}
ZENDESK_AGENT = ("agent@example.com/token", SECRET)

SUBSCRIPTIONS = """query($id: ID!) {
  customer(id: $id) { subscriptions { id status } }
}"""
CASES = """query($id: ID!) {
  customer(id: $id) { cases(first: 50) { edges { node { id status priority } } } }
}"""


@pytest.fixture(scope="module")
def boxes() -> Iterator[Sandboxes]:
    """Sandboxes of this module's own: it cancels subscriptions and changes cases."""
    with sandboxes() as running:
        yield running


@pytest.fixture(scope="module")
def linked_db(boxes: Sandboxes, tmp_path_factory: pytest.TempPathFactory) -> str:
    return migrated_database(tmp_path_factory.mktemp("webhooks") / "gateway.db", boxes.world)


@pytest.fixture
def delivering(boxes: Sandboxes) -> Iterator[Callable[[str], None]]:
    """Points billing's and support's deliveries at a gateway; nowhere again afterwards."""

    def to(url: str) -> None:
        for system in (BILLING, SUPPORT):
            boxes.deliver(system, f"{url}/webhooks/{system.value}")

    yield to
    for system in (BILLING, SUPPORT):
        boxes.deliver(system, None)


def rows(linked_db: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(linked_db.removeprefix("sqlite+aiosqlite:///"))) as db:
        return db.execute(sql, args).fetchall()


def inbox(linked_db: str, source: str) -> dict[str, tuple[str, dict[str, Any], bool]]:
    """The inbox's events from ``source``, by event id: type, CloudEvent, processed."""
    found = rows(
        linked_db,
        "SELECT event_id, type, payload, processed_at FROM inbound_events WHERE source = ?",
        source,
    )
    return {e: (t, json.loads(p), done is not None) for e, t, p, done in found}


def ask(url: str, query: str, **variables: Any) -> Any:
    answer = httpx.post(
        f"{url}/graphql", json={"query": query, "variables": variables}, headers=AUTH
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "errors" not in body, body
    return body["data"]


def active_subscription(boxes: Sandboxes) -> tuple[str, Subscription]:
    """A seeded customer and its active subscription."""
    return next(
        (c.id, s)
        for c in boxes.world.customers
        for s in boxes.world.slice(BILLING)
        if isinstance(s, Subscription)
        and s.status.value == "active"
        and s.customer_id == c.external_ids.get(BILLING)
    )


def open_case(boxes: Sandboxes) -> tuple[str, Case]:
    return next(
        (c.id, x)
        for c in boxes.world.customers
        for x in boxes.world.slice(SUPPORT)
        if isinstance(x, Case)
        and x.status.value in ("new", "open")
        and x.organization_id == c.external_ids.get(SUPPORT)
    )


def test_a_cancellation_in_billing_shows_in_the_next_360_read(
    boxes: Sandboxes, served: Served, linked_db: str, delivering: Callable[[str], None]
) -> None:
    url = served(connector=CACHED)
    delivering(url)
    customer, subscription = active_subscription(boxes)
    before = ask(url, SUBSCRIPTIONS, id=customer)["customer"]["subscriptions"]
    assert {"id": subscription.id, "status": "ACTIVE"} in before
    ask(url, SUBSCRIPTIONS, id=customer)
    boxes.reset_stats()
    ask(url, SUBSCRIPTIONS, id=customer)
    assert boxes.totals()[BILLING] == 0  # cached: billing is not asked again

    with httpx.Client(base_url=boxes.urls[BILLING], headers=SANDBOX) as billing:
        cancelled = billing.delete(f"/v1/subscriptions/{subscription.id}")
        assert cancelled.status_code == 200, cancelled.text
        [event] = billing.get(
            "/v1/events", params={"type": "customer.subscription.deleted", "limit": 1}
        ).json()["data"]
    assert until(lambda: inbox(linked_db, "billing").get(event["id"], ("", {}, False))[2])

    after = ask(url, SUBSCRIPTIONS, id=customer)["customer"]["subscriptions"]
    assert {"id": subscription.id, "status": "CANCELED"} in after
    type_, cloud_event, _ = inbox(linked_db, "billing")[event["id"]]
    assert type_ == "billing.customer.subscription.deleted"
    assert {k: v for k, v in cloud_event.items() if k != "data"} == {
        "specversion": "1.0",
        "id": event["id"],
        "source": "/systems/billing",
        "type": "billing.customer.subscription.deleted",
        "subject": f"subscription/{subscription.id}",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event["created"])),
        "datacontenttype": "application/json",
    }
    assert cloud_event["data"] == event
    # The outbox holds it for the stream, once.
    assert rows(linked_db, "SELECT topic FROM outbox WHERE key = ?", f"billing:{event['id']}") == [
        ("events",)
    ]


def test_a_case_changed_in_support_shows_in_the_next_360_read(
    boxes: Sandboxes, served: Served, linked_db: str, delivering: Callable[[str], None]
) -> None:
    url = served(connector=CACHED)
    delivering(url)
    customer, case = open_case(boxes)
    priority = "low" if case.priority.value != "low" else "high"  # a change either way
    cases = ask(url, CASES, id=customer)["customer"]["cases"]["edges"]
    assert {"id": case.id, "status": case.status.name, "priority": case.priority.name} in [
        e["node"] for e in cases
    ]
    with httpx.Client(base_url=boxes.urls[SUPPORT], auth=ZENDESK_AGENT) as support:
        changed = support.put(
            f"/api/v2/tickets/{case.id}.json",
            json={"ticket": {"status": "pending", "priority": priority}},
        )
    assert changed.status_code == 200, changed.text

    def shown() -> bool:
        edges = ask(url, CASES, id=customer)["customer"]["cases"]["edges"]
        return {"id": case.id, "status": "PENDING", "priority": priority.upper()} in [
            e["node"] for e in edges
        ]

    # The ticket's two changes are two events; either makes the next read ask support.
    assert until(shown)

    def processed() -> list[str]:
        return sorted(t for t, _, done in inbox(linked_db, "support").values() if done)

    expected = ["support.ticket.priority_changed", "support.ticket.status_changed"]
    assert until(lambda: processed() == expected), processed()


def test_an_invoice_billed_shows_in_the_next_360_the_response_cache_served(
    boxes: Sandboxes, served: Served, linked_db: str, delivering: Callable[[str], None]
) -> None:
    # The dashboards' customer 360, by hash, answered from the response cache once warm
    # (gateway.data.responses); billing's webhook makes the next one execute again.
    url = served(connector=CACHED, owned_ttl_s=3600)
    delivering(url)
    customer = boxes.world.customers[-1]
    c360 = next(o for o in operations() if o.name == "Customer360")
    asked = {
        "query": c360.body,
        "variables": {"id": customer.id},
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(c360.body)}},
    }

    def c360_invoices() -> dict[str, Any]:
        answer = httpx.post(f"{url}/graphql", json=asked, headers=AUTH)
        assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
        invoices: dict[str, Any] = answer.json()["data"]["customer"]["invoices"]
        return invoices

    before = c360_invoices()
    c360_invoices()
    boxes.reset_stats()
    assert c360_invoices() == before
    assert sum(boxes.totals().values()) == 0
    assert lookups(url, "Customer360") == {"miss": 2, "hit": 1, "changed": 0, "bypassed": 0}

    with httpx.Client(base_url=boxes.urls[BILLING], headers=SANDBOX) as billing:
        draft = billing.post("/v1/invoices", data={"customer": customer.external_ids[BILLING]})
        assert draft.status_code == 200, draft.text
        billed = billing.post(f"/v1/invoices/{draft.json()['id']}/finalize")
        assert billed.status_code == 200, billed.text
    invoice = billed.json()

    def processed() -> bool:
        found = [t for t, e, done in inbox(linked_db, "billing").values()
                 if done and e["data"]["data"]["object"]["id"] == invoice["id"]]  # fmt: skip
        return "billing.invoice.finalized" in found

    assert until(processed)
    after = c360_invoices()
    assert after["totalCount"] == before["totalCount"] + 1
    assert invoice["id"] in [e["node"]["id"] for e in after["edges"]]
    assert lookups(url, "Customer360") == {"miss": 2, "hit": 1, "changed": 1, "bypassed": 0}


def _post(url: str, system: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{url}/webhooks/{system}", content=body, headers=headers)


def stripe_event(event_id: str, **changes: Any) -> bytes:
    return json.dumps(invoice_paid(event_id, invoice="in_webhook_test") | changes).encode()


def test_a_delivery_repeated_is_stored_and_processed_once(served: Served, linked_db: str) -> None:
    url = served(connector=CACHED)
    body = stripe_event("evt_repeated_1")
    first = _post(url, "billing", body, stripe_signed(WHSEC, body))
    again = _post(url, "billing", body, stripe_signed(WHSEC, body))  # a vendor's retry
    assert (first.status_code, first.json()) == (
        200, {"received": "evt_repeated_1", "duplicate": False}
    )  # fmt: skip
    assert (again.status_code, again.json()) == (
        200, {"received": "evt_repeated_1", "duplicate": True}
    )  # fmt: skip
    assert rows(
        linked_db, "SELECT count(*) FROM inbound_events WHERE event_id = ?", "evt_repeated_1"
    ) == [(1,)]
    assert rows(
        linked_db, "SELECT count(*) FROM outbox WHERE key = ?", "billing:evt_repeated_1"
    ) == [(1,)]


def _zendesk(body: bytes, *, secret: str = WHSEC, age_s: float = 0) -> dict[str, str]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - age_s))
    return {
        "Content-Type": "application/json",
        zendesk.SIGNATURE_HEADER: zendesk.sign(body, stamp, secret),
        zendesk.TIMESTAMP_HEADER: stamp,
    }


def _stale_stripe(body: bytes) -> dict[str, str]:
    headers = stripe_signed(WHSEC, body)
    stamp = int(time.time()) - 301
    digest = hmac.new(WHSEC.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    return {**headers, "Stripe-Signature": f"t={stamp},v1={digest.hexdigest()}"}


TICKET = json.dumps(
    {
        "id": "zen_evt_forged",
        "type": "zen:event-type:ticket.status_changed",
        "time": "2026-11-01T09:00:00Z",
        "detail": {"id": "7", "organization_id": "0"},
    }
).encode()
EVENT = stripe_event("evt_forged_1")
NO_ID = stripe_event("", id=None)


@pytest.mark.parametrize(
    ("system", "body", "sign", "code"),
    [
        ("billing", EVENT, lambda: stripe_signed("whsec_other", EVENT),
         "WEBHOOK_SIGNATURE_INVALID"),
        ("billing", EVENT.replace(b"cus_x", b"cus_y"), lambda: stripe_signed(WHSEC, EVENT),
         "WEBHOOK_SIGNATURE_INVALID"),
        ("billing", EVENT, dict, "WEBHOOK_SIGNATURE_INVALID"),
        ("billing", EVENT, lambda: _stale_stripe(EVENT), "WEBHOOK_TIMESTAMP_STALE"),
        ("billing", b"[1, 2]", lambda: stripe_signed(WHSEC, b"[1, 2]"), "WEBHOOK_MALFORMED"),
        ("billing", NO_ID, lambda: stripe_signed(WHSEC, NO_ID), "WEBHOOK_MALFORMED"),
        ("support", TICKET, lambda: _zendesk(TICKET, secret="whsec_other"),
         "WEBHOOK_SIGNATURE_INVALID"),
        ("support", TICKET, lambda: _zendesk(TICKET, age_s=301), "WEBHOOK_TIMESTAMP_STALE"),
        ("support", b"not json", lambda: _zendesk(b"not json"), "WEBHOOK_MALFORMED"),
    ],
    ids=["wrong-secret", "tampered", "unsigned", "stale", "not-an-event", "no-id",
         "zendesk-wrong-secret", "zendesk-stale", "zendesk-not-json"],
)  # fmt: skip
def test_a_delivery_not_proved_is_refused_stored_nowhere_and_audited(
    served: Served,
    linked_db: str,
    system: str,
    body: bytes,
    sign: Callable[[], dict[str, str]],
    code: str,
) -> None:
    # Signed as the test runs, not as the suite is collected: a signature made minutes
    # earlier would be stale (300 s tolerance) and refused for that instead.
    headers = sign()
    url = served(connector=CACHED)
    before = rows(linked_db, "SELECT count(*) FROM inbound_events")
    queued = rows(linked_db, "SELECT count(*) FROM outbox")
    audited = rows(linked_db, "SELECT count(*) FROM audit_log WHERE action = 'webhook.rejected'")
    refused = _post(url, system, body, headers)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == code
    assert "Traceback" not in refused.text and WHSEC not in refused.text
    assert rows(linked_db, "SELECT count(*) FROM inbound_events") == before
    assert rows(linked_db, "SELECT count(*) FROM outbox") == queued

    def audited_now() -> bool:
        found = rows(
            linked_db,
            "SELECT count(*) FROM audit_log WHERE action = 'webhook.rejected' AND detail LIKE ?",
            f'%"{code}"%',
        )
        return (
            found[0][0] > 0
            and rows(linked_db, "SELECT count(*) FROM audit_log WHERE action = 'webhook.rejected'")[
                0
            ][0]
            == audited[0][0] + 1
        )

    assert until(audited_now)


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("POST", "/webhooks/erp", 404, "NOT_FOUND"),  # NetSuite is polled, not a sender
        ("POST", "/webhooks/crm", 404, "NOT_FOUND"),
        ("POST", "/webhooks/paypal", 404, "NOT_FOUND"),
        ("GET", "/webhooks/billing", 405, "METHOD_NOT_ALLOWED"),
    ],
)
def test_other_webhook_routes_are_refused_in_json(
    served: Served, method: str, path: str, status: int, code: str
) -> None:
    url = served(connector=CACHED)
    answer = httpx.request(method, f"{url}{path}", content=b"{}")
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)


def test_without_a_webhook_secret_billing_takes_no_deliveries(served: Served) -> None:
    url = served(connector={"timeout_s": 2})
    body = stripe_event("evt_unconfigured")
    answer = _post(url, "billing", body, stripe_signed(WHSEC, body))
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "NOT_FOUND")
