"""How much a reconciliation exception matters (``reconciliation_policy.toml``): a severity
from what it is worth in its currency, raised a level for a strategic account and again for
one renewing soon, and a rank that orders the book across currencies.

Pure: the reconciler passes the exception's kind and impact and what the CRM says of the
account (or None when the CRM could not say); nothing here reads anything but the policy.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from enum import IntEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connectors.models import ExceptionKind, ExceptionSeverity
from connectors.money import CURRENCY_EXPONENTS, Money, MoneyError
from gateway.errors import ConfigurationError

# The rank's unit per severity level: within a level, exceptions order by impact measured
# in thousandths of their currency's `high` threshold, capped below the next level.
_LEVEL = 10**8  # and so a rank fits in GraphQL's 32-bit Int


class Severity(IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> ExceptionSeverity:
        return ExceptionSeverity(self.name.lower())

    @classmethod
    def of(cls, label: ExceptionSeverity) -> Severity:
        return cls[label.name]


@dataclass(frozen=True)
class AccountStanding:
    """What the CRM says of the customer's account."""

    strategic: bool
    renewal_date: date | None


@dataclass(frozen=True)
class Assessment:
    severity: Severity
    rank: int  # higher first; comparable across currencies
    reasons: tuple[str, ...]  # why, for the detail shown to finance


@dataclass(frozen=True)
class Thresholds:
    medium: Money
    high: Money
    critical: Money


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Thresholds(_Strict):
    medium: str
    high: str
    critical: str


class _File(_Strict):
    renewal_within_days: int = Field(ge=0, le=3660)
    at_least_medium: tuple[ExceptionKind, ...] = ()
    materiality: dict[str, _Thresholds] = {}

    @field_validator("materiality")
    @classmethod
    def _currencies(cls, value: dict[str, _Thresholds]) -> dict[str, _Thresholds]:
        for currency in value:
            if currency not in CURRENCY_EXPONENTS:
                raise ValueError(f"unknown currency {currency!r}")
        return value


@dataclass(frozen=True)
class SeverityPolicy:
    renewal_within_days: int
    at_least_medium: frozenset[ExceptionKind]
    materiality: dict[str, Thresholds]

    def assess(
        self,
        kind: ExceptionKind,
        impact: Money,
        account: AccountStanding | None,
        today: date,
    ) -> Assessment:
        reasons: list[str] = []
        limits = self.materiality.get(impact.currency)
        worth = abs(impact.amount_minor)
        level = Severity.LOW
        if limits is not None:
            for threshold, at in (
                (limits.critical, Severity.CRITICAL),
                (limits.high, Severity.HIGH),
                (limits.medium, Severity.MEDIUM),
            ):
                if worth >= threshold.amount_minor:
                    level = at
                    reasons.append(f"worth {threshold} or more")
                    break
        if kind in self.at_least_medium and level < Severity.MEDIUM:
            level = Severity.MEDIUM
        if account is not None and account.strategic:
            level = _raised(level)
            reasons.append("strategic account")
        renewing = _renewing_in(account, today)
        if renewing is not None and renewing <= self.renewal_within_days:
            level = _raised(level)
            reasons.append(f"renews in {renewing} days")
        per_mille = 0 if limits is None else worth * 1000 // max(1, limits.high.amount_minor)
        return Assessment(level, level * _LEVEL + min(per_mille, _LEVEL - 1), tuple(reasons))

    @classmethod
    def parse(cls, text: str, source: str = "reconciliation policy file") -> SeverityPolicy:
        try:
            spec = _File.model_validate(tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{source}: not TOML ({exc})") from None
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            why = error["msg"].removeprefix("Value error, ")
            raise ConfigurationError(f"{source}: {where}: {why}") from None
        materiality = {}
        for currency, limits in spec.materiality.items():
            try:
                amounts = Thresholds(
                    medium=Money.of(limits.medium, currency),
                    high=Money.of(limits.high, currency),
                    critical=Money.of(limits.critical, currency),
                )
            except MoneyError as exc:
                raise ConfigurationError(f"{source}: materiality.{currency}: {exc}") from None
            if not 0 < amounts.medium.amount_minor < amounts.high.amount_minor:
                raise ConfigurationError(
                    f"{source}: materiality.{currency}: need 0 < medium < high < critical"
                )
            if not amounts.high.amount_minor < amounts.critical.amount_minor:
                raise ConfigurationError(
                    f"{source}: materiality.{currency}: need 0 < medium < high < critical"
                )
            materiality[currency] = amounts
        return cls(spec.renewal_within_days, frozenset(spec.at_least_medium), materiality)

    @classmethod
    def load(cls, path: Path) -> SeverityPolicy:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"reconciliation policy file {path}: {exc.strerror}") from None
        return cls.parse(text, source=f"reconciliation policy file {path}")


def _raised(level: Severity) -> Severity:
    return Severity(min(level + 1, Severity.CRITICAL))


def _renewing_in(account: AccountStanding | None, today: date) -> int | None:
    """Days until the account renews; None without a renewal date or once it is past."""
    if account is None or account.renewal_date is None:
        return None
    days = (account.renewal_date - today).days
    return days if days >= 0 else None
