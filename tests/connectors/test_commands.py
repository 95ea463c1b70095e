"""Write commands are checked when they are built, before anything is routed or sent:
money is ``Money`` (never a float), required text is present, dates are dates."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from connectors.commands import (
    UNSET,
    CommentOnCase,
    CreateCase,
    CreateCreditMemo,
    CreateCustomer,
    CreateInvoice,
    InvalidCommand,
    UpdateAccountHealth,
    UpsertAccount,
    VoidPosting,
)
from connectors.errors import UpstreamRejected
from connectors.models import CasePriority, ObjectKind
from connectors.money import Money

MEMO: dict[str, Any] = {
    "customer_id": "1001",
    "amount": Money(2500, "USD"),
    "tax": Money(0, "USD"),
    "subsidiary": "Opsgraph Inc.",
    "tran_date": date(2026, 11, 2),
}


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"amount": 25.0}, "amount must be Money, not float"),
        ({"amount": 2500}, "amount must be Money, not int"),
        ({"amount": Money(0, "USD")}, "amount must be positive"),
        ({"tax": Money(-1, "USD")}, "tax must be zero or more"),
        ({"tax": Money(1, "EUR")}, "tax is in EUR, the amount in USD"),
        ({"tran_date": "2026-11-02"}, "tran_date must be a date"),
        ({"tran_date": datetime(2026, 11, 2)}, "tran_date must be a date"),
        ({"tran_date": None}, "tran_date must be a date"),
        ({"subsidiary": ""}, "subsidiary must be a non-empty string"),
    ],
)
def test_a_malformed_posting_is_refused(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidCommand) as refused:
        CreateCreditMemo(**{**MEMO, **changes})
    assert refused.value.message == f"CreateCreditMemo: {problem}"
    assert isinstance(refused.value, UpstreamRejected)
    assert refused.value.code == "INVALID_COMMAND"


@pytest.mark.parametrize(
    "build",
    [
        lambda: CreateCustomer(name=""),
        lambda: CreateCustomer(name="N", currency="XXX"),
        lambda: CreateInvoice(customer="cus_1", amount=Money(-5, "EUR")),
        lambda: UpsertAccount(ref="c1", strategic="yes"),
        lambda: UpsertAccount(ref="c1", health_score=True),
        lambda: UpdateAccountHealth(id="001", health_score=7.5),
        lambda: CreateCase(organization_id="1", subject="s", body="b", priority="high"),
        lambda: CommentOnCase(case_id="9001", body=""),
        lambda: CommentOnCase(case_id="9001", body="b", public=None),
    ],
    ids=[
        "name",
        "currency",
        "negative",
        "strategic",
        "bool-score",
        "float-score",
        "priority-string",
        "empty-comment",
        "public-none",
    ],  # fmt: skip
)
def test_malformed_commands_of_every_system_are_refused(build: Any) -> None:
    with pytest.raises(InvalidCommand):
        build()


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"posting_id": "", "reason": "Duplicate"}, "posting_id must be a non-empty string"),
        ({"posting_id": 5131, "reason": "Duplicate"}, "posting_id must be a non-empty string"),
        ({"posting_id": "5131", "reason": None}, "reason must be a non-empty string"),
    ],
)
def test_a_void_names_the_posting_and_why(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidCommand) as refused:
        VoidPosting(**fields)
    assert refused.value.message == f"VoidPosting: {problem}"
    assert VoidPosting(posting_id="5131", reason="Duplicate").kind is ObjectKind.POSTING


def test_each_command_names_the_kind_it_writes() -> None:
    assert CreateCreditMemo(**MEMO).kind is ObjectKind.POSTING
    assert CreateCase(organization_id="1", subject="s", body="b").priority is CasePriority.NORMAL
    assert UpdateAccountHealth(id="001", health_score=None).kind is ObjectKind.ACCOUNT


def test_a_partial_update_gives_only_what_it_sets() -> None:
    command = UpsertAccount(ref="cust_1", name="Acme", segment=None)
    assert command.given() == {"ref": "cust_1", "name": "Acme", "segment": None, "owner": None}
    assert command.strategic is UNSET
