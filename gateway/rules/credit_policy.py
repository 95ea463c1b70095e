"""The service-credit policy: whether a credit request is approved on its own, needs an
approver or is refused, per currency and legal entity.

The policy is configuration (``credit_policy.toml``), validated at start like the ownership
map: every amount becomes exact ``Money``, and a bad value stops the gateway with one line
that names the file and the value's path in it (``USD."Opsgraph Inc.".max_per_request``).

This module decides from what it is given and reads nothing but the policy file: the credit
workflow sums the customer's approved and pending credits since ``period_start`` and passes
the sum. Four-eyes is not decided here either: the workflow checks that whoever approves a
request is not whoever asked for it.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import assert_never

from connectors.money import CURRENCY_EXPONENTS, Money, exponent
from gateway.auth.scopes import ROLE_SCOPES, Role, Scope
from gateway.errors import ConfigurationError

DEFAULT = "default"  # the rule for the legal entities a currency does not list
DEFAULT_APPROVERS = frozenset({Role.FINANCE_APPROVER})
_AMOUNTS = ("auto_approve_below", "max_per_request", "max_per_customer")
_REQUIRED = (*_AMOUNTS, "period")
_KEYS = (*_REQUIRED, "approvers")
_AMOUNT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class CreditOutcome(StrEnum):
    AUTO_APPROVE = "auto_approve"
    NEEDS_APPROVAL = "needs_approval"
    REFUSED = "refused"


class CreditPeriod(StrEnum):
    """The calendar window ``max_per_customer`` counts over."""

    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


@dataclass(frozen=True)
class CreditRule:
    currency: str
    legal_entity: str | None  # None: the currency's default rule
    auto_approve_below: Money
    max_per_request: Money
    max_per_customer: Money
    period: CreditPeriod
    approvers: frozenset[Role]

    @property
    def name(self) -> str:
        """Where the rule is in the file: ``USD.default``, ``USD."Opsgraph Inc."``."""
        return _path(self.currency, self.legal_entity or DEFAULT)


@dataclass(frozen=True)
class CreditDecision:
    outcome: CreditOutcome
    reason: str  # one sentence for the support agent
    approvers: frozenset[Role]  # who may approve; empty unless the outcome needs approval
    rule: CreditRule | None  # None when no rule covers the currency


@dataclass(frozen=True)
class CreditPolicy:
    rules: Mapping[tuple[str, str | None], CreditRule]

    def rule_for(self, currency: str, legal_entity: str | None) -> CreditRule | None:
        """The legal entity's own rule in ``currency``, else the currency's default."""
        own = self.rules.get((currency, legal_entity))
        return own if own is not None else self.rules.get((currency, None))

    def decide(
        self, amount: Money, legal_entity: str | None, already_this_period: Money
    ) -> CreditDecision:
        """``already_this_period``: the customer's approved and pending credits since
        ``period_start`` of the rule's period, in ``amount``'s currency (``MoneyError``
        otherwise: summing currencies is a bug, not a refusal)."""
        rule = self.rule_for(amount.currency, legal_entity)
        if rule is None:
            return _refused(
                f"No credit policy covers {amount.currency}, so credits in {amount.currency} "
                "cannot be requested.",
                None,
            )
        total = already_this_period + amount
        whom = legal_entity or "a customer with no legal entity"
        if amount.amount_minor <= 0:
            return _refused(f"A credit must be more than {Money.zero(amount.currency)}.", rule)
        if amount.amount_minor > rule.max_per_request.amount_minor:
            return _refused(
                _sentence(
                    f"{amount} is over the {rule.max_per_request} a request may credit for {whom}"
                ),
                rule,
            )
        if total.amount_minor > rule.max_per_customer.amount_minor:
            return _refused(
                _sentence(
                    f"This customer already has {already_this_period} credited or pending "
                    f"this {rule.period}, and {amount} more would make {total}, over the "
                    f"{rule.max_per_customer} a customer may be credited per {rule.period} "
                    f"for {whom}"
                ),
                rule,
            )
        if amount.amount_minor < rule.auto_approve_below.amount_minor:
            return CreditDecision(
                CreditOutcome.AUTO_APPROVE,
                f"{amount} is under the {rule.auto_approve_below} from which credits for "
                f"{whom} need an approver, so it is approved now.",
                frozenset(),
                rule,
            )
        return CreditDecision(
            CreditOutcome.NEEDS_APPROVAL,
            _sentence(
                f"{amount} needs approval by {named_roles(rule.approvers)}, as every credit of "
                f"{rule.auto_approve_below} or more does for {whom}"
            ),
            rule.approvers,
            rule,
        )

    @staticmethod
    def period_start(period: CreditPeriod, today: date) -> date:
        """The first day of the calendar month, quarter or year ``today`` is in."""
        match period:
            case CreditPeriod.MONTH:
                return today.replace(day=1)
            case CreditPeriod.QUARTER:
                return date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
            case CreditPeriod.YEAR:
                return date(today.year, 1, 1)
            case _:
                assert_never(period)

    @classmethod
    def parse(cls, text: str, source: str = "credit policy file") -> CreditPolicy:
        try:
            return cls(_rules(text))
        except _Invalid as exc:
            where = f"{exc.path}: " if exc.path else ""
            raise ConfigurationError(f"{source}: {where}{exc.why}") from None

    @classmethod
    def load(cls, path: Path) -> CreditPolicy:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"credit policy file {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigurationError(f"credit policy file {path}: not UTF-8 text") from None
        return cls.parse(text, source=f"credit policy file {path}")


class _Invalid(Exception):
    """A bad value at ``path``; ``CreditPolicy.parse`` adds the file's name."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(why)
        self.path = path
        self.why = why


def _rules(text: str) -> dict[tuple[str, str | None], CreditRule]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _Invalid("", f"not valid TOML ({exc})") from None
    if not document:
        raise _Invalid("", "no currency has a rule, so every credit would be refused")
    rules: dict[tuple[str, str | None], CreditRule] = {}
    for currency, table in document.items():
        if currency not in CURRENCY_EXPONENTS:
            raise _Invalid(_path(currency), "unknown currency")
        if not isinstance(table, dict):
            raise _Invalid(_path(currency), "must be a table of rules")
        for entity, fields in table.items():
            if not isinstance(fields, dict):
                raise _Invalid(
                    _path(currency, entity),
                    f"not a rule: write rules under [{currency}.default] or "
                    f'[{currency}."<legal entity>"]',
                )
            if not entity or entity != entity.strip():
                raise _Invalid(_path(currency, entity), "not a legal entity's name")
            rule = _rule(currency, None if entity == DEFAULT else entity, fields)
            rules[currency, rule.legal_entity] = rule
        if DEFAULT not in table:
            raise _Invalid(_path(currency, DEFAULT), "missing")
    return rules


def _rule(currency: str, legal_entity: str | None, fields: dict[str, object]) -> CreditRule:
    at = _path(currency, legal_entity or DEFAULT)
    for key in fields:
        if key not in _KEYS:
            raise _Invalid(f"{at}.{_key(key)}", f"unknown key (keys: {', '.join(_KEYS)})")
    for key in _REQUIRED:
        if key not in fields:
            raise _Invalid(f"{at}.{key}", "missing")
    auto, per_request, per_customer = (
        _amount(fields[key], currency, f"{at}.{key}") for key in _AMOUNTS
    )
    if auto.amount_minor > per_request.amount_minor:
        raise _Invalid(
            f"{at}.auto_approve_below", f"{auto} is more than max_per_request ({per_request})"
        )
    if per_request.amount_minor > per_customer.amount_minor:
        raise _Invalid(
            f"{at}.max_per_request", f"{per_request} is more than max_per_customer ({per_customer})"
        )
    return CreditRule(
        currency=currency,
        legal_entity=legal_entity,
        auto_approve_below=auto,
        max_per_request=per_request,
        max_per_customer=per_customer,
        period=_period(fields["period"], f"{at}.period"),
        approvers=_approvers(fields.get("approvers"), f"{at}.approvers"),
    )


def _amount(value: object, currency: str, at: str) -> Money:
    places = exponent(currency)
    like = f'like "{Money.of(250, currency).amount_str()}"'
    if not isinstance(value, str):
        raise _Invalid(at, f"{_show(value)} must be a string in major units, {like}")
    if not _AMOUNT.fullmatch(value):
        raise _Invalid(at, f"{_show(value)} is not an amount, {like}")
    if value.startswith("-"):
        raise _Invalid(at, f"{_show(value)} is negative")
    if len(value.partition(".")[2]) != places:
        decimals = f"{places} decimals" if places else "no decimals"
        raise _Invalid(at, f"{_show(value)} must have {decimals} in {currency}, {like}")
    return Money.of(value, currency)


def _period(value: object, at: str) -> CreditPeriod:
    if isinstance(value, str) and value in CreditPeriod.__members__.values():
        return CreditPeriod(value)
    raise _Invalid(at, f"{_show(value)} is not month, quarter or year")


def _approvers(value: object, at: str) -> frozenset[Role]:
    if value is None:
        return DEFAULT_APPROVERS
    if not isinstance(value, list):
        raise _Invalid(at, f'must be a list of roles, like ["{Role.FINANCE_APPROVER}"]')
    if not value:
        raise _Invalid(at, "needs at least one role, or nobody could approve")
    roles = set()
    for name in value:
        try:
            role = Role(name)
        except ValueError:
            raise _Invalid(at, f"unknown role {_show(name)} (roles: {', '.join(Role)})") from None
        if Scope.CREDITS_APPROVE not in ROLE_SCOPES[role]:
            raise _Invalid(at, f"{role} may not approve credits (its scopes lack credits:approve)")
        roles.add(role)
    return frozenset(roles)


def _refused(reason: str, rule: CreditRule | None) -> CreditDecision:
    return CreditDecision(CreditOutcome.REFUSED, reason, frozenset(), rule)


def _sentence(text: str) -> str:
    """``text`` with a full stop, unless it ends with one already (``Opsgraph Inc.``)."""
    return text if text.endswith(".") else f"{text}."


def named_roles(roles: frozenset[Role]) -> str:
    """``a finance approver``, ``a finance approver or an integration admin``."""
    named = [r.value.replace("_", " ") for r in sorted(roles)]
    return " or ".join(f"{'an' if n[0] in 'aeiou' else 'a'} {n}" for n in named)


def _path(*keys: str) -> str:
    return ".".join(_key(k) for k in keys)


def _key(key: str) -> str:
    """A key as TOML writes it: bare when it may be, quoted otherwise."""
    return key if _BARE_KEY.fullmatch(key) else _show(key)


def _show(value: object) -> str:
    """A value as the TOML file has it (``"250.5"``, ``250.0``, ``["x"]``)."""
    return json.dumps(value, ensure_ascii=False, default=str)
