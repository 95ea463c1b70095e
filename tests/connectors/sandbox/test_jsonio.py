from __future__ import annotations

from decimal import Decimal

from connectors.sandbox import jsonio


def test_decimals_are_written_as_numbers_digit_for_digit() -> None:
    value = {"total": Decimal("1234.50"), "lines": [Decimal("0.001"), 2, None], "memo": "é"}
    assert jsonio.dumps(value) == '{"total": 1234.50, "lines": [0.001, 2, null], "memo": "\\u00e9"}'


def test_numbers_with_a_fraction_are_read_as_decimals() -> None:
    assert jsonio.loads(b'{"amount": 10.10, "count": 3}') == {
        "amount": Decimal("10.10"),
        "count": 3,
    }
