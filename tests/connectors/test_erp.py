from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from connectors import erp
from connectors.commands import CreateCase, CreateCreditMemo
from connectors.erp import wire
from connectors.errors import UpstreamAuthError, UpstreamError, UpstreamRejected
from connectors.models import (
    Balance,
    ChangeEvent,
    ObjectKind,
    Posting,
    PostingType,
    SystemName,
)
from connectors.money import Money
from connectors.sandbox import erp as sandbox_app
from connectors.sandbox.erp.api import LOGIN_FAILED
from tests.connectors.conftest import running_sandbox
from tests.connectors.contract import (
    ConnectorCase,
    ConnectorContract,
    ContractSpec,
    case_fixture,
    counted,
)
from tests.connectors.erp_helpers import AUTH, RECORDS, _connect

ERP = SystemName.ERP


def credit_memo(**changes: Any) -> CreateCreditMemo:
    fields: dict[str, Any] = {
        "customer_id": "1001",
        "external_id": "cr_0001",
        "amount": Money(2500, "USD"),
        "tax": Money(0, "USD"),
        "subsidiary": "Opsgraph Inc.",
        "tran_date": date(2026, 11, 2),
        "memo": "SLA credit for case 9023",
    }
    return CreateCreditMemo(**{**fields, **changes})


SPEC = ContractSpec(
    connect=erp.connect,
    seeded=RECORDS,
    batched_reads=frozenset({ObjectKind.CUSTOMER, ObjectKind.POSTING, ObjectKind.BALANCE}),
    related={ObjectKind.POSTING: lambda posting: posting.customer_id},
    write=credit_memo,
)
case = case_fixture(SPEC)


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[tuple[str, httpx.Client]]:
    with running_sandbox(sandbox_app.create_app, RECORDS) as running:
        yield running


@pytest.fixture(scope="module")
def sandbox(sandbox_url: tuple[str, httpx.Client]) -> tuple[str, httpx.Client]:
    """The contract's name for the seeded sandbox."""
    return sandbox_url


@pytest.fixture
def fresh() -> Iterator[tuple[str, httpx.Client]]:
    """A sandbox of its own, for tests that write."""
    with running_sandbox(sandbox_app.create_app, RECORDS) as running:
        yield running


class TestErpContract(ConnectorContract):
    pass


def _decimal_json(response: httpx.Response) -> Any:
    return json.loads(response.content, parse_float=Decimal)


def _balance(customer: str, minor: int, currency: str) -> Balance:
    return Balance(system=ERP, id=customer, customer_id=customer, receivable=Money(minor, currency))


# -- errors ---------------------------------------------------------------------------------


async def test_bad_credentials_say_what_netsuite_said(sandbox_url: Any) -> None:
    bad = _connect(sandbox_url[0], "wrong-secret")
    try:
        with pytest.raises(UpstreamAuthError) as err:
            await bad.list_page(ObjectKind.CUSTOMER)
    finally:
        await bad.aclose()
    assert (
        err.value.message
        == f"erp refused our credentials: Unauthorized: {LOGIN_FAILED} (INVALID_LOGIN)"
    )


# -- reads ----------------------------------------------------------------------------------


async def test_list_pages_by_offset_and_filters_by_customer(case: ConnectorCase) -> None:
    first = await case.connector.list_page(
        ObjectKind.POSTING, limit=2, filters={"customer": "1003"}
    )
    second = await case.connector.list_page(
        ObjectKind.POSTING, limit=2, cursor=first.cursor, filters={"customer": "1003"}
    )
    assert first.cursor == "2"
    assert [p.id for p in first.items + second.items] == ["5009", "5010", "5011", "5131"]
    assert second.cursor is None


async def test_the_external_id_filter_finds_the_planted_duplicate(case: ConnectorCase) -> None:
    page = await case.connector.list_page(
        ObjectKind.POSTING, filters={"external_id": "in_YhcH9muZ11Kl3r"}
    )
    assert [p.id for p in page.items] == ["5009", "5131"]


async def test_fetch_related_is_one_request_for_many_customers(case: ConnectorCase) -> None:
    groups, calls = await counted(
        case, case.connector.fetch_related(ObjectKind.POSTING, ["1002", "1004"])
    )
    assert calls == 1
    assert [[p.id for p in group] for group in groups] == [
        ["5005", "5006", "5007"],
        ["5013", "5014", "5015"],
    ]


async def test_balances_are_open_invoices_in_the_customers_currency(case: ConnectorCase) -> None:
    got = await case.connector.fetch_many(ObjectKind.BALANCE, ["1003", "1004", "1007"])
    assert got == [
        _balance("1003", 61600, "JPY"),  # 56,000 + 5,600 tax, open
        _balance("1004", 60000, "KWD"),  # 60.000, open
        _balance("1007", 1475100, "JPY"),
    ]


async def test_an_unsupported_filter_is_refused_without_a_call(case: ConnectorCase) -> None:
    with pytest.raises(UpstreamRejected):
        await case.connector.list_page(ObjectKind.POSTING, filters={"status": "open"})
    assert case.connector.calls == 0


# -- writes ---------------------------------------------------------------------------------


def test_location_ids_are_parsed_from_the_create_response() -> None:
    absolute = "https://123.suitetalk.api.netsuite.com/services/rest/record/v1/creditMemo/9001"
    assert wire.location_id(absolute, "creditMemo") == "9001"
    assert wire.location_id("/services/rest/record/v1/invoice/77/", "invoice") == "77"
    for wrong in (None, "", "/services/rest/record/v1/invoice/77", "/services/rest/async/v1/job/5"):
        with pytest.raises(UpstreamError):
            wire.location_id(wrong, "creditMemo")


async def test_jpy_and_kwd_amounts_survive_exactly(fresh: Any) -> None:
    url, admin = fresh
    connector = _connect(url)
    try:
        yen = await connector.write(
            credit_memo(customer_id="1003", subsidiary="Opsgraph K.K.", amount=Money(1, "JPY"),
                        tax=Money(0, "JPY"), external_id=None, memo=None),
            "yen",
        )  # fmt: skip
        dinar = await connector.write(
            credit_memo(customer_id="1004", subsidiary="Opsgraph Gulf W.L.L.",
                        amount=Money(1234, "KWD"), tax=Money(5, "KWD"), external_id="cr_kwd"),
            "dinar",
        )  # fmt: skip
        got = await connector.fetch_many(ObjectKind.POSTING, [yen.id, dinar.id])
    finally:
        await connector.aclose()
    memo = PostingType.CREDIT_MEMO
    assert got == [
        Posting(system=ERP, id=yen.id, type=memo, customer_id="1003", external_id=None,
                subsidiary="Opsgraph K.K.", amount=Money(1, "JPY"), tax=Money(0, "JPY"),
                tran_date=date(2026, 11, 2), status="open"),
        Posting(system=ERP, id=dinar.id, type=memo, customer_id="1004", external_id="cr_kwd",
                subsidiary="Opsgraph Gulf W.L.L.", amount=Money(1234, "KWD"),
                tax=Money(5, "KWD"), tran_date=date(2026, 11, 2), status="open",
                memo="SLA credit for case 9023"),
    ]  # fmt: skip
    served = _decimal_json(
        admin.get(f"/services/rest/record/v1/creditMemo/{dinar.id}", headers=AUTH)
    )
    amounts = (served["subtotal"], served["taxTotal"], served["total"])
    assert amounts == (Decimal("1.234"), Decimal("0.005"), Decimal("1.239"))


async def test_a_credit_memo_shows_in_the_change_feed_and_lowers_the_balance(fresh: Any) -> None:
    connector = _connect(fresh[0])
    try:
        batch = await connector.changes(None)
        while batch.has_more:
            batch = await connector.changes(batch.cursor)
        written = await connector.write(credit_memo(customer_id="1003", subsidiary="Opsgraph K.K.",
                                                    amount=Money(1600, "JPY"),
                                                    tax=Money(160, "JPY")), "memo-1")  # fmt: skip
        after = await connector.changes(batch.cursor)
        balance = await connector.fetch_many(ObjectKind.BALANCE, ["1003"])
    finally:
        await connector.aclose()
    at = after.events[0].occurred_at
    assert after.events == [
        ChangeEvent(system=ERP, kind=ObjectKind.POSTING, id=written.id, occurred_at=at,
                    type="created", parent="1003"),  # on customer 1003's postings
        ChangeEvent(system=ERP, kind=ObjectKind.BALANCE, id="1003", occurred_at=at,
                    type="updated"),
    ]  # fmt: skip
    assert (after.cursor, after.has_more) == (str(int(batch.cursor) + 1), False)
    assert balance == [_balance("1003", 61600 - 1760, "JPY")]


async def test_a_float_amount_is_refused_before_sending(case: ConnectorCase) -> None:
    with pytest.raises(UpstreamRejected):
        await case.connector.write(credit_memo(amount=25.0), "float")
    case_command = CreateCase(organization_id="360000017", subject="s", body="b")
    with pytest.raises(UpstreamRejected) as refused:
        await case.connector.write(case_command, "k")
    assert refused.value.message == "erp does not write case (CreateCase)"
    assert case.connector.calls == 0
