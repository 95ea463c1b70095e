from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.money import Money, MoneyError

minor_units = st.integers(min_value=-(10**15), max_value=10**15)


@pytest.mark.parametrize(("currency", "places"), [("JPY", 0), ("USD", 2), ("KWD", 3)])
@given(amount=minor_units)
def test_amounts_round_trip_exactly(currency: str, places: int, amount: int) -> None:
    money = Money(amount, currency)
    text = money.amount_str()
    assert ("." in text) is (places > 0)
    if places:
        assert len(text.split(".")[1]) == places
    assert Money.of(text, currency) == money
    assert Money.of(money.to_decimal(), currency) == money


@given(a=minor_units, b=minor_units)
def test_arithmetic_stays_in_integers(a: int, b: int) -> None:
    total = Money(a, "KWD") + Money(b, "KWD")
    assert total == Money(a + b, "KWD")
    assert (total - Money(b, "KWD")) == Money(a, "KWD")


def test_exponents_follow_iso_4217() -> None:
    assert Money.of("1234", "JPY").amount_minor == 1234
    assert Money.of("12.34", "USD").amount_minor == 1234
    assert Money.of("1.234", "KWD").amount_minor == 1234
    assert str(Money(1234, "KWD")) == "1.234 KWD"
    assert str(Money(-5, "USD")) == "-0.05 USD"


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        ("12.5", "JPY", "more decimal places than JPY allows (0)"),
        ("0.001", "USD", "more decimal places than USD allows (2)"),
        ("1.2345", "KWD", "more decimal places than KWD allows (3)"),
        ("ten", "USD", "not a decimal amount"),
        ("NaN", "USD", "not a finite amount"),
        ("1.00", "XYZ", "unsupported currency 'XYZ'"),
    ],
)
def test_inexact_or_unknown_amounts_are_refused(amount: str, currency: str, message: str) -> None:
    with pytest.raises(MoneyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Money.of(amount, currency)


def test_floats_and_mixed_currencies_are_refused() -> None:
    with pytest.raises(MoneyError, match="floats are not accepted"):
        Money.of(0.1, "USD")  # type: ignore[arg-type]
    with pytest.raises(MoneyError, match="integer minor units"):
        Money(1.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(MoneyError, match="cannot combine USD with EUR"):
        _ = Money(1, "USD") + Money(1, "EUR")
    assert Money.of(Decimal("0.10"), "USD") == Money(10, "USD")
