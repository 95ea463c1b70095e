from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import stripe

from connectors.billing import BillingConnector, connect
from connectors.billing.errors import translate
from connectors.commands import CreateCreditNote, CreateCustomer, CreateInvoice, CreditNoteReason
from connectors.errors import (
    UpstreamAuthError,
    UpstreamBusy,
    UpstreamConflict,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from connectors.models import (
    ChangeBatch,
    CustomerRecord,
    Invoice,
    ObjectKind,
    SystemName,
)
from connectors.money import Money
from connectors.sandbox.billing import create_app
from tests.connectors import billing_helpers
from tests.connectors.billing_helpers import (
    NEW_CUSTOMER,
    SECRET,
    SEEDED,
    _connector,
    _get,
)
from tests.connectors.conftest import running_sandbox
from tests.connectors.contract import (
    ConnectorCase,
    ConnectorContract,
    ContractSpec,
    case_fixture,
)

K = ObjectKind
SPEC = ContractSpec(
    connect=connect,
    seeded=SEEDED,
    batched_reads=frozenset(),  # Stripe has no batch retrieve
    related=dict.fromkeys((K.SUBSCRIPTION, K.INVOICE, K.PAYMENT), lambda r: r.customer_id),
    write=lambda: NEW_CUSTOMER,
)
case = case_fixture(SPEC)


def seeded(kind: type[Any]) -> list[Any]:
    return [r for r in SEEDED if isinstance(r, kind)]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[str, httpx.Client]]:
    with running_sandbox(create_app, SEEDED) as running:
        yield running


receiver, fresh, billing = billing_helpers.receiver, billing_helpers.fresh, billing_helpers.billing


class TestBillingContract(ConnectorContract):
    pass


async def test_the_connector_clamps_a_large_page_to_stripes_maximum(
    case: ConnectorCase,
) -> None:
    page = await case.connector.list_page(K.INVOICE, limit=500)
    assert (len(page.items), page.cursor) == (24, None)


async def test_a_page_of_invoices_is_one_request_answered_as_the_sdk_answers_it(
    case: ConnectorCase,
) -> None:
    """Invoices are read past the SDK's decoding (``BillingConnector._get``): the same one
    GET, the same records as reading each through the SDK's retrieve."""
    page = await case.connector.list_page(K.INVOICE, limit=5, filters={"status": "paid"})
    assert case.connector.calls == 1
    assert len(page.items) == 5 and page.cursor == page.items[-1].id
    assert all(isinstance(i, Invoice) and i.status.value == "paid" for i in page.items)
    retrieved = await case.connector.fetch_many(K.INVOICE, [i.id for i in page.items])
    assert retrieved == page.items


async def test_a_refused_key_reading_invoices_is_an_auth_error(
    sandbox: tuple[str, httpx.Client],
) -> None:
    """An answer that is not a 200 is the SDK's error for that answer, translated: one
    request (it is never asked again), then the error a retrieve through the SDK raises."""
    connector = _connector(sandbox[0], secret="sk_test_not_ours")
    try:
        with pytest.raises(UpstreamAuthError) as listed:
            await connector.list_page(K.INVOICE)
        assert connector.calls == 1
        with pytest.raises(UpstreamAuthError) as retrieved:
            await connector.fetch_many(K.INVOICE, ["in_0001"])
        assert listed.value.message == retrieved.value.message
    finally:
        await connector.aclose()


async def test_an_invoice_list_stripe_refuses_is_the_error_the_sdk_would_raise(
    case: ConnectorCase,
) -> None:
    """Stripe's 400 for a bad parameter, read past the SDK, is the error (type, code,
    parameter) the SDK's own request gets for it."""
    connector = case.connector
    assert isinstance(connector, BillingConnector)
    with pytest.raises(UpstreamRejected) as listed:
        await connector.list_page(K.INVOICE, filters={"status": "lost"})
    with pytest.raises(stripe.InvalidRequestError) as sdk:
        await connector._stripe.raw_request_async("get", "/v1/invoices", status="lost", limit=100)
    assert listed.value.message == translate(sdk.value).message
    assert listed.value.message.startswith("billing rejected the request (")
    assert "param status" in listed.value.message


async def test_a_hung_request_is_an_upstream_timeout(sandbox: tuple[str, httpx.Client]) -> None:
    connector = _connector(sandbox[0], timeout=0.2)
    sandbox[1].put("/_sandbox/faults", json={"hang_next": 1, "hang_s": 0.5})
    try:
        with pytest.raises(UpstreamTimeout):
            await connector.list_page(K.CUSTOMER)
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
    before = case.connector.calls
    got = await case.connector.fetch_many(K.CUSTOMER, [*ids, ids[0], "cus_missing"])
    assert [r.id if r else None for r in got] == [*ids, ids[0], None]
    assert case.connector.calls - before == 4


async def test_a_filter_stripe_cannot_apply_is_refused_without_a_call(
    case: ConnectorCase,
) -> None:
    with pytest.raises(UpstreamRejected):
        await case.connector.list_page(K.PLAN, filters={"customer": "cus_x"})
    assert case.connector.calls == 0


def _ids(records: list[Any]) -> list[str]:
    return sorted(r.id for r in records)


async def test_invoices_list_by_issue_window(case: ConnectorCase) -> None:
    """``issued_from`` (inclusive) and ``issued_before`` (exclusive) are Stripe's
    ``created[gte]`` / ``created[lt]``: a date is midnight UTC, a time without a zone UTC."""
    invoices = seeded(Invoice)  # each issued on the 1st of a month at 09:00 UTC
    october = _ids([i for i in invoices if i.issued_at.month == 10])
    november = _ids([i for i in invoices if i.issued_at.month == 11])

    async def issued(**window: str) -> list[str]:
        return _ids(await case.connector.list_all(K.INVOICE, filters=window))

    assert len(october) == len(november) == 8
    assert await issued(issued_from="2026-10-01", issued_before="2026-11-01") == october
    assert await issued(issued_from="2026-10-01T10:00:00+01:00",
                        issued_before="2026-11-01T09:00:00Z") == october  # fmt: skip
    assert await issued(issued_from="2026-11-01T09:00:00") == november
    assert await issued(issued_from="2026-11-01T09:00:00.5") == []  # after they were issued


async def test_a_bad_issue_window_is_refused_without_a_call(case: ConnectorCase) -> None:
    with pytest.raises(UpstreamRejected) as refused:
        await case.connector.list_page(K.INVOICE, filters={"issued_before": "last week"})
    assert refused.value.message == (
        "billing cannot filter invoice: issued_before must be an ISO date or date and time, "
        "not 'last week'"
    )
    with pytest.raises(UpstreamRejected):
        await case.connector.list_page(K.CUSTOMER, filters={"issued_from": "2026-10-01"})
    assert case.connector.calls == 0


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
    other = CreateCustomer(name="Someone Else")
    with pytest.raises(UpstreamConflict):
        await billing.write(other, "conflict-1")


async def test_an_invoice_write_bills_one_item_on_a_draft_invoice(
    billing: BillingConnector,
) -> None:
    customer = seeded(CustomerRecord)[1]
    command = CreateInvoice(
        customer=customer.id, amount=Money(12000, "JPY"), description="Onboarding"
    )
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
    command = CreateCreditNote(
        invoice=invoice.id,
        amount=Money(1000, invoice.total.currency),
        reason=CreditNoteReason.ORDER_CHANGE,
        memo="SLA credit",
    )
    note = await billing.write(command, "credit-1")
    got = _get(fresh[1], f"/v1/credit_notes/{note.id}").json()
    assert (got["invoice"], got["amount"], got["type"], got["memo"]) == (
        invoice.id, 1000, "pre_payment", "SLA credit")  # fmt: skip
    after = _get(fresh[1], f"/v1/invoices/{invoice.id}").json()
    assert after["amount_due"] == invoice.total.amount_minor - 1000
    too_much = replace(command, amount=invoice.total)
    with pytest.raises(UpstreamRejected):
        await billing.write(too_much, "credit-2")


async def test_the_feed_is_oldest_first_and_its_cursor_moves_forward() -> None:
    with running_sandbox(create_app, SEEDED) as (url, _):
        connector = _connector(url)
        connector.feed_limit = 2
        try:
            assert await connector.changes(None) == ChangeBatch(
                events=[], cursor="", has_more=False)  # fmt: skip
            written = [
                (await connector.write(CreateCustomer(name=f"N{n}"), f"feed-{n}")).id
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


def test_stripes_idempotency_errors_say_whether_trying_again_can_help() -> None:
    """409: a request under the same key is still running there (a retry after a crash can
    meet it): retryable. 400: the key was used with other parameters: never."""
    busy = translate(stripe.IdempotencyError("in progress", http_status=409))
    reused = translate(stripe.IdempotencyError("other parameters", http_status=400))
    assert (type(busy), busy.retryable, busy.code) == (UpstreamBusy, True, "UPSTREAM_BUSY")
    assert (type(reused), reused.retryable) == (UpstreamConflict, False)
