from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.billing import BillingConnector, connect, wire
from connectors.billing.errors import WebhookSignatureInvalid
from connectors.billing.webhooks import to_changes, verify
from connectors.errors import (
    UpstreamConflict,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from connectors.models import (
    ChangeBatch,
    ChangeEvent,
    ConnectorConfig,
    CustomerRecord,
    Invoice,
    ObjectKind,
    Plan,
    Subscription,
    SystemName,
    WriteCommand,
)
from connectors.money import Money
from connectors.sandbox.billing import create_app
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.seed import generate
from connectors.sandbox.serve import serve_in_thread
from tests.connectors.conftest import running_sandbox
from tests.connectors.contract import ConnectorCase, ConnectorContract

SEEDED = generate(customers=8, seed=3, as_of=date(2026, 11, 1)).slice(SystemName.BILLING)
SECRET = "sandbox-secret"
WEBHOOK_SECRET = "whsec_test_billing"
NEW_CUSTOMER = WriteCommand(
    kind=ObjectKind.CUSTOMER,
    action="create",
    payload={"name": "Contract Co", "email": "ap@contract.example", "currency": "EUR",
             "ref": "cust_9001"},
)  # fmt: skip
K = ObjectKind


def seeded(kind: type[Any]) -> list[Any]:
    return [r for r in SEEDED if isinstance(r, kind)]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[str, httpx.Client]]:
    with running_sandbox(create_app, SEEDED) as running:
        yield running


class Receiver:
    """A webhook endpoint on loopback that keeps what it was sent."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, str]] = []
        self._arrived = threading.Condition()

        async def hook(request: Request) -> Response:
            body = await request.body()
            with self._arrived:
                self.received.append((body, request.headers["stripe-signature"]))
                self._arrived.notify_all()
            return Response(status_code=204)

        self.running = serve_in_thread(Starlette(routes=[Route("/hook", hook, methods=["POST"])]))
        self.url = self.running.url + "/hook"

    def delivery_of(self, object_id: str, timeout: float = 5.0) -> tuple[bytes, str]:
        """The first delivery whose event is about ``object_id``, waiting for it."""

        def find() -> tuple[bytes, str] | None:
            for body, signature in self.received:
                if json.loads(body)["data"]["object"]["id"] == object_id:
                    return body, signature
            return None

        with self._arrived:
            self._arrived.wait_for(lambda: find() is not None, timeout)
            found = find()
        assert found is not None, f"no webhook for {object_id} within {timeout}s"
        return found


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.running.stop()


@pytest.fixture(scope="module")
def fresh(receiver: Receiver) -> Iterator[tuple[str, httpx.Client]]:
    """A second seeded sandbox, delivering webhooks, for the tests that write."""
    config = SandboxConfig(webhook_url=receiver.url, webhook_secret=WEBHOOK_SECRET)
    with running_sandbox(create_app, SEEDED, config) as running:
        yield running


def _connector(url: str, secret: str = SECRET, **kw: Any) -> BillingConnector:
    connector = connect(ConnectorConfig(base_url=url, secret=secret, **kw))
    assert isinstance(connector, BillingConnector)
    return connector


@pytest.fixture
async def case(sandbox: tuple[str, httpx.Client]) -> AsyncIterator[ConnectorCase]:
    url, admin = sandbox
    connector = _connector(url)
    yield ConnectorCase(
        connector=connector,
        admin=admin,
        seeded=SEEDED,
        batched_reads=frozenset(),  # Stripe has no batch retrieve
        related={
            K.SUBSCRIPTION: lambda r: r.customer_id,
            K.INVOICE: lambda r: r.customer_id,
            K.PAYMENT: lambda r: r.customer_id,
        },
        write=NEW_CUSTOMER,
        make_bad_connector=lambda: _connector(url, secret="sk_test_not_the_key"),
    )
    await connector.aclose()


@pytest.fixture
async def billing(fresh: tuple[str, httpx.Client]) -> AsyncIterator[BillingConnector]:
    connector = _connector(fresh[0], timeout=2.0)
    yield connector
    await connector.aclose()


class TestBillingContract(ConnectorContract):
    pass


def _get(admin: httpx.Client, path: str, secret: str = SECRET, **params: Any) -> httpx.Response:
    return admin.get(path, params=params, headers={"Authorization": f"Bearer {secret}"})


# wire shapes


def test_a_price_is_served_with_its_product_expanded(sandbox: tuple[str, httpx.Client]) -> None:
    got = _get(sandbox[1], "/v1/prices/price_growth_eur", **{"expand[]": "product"}).json()
    assert got == PRICE_GROWTH_EUR


def test_a_seeded_subscription_keeps_its_period_on_the_item(
    sandbox: tuple[str, httpx.Client],
) -> None:
    sub = seeded(Subscription)[0]
    got = _get(sandbox[1], f"/v1/subscriptions/{sub.id}").json()
    item = got["items"]["data"][0]
    assert (got["object"], got["customer"], got["status"]) == (
        "subscription", sub.customer_id, "active")  # fmt: skip
    assert "current_period_start" not in got
    assert (item["price"]["id"], item["quantity"]) == (sub.plan_id, sub.quantity)
    assert item["current_period_start"] == int(sub.current_period_start.timestamp())
    assert item["current_period_end"] == int(sub.current_period_end.timestamp())


def test_a_seeded_invoice_names_its_subscription_under_parent(
    sandbox: tuple[str, httpx.Client],
) -> None:
    inv = next(i for i in seeded(Invoice) if i.tax.amount_minor)
    got = _get(sandbox[1], f"/v1/invoices/{inv.id}").json()
    assert got["parent"]["subscription_details"]["subscription"] == inv.subscription_id
    assert "subscription" not in got and "tax" not in got
    assert [t["amount"] for t in got["total_taxes"]] == [inv.tax.amount_minor]
    assert (got["subtotal"], got["total"]) == (inv.subtotal.amount_minor, inv.total.amount_minor)


def test_lists_are_stripe_list_objects_paged_newest_first(
    sandbox: tuple[str, httpx.Client],
) -> None:
    admin = sandbox[1]
    first = _get(admin, "/v1/invoices", limit=10).json()
    assert (first["object"], first["url"], first["has_more"]) == ("list", "/v1/invoices", True)
    created = [i["created"] for i in first["data"]]
    assert created == sorted(created, reverse=True)
    rest = _get(admin, "/v1/invoices", limit=100, starting_after=first["data"][-1]["id"]).json()
    assert (len(first["data"]), len(rest["data"]), rest["has_more"]) == (10, 14, False)
    back = _get(admin, "/v1/invoices", limit=3, ending_before=rest["data"][0]["id"]).json()
    assert [i["id"] for i in back["data"]] == [i["id"] for i in first["data"][-3:]]
    assert back["has_more"] is True


def test_a_page_larger_than_100_is_refused(sandbox: tuple[str, httpx.Client]) -> None:
    answer = _get(sandbox[1], "/v1/customers", limit=101)
    assert answer.status_code == 400
    assert answer.json() == {"error": {
        "message": "Invalid limit: must be between 1 and 100", "param": "limit",
        "type": "invalid_request_error"}}  # fmt: skip


async def test_the_connector_clamps_a_large_page_to_stripes_maximum(
    case: ConnectorCase,
) -> None:
    page = await case.connector.list(K.INVOICE, limit=500)
    assert (len(page.items), page.cursor) == (24, None)


def test_a_wrong_key_gets_stripes_401_with_the_key_masked(
    sandbox: tuple[str, httpx.Client],
) -> None:
    answer = _get(sandbox[1], "/v1/customers", secret="sk_test_51Hwrongkey1234567890")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Basic realm="Stripe"'
    assert answer.json() == {"error": {
        "message": "Invalid API Key provided: sk_test_*****************7890",
        "type": "invalid_request_error"}}  # fmt: skip


def test_an_unknown_id_is_resource_missing(sandbox: tuple[str, httpx.Client]) -> None:
    answer = _get(sandbox[1], "/v1/customers/cus_nope")
    assert answer.status_code == 404
    assert answer.json() == {"error": {
        "code": "resource_missing",
        "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
        "message": "No such customer: 'cus_nope'", "param": "id",
        "type": "invalid_request_error"}}  # fmt: skip


def test_injected_faults_speak_stripes_error_json(case: ConnectorCase) -> None:
    case.faults(rate_limit_next=1, retry_after_s=3)
    try:
        limited = _get(case.admin, "/v1/customers")
        case.faults(error_rate=1.0, error_status=502)
        failed = _get(case.admin, "/v1/customers")
    finally:
        case.faults()
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert (failed.status_code, failed.json()["error"]["type"]) == (502, "api_error")


async def test_a_hung_request_is_an_upstream_timeout(sandbox: tuple[str, httpx.Client]) -> None:
    connector = _connector(sandbox[0], timeout=0.2)
    sandbox[1].put("/_sandbox/faults", json={"hang_next": 1, "hang_s": 0.5})
    try:
        with pytest.raises(UpstreamTimeout):
            await connector.list(K.CUSTOMER)
    finally:
        sandbox[1].put("/_sandbox/faults", json={})
        await connector.aclose()


async def test_a_dropped_connection_is_upstream_unavailable(case: ConnectorCase) -> None:
    case.faults(drop_next=1)
    try:
        with pytest.raises(UpstreamUnavailable):
            await case.connector.fetch_many(K.CUSTOMER, [seeded(CustomerRecord)[0].id])
    finally:
        case.faults()


async def test_fetch_many_sends_one_retrieve_per_distinct_id(case: ConnectorCase) -> None:
    ids = [c.id for c in seeded(CustomerRecord)[:3]]
    before = case.connector.calls  # type: ignore[attr-defined]
    got = await case.connector.fetch_many(K.CUSTOMER, [*ids, ids[0], "cus_missing"])
    assert [r.id if r else None for r in got] == [*ids, ids[0], None]
    assert case.connector.calls - before == 4  # type: ignore[attr-defined]


async def test_a_filter_stripe_cannot_apply_is_refused_without_a_call(
    case: ConnectorCase,
) -> None:
    with pytest.raises(UpstreamRejected):
        await case.connector.list(K.PLAN, filters={"customer": "cus_x"})
    assert case.connector.calls == 0  # type: ignore[attr-defined]


# writes, idempotency and the change feed (on the fresh sandbox)


async def test_the_same_key_replays_the_first_response(
    billing: BillingConnector, fresh: tuple[str, httpx.Client]
) -> None:
    first = await billing.write(NEW_CUSTOMER, "replay-1")
    again = await billing.write(NEW_CUSTOMER, "replay-1")
    assert (first.created, again.created, again.id, again.record) == (
        True, False, first.id, first.record)  # fmt: skip
    assert first.record == CustomerRecord(
        system=SystemName.BILLING, id=first.id, name="Contract Co", ref="cust_9001",
        email="ap@contract.example", currency="EUR")  # fmt: skip
    raw = fresh[1].post(
        "/v1/customers", data={"name": "Contract Co"},
        headers={"Authorization": f"Bearer {SECRET}", "Idempotency-Key": "replay-1"},
    )  # fmt: skip
    assert raw.status_code == 400
    assert raw.json()["error"]["type"] == "idempotency_error"


async def test_reusing_a_key_for_other_parameters_is_a_conflict(
    billing: BillingConnector,
) -> None:
    await billing.write(NEW_CUSTOMER, "conflict-1")
    other = WriteCommand(kind=K.CUSTOMER, action="create", payload={"name": "Someone Else"})
    with pytest.raises(UpstreamConflict):
        await billing.write(other, "conflict-1")


async def test_an_invoice_write_bills_one_item_on_a_draft_invoice(
    billing: BillingConnector,
) -> None:
    customer = seeded(CustomerRecord)[1]
    command = WriteCommand(kind=K.INVOICE, action="create", payload={
        "customer": customer.id, "currency": "JPY", "amount_minor": 12000,
        "description": "Onboarding"})  # fmt: skip
    before = billing.calls
    result = await billing.write(command, "invoice-1")
    replay = await billing.write(command, "invoice-1")
    assert billing.calls - before == 4  # item + invoice, twice
    assert (replay.id, replay.created) == (result.id, False)
    record = result.record
    assert isinstance(record, Invoice)
    assert (record.customer_id, record.status, record.number) == (customer.id, "draft", None)
    assert (record.subtotal, record.tax, record.total) == (
        Money(12000, "JPY"), Money(0, "JPY"), Money(12000, "JPY"))  # fmt: skip
    assert await billing.fetch_many(K.INVOICE, [result.id]) == [record]


async def test_a_credit_note_lowers_what_an_open_invoice_asks_for(
    billing: BillingConnector, fresh: tuple[str, httpx.Client]
) -> None:
    invoice = next(i for i in seeded(Invoice) if i.status == "open")
    command = WriteCommand(kind=K.INVOICE, action="create_credit_note", payload={
        "invoice": invoice.id, "amount_minor": 1000, "reason": "order_change",
        "memo": "SLA credit"})  # fmt: skip
    note = await billing.write(command, "credit-1")
    got = _get(fresh[1], f"/v1/credit_notes/{note.id}").json()
    assert (got["invoice"], got["amount"], got["type"], got["memo"]) == (
        invoice.id, 1000, "pre_payment", "SLA credit")  # fmt: skip
    after = _get(fresh[1], f"/v1/invoices/{invoice.id}").json()
    assert after["amount_due"] == invoice.total.amount_minor - 1000
    too_much = {**command.payload, "amount_minor": invoice.total.amount_minor}
    with pytest.raises(UpstreamRejected):
        await billing.write(WriteCommand(kind=K.INVOICE, action="create_credit_note",
                                         payload=too_much), "credit-2")  # fmt: skip


def test_seeding_records_no_events() -> None:
    with running_sandbox(create_app, SEEDED) as (_, admin):
        assert _get(admin, "/v1/events").json()["data"] == []


async def test_the_feed_is_oldest_first_and_its_cursor_moves_forward() -> None:
    with running_sandbox(create_app, SEEDED) as (url, _):
        connector = _connector(url)
        connector.feed_limit = 2
        try:
            assert await connector.changes(None) == ChangeBatch(
                events=[], cursor="", has_more=False)  # fmt: skip
            written = [
                (await connector.write(
                    WriteCommand(kind=K.CUSTOMER, action="create", payload={"name": f"N{n}"}),
                    f"feed-{n}")).id
                for n in range(5)
            ]  # fmt: skip
            seen: list[tuple[str, str]] = []
            cursor, batches = None, 0
            while True:
                batch = await connector.changes(cursor)
                seen += [(e.id, e.type) for e in batch.events]
                cursor, batches = batch.cursor, batches + 1
                if not batch.has_more:
                    break
            assert seen == [(w, "created") for w in written]
            assert batches == 3
            assert (await connector.changes(cursor)).events == []
        finally:
            await connector.aclose()


# webhooks


def _sign(body: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    stamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


async def test_the_sandbox_delivers_a_signed_event_for_each_write(
    billing: BillingConnector, receiver: Receiver
) -> None:
    written = await billing.write(NEW_CUSTOMER, "webhook-1")
    body, signature = receiver.delivery_of(written.id)
    event = verify(body, signature, WEBHOOK_SECRET)
    assert (event["type"], event["data"]["object"]["id"]) == ("customer.created", written.id)
    assert event["request"]["idempotency_key"] == "webhook-1"
    assert to_changes(event) == [ChangeEvent(
        system=SystemName.BILLING, kind=K.CUSTOMER, id=written.id, type="created",
        occurred_at=datetime.fromtimestamp(event["created"], UTC))]  # fmt: skip


EVENT = json.dumps({"id": "evt_1", "object": "event", "type": "invoice.paid", "created": 1790000000,
                    "data": {"object": {"id": "in_1", "object": "invoice"}}}).encode()  # fmt: skip


def test_a_valid_signature_is_accepted() -> None:
    assert verify(EVENT, _sign(EVENT), WEBHOOK_SECRET)["id"] == "evt_1"


@pytest.mark.parametrize(
    ("body", "signature"),
    [
        (EVENT.replace(b"in_1", b"in_2"), _sign(EVENT)),
        (EVENT, _sign(EVENT, secret="whsec_other")),
        (EVENT, _sign(EVENT, at=int(time.time()) - 301)),
        (EVENT, "t=1,v0=abc"),
        (EVENT, ""),
    ],
    ids=["tampered-body", "wrong-secret", "stale", "no-v1", "missing"],
)
def test_a_bad_signature_is_rejected(body: bytes, signature: str) -> None:
    with pytest.raises(WebhookSignatureInvalid):
        verify(body, signature, WEBHOOK_SECRET)


@pytest.mark.parametrize(
    ("type_", "obj", "expected"),
    [
        ("invoice.paid", {"id": "in_1"}, (K.INVOICE, "in_1", "updated")),
        ("customer.subscription.deleted", {"id": "sub_1"}, (K.SUBSCRIPTION, "sub_1", "deleted")),
        ("payment_intent.created", {"id": "pi_1"}, (K.PAYMENT, "pi_1", "created")),
        ("credit_note.created", {"id": "cn_1", "invoice": "in_9"}, (K.INVOICE, "in_9", "updated")),
        ("customer.tax_id.created", {"id": "txi_1"}, None),
        ("charge.refunded", {"id": "ch_1"}, None),
    ],
)
def test_event_types_map_to_changed_records(
    type_: str, obj: dict[str, Any], expected: tuple[Any, ...] | None
) -> None:
    changes = to_changes({"type": type_, "created": 1790000000, "data": {"object": obj}})
    assert [(c.kind, c.id, c.type) for c in changes] == ([expected] if expected else [])


# reading older API shapes (localstripe, accounts pinned to old versions)


def test_old_shapes_are_read_too() -> None:
    sub = wire.subscription({
        "id": "sub_1", "customer": "cus_1", "status": "active", "quantity": 2,
        "current_period_start": 1790000000, "current_period_end": 1792592000,
        "items": {"data": [{"plan": {"id": "plan_1"}, "quantity": 3}]}})  # fmt: skip
    assert (sub.plan_id, sub.quantity, sub.current_period_start) == (
        "plan_1", 3, datetime(2026, 9, 21, 14, 13, 20, tzinfo=UTC))  # fmt: skip
    inv = wire.invoice({
        "id": "in_1", "customer": "cus_1", "status": "paid", "currency": "eur", "subtotal": 100,
        "tax": 21, "total": 121, "created": 1790000000, "subscription": "sub_1",
        "total_taxes": [{"amount": 99}]})  # fmt: skip
    assert (inv.tax, inv.subscription_id) == (Money(21, "EUR"), "sub_1")
    pay = wire.payment({
        "id": "pi_1", "customer": None, "invoice": "in_1", "amount": 121, "currency": "eur",
        "status": "succeeded", "created": 1790000000, "metadata": {}})  # fmt: skip
    assert (pay.invoice_id, pay.customer_id) == ("in_1", "")
    plan = wire.plan({
        "id": "plan_1", "object": "plan", "amount": 900, "currency": "usd", "interval": "year",
        "product": {"name": "Pro",
                    "metadata": {"features": "sso, api", "sla_hours": "8"}}})  # fmt: skip
    assert plan == Plan(
        system=SystemName.BILLING, id="plan_1", name="Pro", price=Money(900, "USD"),
        interval="year", features=("sso", "api"), support_tier="", sla_hours=8)  # fmt: skip


PRICE_GROWTH_EUR = {
    "id": "price_growth_eur", "object": "price", "active": True, "billing_scheme": "per_unit",
    "created": 1788253200, "currency": "eur", "custom_unit_amount": None, "livemode": False,
    "lookup_key": None, "metadata": {}, "nickname": None,
    "product": {
        "id": "prod_growth", "object": "product", "active": True, "created": 1788253200,
        "default_price": None, "description": None, "images": [], "livemode": False,
        "marketing_features": [],
        "metadata": {"features": "api_access,email_support,sso,audit_log",
                     "support_tier": "priority", "sla_hours": "24"},
        "name": "Growth", "package_dimensions": None, "shippable": None,
        "statement_descriptor": None, "tax_code": None, "type": "service", "unit_label": None,
        "updated": 1788253200, "url": None,
    },
    "recurring": {"interval": "month", "interval_count": 1, "meter": None,
                  "trial_period_days": None, "usage_type": "licensed"},
    "tax_behavior": "exclusive", "tiers_mode": None, "transform_quantity": None,
    "type": "recurring", "unit_amount": 18500, "unit_amount_decimal": "18500",
}  # fmt: skip
