"""The pure rules of reconciliation: how a record and its postings differ, and how much
that matters."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from connectors.billing import wire
from connectors.models import ExceptionKind, Posting, PostingState, PostingType, SystemName
from connectors.money import Money
from connectors.sandbox.billing import documents
from gateway.errors import ConfigurationError
from gateway.reconcile.records import invoice_entry
from gateway.rules.matching import Entry, Finding, PostingMatch, discrepancies, match
from gateway.rules.severity import AccountStanding, Severity, SeverityPolicy
from gateway.settings import DEFAULT_RECONCILIATION_POLICY

K = ExceptionKind
NOV = date(2026, 11, 1)


def usd(minor: int) -> Money:
    return Money(minor, "USD")


def invoice(amount: int = 10000, tax: int = 800, day: date = NOV) -> Entry:
    return Entry("in_1", usd(amount), usd(tax), day)


def posting(
    id_: str, amount: int = 10000, tax: int = 800, day: date = NOV, currency: str = "USD"
) -> Entry:
    return Entry(id_, Money(amount, currency), Money(tax, currency), day)


def test_a_posting_that_agrees_is_no_finding() -> None:
    assert discrepancies(invoice(), [posting("5001")]) == []


def test_missing_and_orphan_are_worth_the_whole_total() -> None:
    assert discrepancies(invoice(), []) == [
        Finding(K.MISSING_IN_TARGET, usd(10800), "in_1 (108.00 USD, 2026-11) has no posting", ())
    ]
    (orphan,) = discrepancies(None, [posting("5002"), posting("5001", amount=500, tax=0)])
    assert (orphan.kind, orphan.impact, orphan.postings) == (
        K.ORPHAN_IN_TARGET, usd(10800 + 500), ("5001", "5002"),
    )  # fmt: skip
    assert discrepancies(None, []) == []


def test_a_duplicate_is_worth_the_extra_posting_and_the_first_is_still_compared() -> None:
    found = discrepancies(invoice(), [posting("5010", tax=700), posting("5009", tax=700)])
    assert [(f.kind, f.impact, f.postings) for f in found] == [
        (K.DUPLICATE_IN_TARGET, usd(10700), ("5009", "5010")),
        (K.TAX_MISMATCH, usd(100), ("5009",)),
    ]
    # Ids order as numbers: 999 is the first posting, 1000 its duplicate.
    assert discrepancies(invoice(), [posting("1000"), posting("999")])[0].postings == (
        "999", "1000",
    )  # fmt: skip


def test_amount_tax_and_period_each_say_what_differs() -> None:
    found = discrepancies(
        invoice(), [posting("5001", amount=10100, tax=790, day=date(2026, 12, 1))]
    )
    assert [(f.kind, f.impact, f.detail) for f in found] == [
        (K.AMOUNT_MISMATCH, usd(100), "posted 101.00 USD, billed 100.00 USD"),
        (K.TAX_MISMATCH, usd(10), "tax posted 7.90 USD, billed 8.00 USD"),
        (K.PERIOD_MISMATCH, usd(10800), "posted in 2026-12, issued in 2026-11"),
    ]


def test_an_invoice_drafted_in_one_month_counts_in_the_month_it_was_finalised() -> None:
    drafted = int(datetime(2026, 10, 30, 17, tzinfo=UTC).timestamp())
    finalised = int(datetime(2026, 11, 2, 9, tzinfo=UTC).timestamp())
    document = documents.invoice(
        "in_late", customer_id="cus_1", currency="usd", status="open", subtotal=10000,
        tax=800, total=10800, created=drafted, number="L-1", period=(None, None),
        subscription_id=None, lines=[], finalized=finalised,
    )  # fmt: skip
    read = wire.invoice(document)  # as the billing connector reads Stripe's JSON
    assert (read.issued_at.date(), read.finalized_at) == (
        date(2026, 10, 30), datetime(2026, 11, 2, 9, tzinfo=UTC),
    )  # fmt: skip
    assert invoice_entry(read) == Entry("in_late", usd(10000), usd(800), date(2026, 11, 2))

    def erp(day: date) -> Posting:
        return Posting(
            system=SystemName.ERP, id="5001", customer_id="1001", type=PostingType.INVOICE,
            amount=usd(10000), tax=usd(800), tran_date=day, external_id="in_late",
            status=PostingState.OPEN, subsidiary="Opsgraph Inc.",
        )  # fmt: skip

    assert match(read, [erp(date(2026, 11, 2))]) is PostingMatch.POSTED
    assert match(read, [erp(date(2026, 10, 30))]) is PostingMatch.MISDATED
    # A draft has no finalisation: it counts from the day it was made.
    draft = wire.invoice(document | {"status": "draft", "status_transitions": {}})
    assert (draft.finalized_at, draft.booked_on) == (None, date(2026, 10, 30))


def test_another_currency_is_a_currency_mismatch_not_an_amount_one() -> None:
    found = discrepancies(invoice(), [posting("5001", currency="EUR")])
    assert [(f.kind, f.impact) for f in found] == [(K.CURRENCY_MISMATCH, usd(10800))]


@pytest.fixture
def policy() -> SeverityPolicy:
    return SeverityPolicy.load(DEFAULT_RECONCILIATION_POLICY)


def test_severity_follows_impact_in_each_currency(policy: SeverityPolicy) -> None:
    def level(amount: str, currency: str, kind: ExceptionKind = K.AMOUNT_MISMATCH) -> Severity:
        return policy.assess(kind, Money.of(amount, currency), None, NOV).severity

    assert [level(a, "USD") for a in ("9.99", "10.00", "999.99", "1000.00", "10000.00")] == [
        Severity.LOW, Severity.MEDIUM, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL,
    ]  # fmt: skip
    assert level("150000", "JPY") is Severity.HIGH and level("149999", "JPY") is Severity.MEDIUM
    assert level("0.01", "USD", K.MISSING_IN_TARGET) is Severity.MEDIUM  # never low
    assert level("5.00", "CHF") is Severity.LOW  # no thresholds for CHF: kind and account


def test_a_strategic_account_renewing_soon_ranks_first(policy: SeverityPolicy) -> None:
    small = usd(5000)  # 50.00: medium on its own
    plain = policy.assess(K.AMOUNT_MISMATCH, small, AccountStanding(False, None), NOV)
    strategic = policy.assess(K.AMOUNT_MISMATCH, small, AccountStanding(True, None), NOV)
    renewing = policy.assess(
        K.AMOUNT_MISMATCH, small, AccountStanding(True, date(2026, 11, 22)), NOV
    )
    large = policy.assess(K.AMOUNT_MISMATCH, usd(500000), AccountStanding(False, None), NOV)
    assert (plain.severity, strategic.severity, renewing.severity, large.severity) == (
        Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL, Severity.HIGH,
    )  # fmt: skip
    assert renewing.reasons == ("worth 10.00 USD or more", "strategic account", "renews in 21 days")
    assert sorted([plain, large, renewing, strategic], key=lambda a: -a.rank) == [
        renewing, large, strategic, plain,
    ]  # fmt: skip
    past = policy.assess(K.AMOUNT_MISMATCH, small, AccountStanding(False, date(2026, 10, 1)), NOV)
    assert past.severity is Severity.MEDIUM  # a renewal date already past raises nothing


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "renewal_within_days = -1",
            "renewal_within_days: Input should be greater than or equal to 0",
        ),
        (
            "renewal_within_days = 30\n[materiality.XXX]\nmedium='1'\nhigh='2'\ncritical='3'",
            "unknown currency 'XXX'",
        ),
        (
            "renewal_within_days = 30\n[materiality.USD]\nmedium='1.001'\nhigh='2'\ncritical='3'",
            "materiality.USD: 1.001 has more decimal places than USD allows (2)",
        ),
        (
            "renewal_within_days = 30\n[materiality.USD]\nmedium='5'\nhigh='2'\ncritical='3'",
            "materiality.USD: need 0 < medium < high < critical",
        ),
        (
            "renewal_within_days = 30\nat_least_medium = ['lost']",
            "at_least_medium.0: Input should be",
        ),
        ("renewal_within_days = 30\nsurprise = 1", "surprise: Extra inputs are not permitted"),
    ],
)
def test_a_bad_policy_stops_the_gateway_with_one_line(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as bad:
        SeverityPolicy.parse(text, source="policy.toml")
    assert bad.value.message.startswith("policy.toml: ") and message in bad.value.message


def test_a_missing_policy_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as missing:
        SeverityPolicy.load(tmp_path / "nope.toml")
    assert missing.value.message == (
        f"reconciliation policy file {tmp_path / 'nope.toml'}: No such file or directory"
    )
