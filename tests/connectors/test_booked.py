"""Ledgers read without models (``Booked``): what ``wire.booked_invoice`` and
``wire.booked_posting`` read straight from the wire is what ``Booked.of_invoice`` and
``Booked.of_posting`` make of the records the models read, for any object, and an object
the model refuses is refused as the system's error. (Through HTTP, page for page, in the
connector contract: ``test_a_ledger_reads_as_its_records_book``.)"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.billing import wire as billing_wire
from connectors.erp import wire as erp_wire
from connectors.errors import UpstreamError
from connectors.models import Booked, InvoiceStatus, PostingState, SystemName
from connectors.money import CURRENCY_EXPONENTS, Money, MoneyError, minor_units

CURRENCIES = sorted(CURRENCY_EXPONENTS)
# Unix times from 1901 to 2100, and the edges of a UTC day.
TIMES = st.one_of(
    st.integers(min_value=-(2**31), max_value=4_102_444_800),
    st.sampled_from([0, -1, 86_399, 86_400, 1_790_000_000, 1_790_035_199]),
)


def _outcome(read: Any) -> Any:
    """What a reader made, or which error it refused with."""
    try:
        return read()
    except MoneyError as exc:
        return ("MoneyError", str(exc))
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        return type(exc).__name__


invoices = st.fixed_dictionaries(
    {
        "id": st.text(min_size=1, max_size=8),
        "customer": st.one_of(st.text(max_size=6), st.builds(lambda i: {"id": i}, st.text())),
        "status": st.one_of(st.sampled_from([s.value for s in InvoiceStatus]), st.just("lost")),
        "currency": st.sampled_from([*CURRENCIES, *(c.lower() for c in CURRENCIES), "xyz"]),
        "created": TIMES,
        "subtotal": st.one_of(st.none(), st.integers(-(10**12), 10**12)),
        "total": st.integers(0, 10**12),
    },
    optional={
        "tax": st.one_of(st.none(), st.integers(0, 10**9)),
        "total_taxes": st.lists(
            st.fixed_dictionaries({"amount": st.one_of(st.none(), st.integers(0, 10**6))}),
            max_size=3,
        ),
        "status_transitions": st.fixed_dictionaries({"finalized_at": st.one_of(st.none(), TIMES)}),
    },
)


@settings(max_examples=400)
@given(obj=invoices)
def test_an_invoice_books_as_its_record(obj: dict[str, Any]) -> None:
    lean = _outcome(lambda: billing_wire.booked_invoice(obj))
    full = _outcome(lambda: Booked.of_invoice(billing_wire.invoice(obj)))
    assert lean == full


def test_an_invoice_books_on_the_day_it_was_finalised_or_else_made() -> None:
    obj = {"id": "in_1", "customer": "cus_1", "status": "open", "currency": "eur",
           "created": 1_790_035_199, "subtotal": 1000, "total": 1210,
           "total_taxes": [{"amount": 200}, {"amount": 10}],
           "status_transitions": {"finalized_at": 1_790_035_200}}  # fmt: skip
    assert billing_wire.booked_invoice(obj) == Booked(
        "in_1", "cus_1", None, 1000, 210, "EUR", date(2026, 9, 22), None, True
    )
    draft = {**obj, "status": "draft", "status_transitions": {"finalized_at": None}}
    assert billing_wire.booked_invoice(draft)[-3:] == (date(2026, 9, 21), None, False)


def test_an_invoice_the_model_cannot_read_is_the_billing_systems_error() -> None:
    good = {"id": "in_1", "customer": "cus_1", "status": "paid", "currency": "usd",
            "created": 1_790_000_000, "subtotal": 5, "total": 5}  # fmt: skip
    for bad in ({**good, "currency": "xyz"}, {**good, "status": "lost"}, {"id": "in_2"}):
        with pytest.raises(UpstreamError) as refused:
            billing_wire.booked_invoices([good, bad])
        assert refused.value.system == SystemName.BILLING.value
        assert refused.value.message == "billing returned an invoice opsgraph cannot read"


AMOUNTS = st.one_of(
    st.none(),
    st.from_regex(r"\A-?[0-9]{1,14}(\.[0-9]{0,5})?\Z"),
    st.sampled_from(["1e3", "-0", "+1.50", " 2.5", "1_000", "NaN", "Infinity", "", ".5"]),
    st.text(max_size=6),
    st.integers(-(10**9), 10**9),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
)

rows = st.fixed_dictionaries(
    {
        "id": st.text(min_size=1, max_size=7),
        "recordtype": st.sampled_from(["invoice", "creditmemo", "journalentry", "cashsale"]),
        "entity": st.text(max_size=6),
        "trandate": st.one_of(
            st.dates().map(date.isoformat), st.sampled_from(["2026-13-01", "yesterday"])
        ),
        "subsidiaryname": st.text(max_size=12),
        "currencyname": st.sampled_from([*CURRENCIES, "XYZ"]),
        "status": st.one_of(st.sampled_from([s.value for s in PostingState]), st.just("void")),
    },
    optional={
        "externalid": st.one_of(st.none(), st.text(max_size=8)),
        "subtotal": AMOUNTS,
        "taxtotal": AMOUNTS,
        "memo": st.text(max_size=4),
    },
)


@settings(max_examples=400)
@given(row=rows)
def test_a_posting_books_as_its_record(row: dict[str, Any]) -> None:
    def lean() -> Any:
        try:
            return erp_wire.booked_posting(row)
        except UpstreamError as exc:
            return ("UpstreamError", exc.message)

    def full() -> Any:
        try:
            return Booked.of_posting(erp_wire.to_posting(row))
        except UpstreamError as exc:
            return ("UpstreamError", exc.message)

    assert lean() == full()


def test_a_posting_books_in_minor_units_of_its_currency() -> None:
    row = {"id": "5001", "recordtype": "invoice", "entity": "1001", "externalid": "in_1",
           "trandate": "2026-09-30", "subsidiaryname": "Opsgraph K.K.", "currencyname": "KWD",
           "subtotal": "12.340", "taxtotal": None, "status": "voided"}  # fmt: skip
    assert erp_wire.booked_posting(row) == Booked(
        "5001", "1001", "in_1", 12340, 0, "KWD", date(2026, 9, 30), "Opsgraph K.K.", False
    )
    with pytest.raises(UpstreamError, match="erp returned a posting opsgraph cannot read"):
        erp_wire.booked_posting({**row, "subtotal": "12.3405"})


@settings(max_examples=600)
@given(
    amount=st.one_of(st.from_regex(r"\A-?[0-9]{1,20}(\.[0-9]{0,6})?\Z"), st.text(max_size=8)),
    currency=st.sampled_from(["USD", "JPY", "KWD", "XYZ"]),
)
def test_minor_units_is_money_of_for_any_text(amount: str, currency: str) -> None:
    lean = _outcome(lambda: minor_units(amount, currency))
    full = _outcome(lambda: Money.of(amount, currency).amount_minor)
    assert lean == full


def test_minor_units_is_exact_or_refused() -> None:
    assert minor_units("-12.340", "KWD") == -12340
    assert minor_units("7.00", "JPY") == 7
    assert minor_units("99999999999999999999.99", "USD") == 9_999_999_999_999_999_999_999
    with pytest.raises(MoneyError, match=r"more decimal places than JPY allows \(0\)"):
        minor_units("7.5", "JPY")
    assert minor_units("1e3", "USD") == Money.of(Decimal("1e3"), "USD").amount_minor == 100000
