"""Money as integer minor units plus an ISO 4217 currency. Never a float.

``Decimal`` appears only at the edges (parsing a wire amount, printing one); arithmetic stays
in integers so that sums and comparisons are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# ISO 4217 minor-unit exponents for the currencies the gateway accepts. A currency that is
# not listed is refused rather than guessed: guessing an exponent mis-states amounts 100x.
CURRENCY_EXPONENTS: dict[str, int] = {
    "AUD": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0, "CNY": 2, "CZK": 2,
    "DKK": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2,
    "ISK": 0, "JOD": 3, "JPY": 0, "KRW": 0, "KWD": 3, "MXN": 2, "NOK": 2, "NZD": 2,
    "OMR": 3, "PLN": 2, "SEK": 2, "SGD": 2, "TND": 3, "TRY": 2, "USD": 2, "VND": 0,
    "ZAR": 2,
}  # fmt: skip


class MoneyError(ValueError):
    """An amount or currency that cannot be represented exactly."""


def exponent(currency: str) -> int:
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise MoneyError(f"unsupported currency {currency!r}") from None


def minor_units(amount: str, currency: str) -> int:
    """``Money.of(amount, currency).amount_minor``, exact or refused alike, for a plain
    decimal string (``-12.340``) without ``Decimal``: a ledger read by the million spent
    half of its conversion there. Any other form goes through ``Money.of``."""
    whole, point, fraction = amount.partition(".")
    digits = whole[1:] if whole.startswith("-") else whole
    if not (_digits(digits) and (not point or _digits(fraction))):
        return Money.of(amount, currency).amount_minor
    places = exponent(currency)
    fraction = fraction.rstrip("0")
    if len(fraction) > places:
        raise MoneyError(f"{amount} has more decimal places than {currency} allows ({places})")
    minor = int(digits + fraction.ljust(places, "0"))
    return -minor if digits is not whole else minor


def _digits(text: str) -> bool:
    return text.isdigit() and text.isascii()


@dataclass(frozen=True, slots=True, order=False)
class Money:
    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if type(self.amount_minor) is not int:
            raise MoneyError(f"amount must be integer minor units, got {self.amount_minor!r}")
        exponent(self.currency)

    @classmethod
    def of(cls, amount: Decimal | str | int, currency: str) -> Money:
        """Money from a major-unit amount ("12.34", Decimal("12.34")); exact or refused."""
        if isinstance(amount, float):
            raise MoneyError("floats are not accepted for money")
        try:
            value = Decimal(amount)
        except InvalidOperation:
            raise MoneyError(f"not a decimal amount: {amount!r}") from None
        if not value.is_finite():
            raise MoneyError(f"not a finite amount: {amount!r}")
        scaled = value.scaleb(exponent(currency))
        if scaled != scaled.to_integral_value():
            raise MoneyError(
                f"{amount} has more decimal places than {currency} allows ({exponent(currency)})"
            )
        return cls(int(scaled), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def to_decimal(self) -> Decimal:
        return Decimal(self.amount_minor).scaleb(-exponent(self.currency))

    def amount_str(self) -> str:
        """The major-unit amount with exactly the currency's number of decimals."""
        places = exponent(self.currency)
        return f"{self.to_decimal():.{places}f}"

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def __str__(self) -> str:
        return f"{self.amount_str()} {self.currency}"
