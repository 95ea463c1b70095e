"""The service-credit policy: the shipped file, every refusal of a bad file in one line, the
decisions at their boundaries, and `opsgraph policy check`."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from connectors.money import Money, MoneyError
from connectors.sandbox.seed import ENTITIES
from gateway.auth.scopes import Role
from gateway.errors import ConfigurationError
from gateway.rules.credit_policy import CreditOutcome, CreditPeriod, CreditPolicy
from gateway.settings import DEFAULT_CREDIT_POLICY, load_settings
from tests.world import opsgraph

# Not the shipped file: finance may change that one without breaking these tests. Every
# amount is written once so that a test can edit exactly one of them.
POLICY = """
[USD.default]
auto_approve_below = "25.00"
max_per_request = "150.00"
max_per_customer = "500.00"
period = "month"

[USD."Opsgraph Inc."]
auto_approve_below = "50.00"
max_per_request = "200.00"
max_per_customer = "1000.00"
period = "quarter"
approvers = ["finance_approver"]

[JPY.default]
auto_approve_below = "5000"
max_per_request = "50000"
max_per_customer = "100000"
period = "year"

[KWD.default]
auto_approve_below = "15.000"
max_per_request = "150.000"
max_per_customer = "300.000"
period = "quarter"
"""

USD = "USD"
INC = "Opsgraph Inc."


def usd(amount: str) -> Money:
    return Money.of(amount, USD)


@pytest.fixture(scope="module")
def policy() -> CreditPolicy:
    return CreditPolicy.parse(POLICY, source="credit_policy.toml")


def test_the_shipped_policy_covers_every_seeded_currency_and_legal_entity() -> None:
    shipped = CreditPolicy.load(DEFAULT_CREDIT_POLICY)
    assert {currency for currency, _ in shipped.rules} == set(ENTITIES)
    for currency, (entity, _) in ENTITIES.items():
        rule = shipped.rule_for(currency, entity)
        assert rule is not None and rule.currency == currency
    own = shipped.rule_for(USD, INC)
    assert own is not None and own.name == 'USD."Opsgraph Inc."'


def test_the_settings_point_at_the_shipped_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPSGRAPH_CREDIT_POLICY_FILE", raising=False)
    assert load_settings().credit_policy_file == DEFAULT_CREDIT_POLICY


def test_amounts_are_exact_money_in_each_currencys_minor_units(policy: CreditPolicy) -> None:
    inc, jpy = policy.rule_for(USD, INC), policy.rule_for("JPY", None)
    kwd = policy.rule_for("KWD", None)
    assert inc is not None and jpy is not None and kwd is not None
    assert (inc.auto_approve_below, inc.max_per_request, inc.max_per_customer) == (
        Money(5000, USD), Money(20000, USD), Money(100000, USD),
    )  # fmt: skip
    assert (jpy.auto_approve_below, jpy.max_per_request) == (
        Money(5000, "JPY"),
        Money(50000, "JPY"),
    )
    assert (kwd.auto_approve_below, kwd.max_per_customer) == (
        Money(15000, "KWD"), Money(300000, "KWD"),
    )  # fmt: skip
    assert (inc.period, jpy.period) == (CreditPeriod.QUARTER, CreditPeriod.YEAR)
    assert jpy.approvers == frozenset({Role.FINANCE_APPROVER})  # the default


def _edit(old: str, new: str) -> str:
    assert POLICY.count(old) == 1, old
    return POLICY.replace(old, new)


INVALID = [
    (
        _edit('max_per_request = "150.00"', "max_per_request = 150.00"),
        'USD.default.max_per_request: 150.0 must be a string in major units, like "250.00"',
    ),
    (
        _edit('auto_approve_below = "5000"', "auto_approve_below = 5000"),
        'JPY.default.auto_approve_below: 5000 must be a string in major units, like "250"',
    ),
    (
        _edit('"25.00"', '"25.001"'),
        'USD.default.auto_approve_below: "25.001" must have 2 decimals in USD, like "250.00"',
    ),
    (
        _edit('"15.000"', '"15.00"'),
        'KWD.default.auto_approve_below: "15.00" must have 3 decimals in KWD, like "250.000"',
    ),
    (
        _edit('"50000"', '"50000.0"'),
        'JPY.default.max_per_request: "50000.0" must have no decimals in JPY, like "250"',
    ),
    (
        _edit('"1000.00"', '"1,000.00"'),
        'USD."Opsgraph Inc.".max_per_customer: "1,000.00" is not an amount, like "250.00"',
    ),
    (
        _edit('"500.00"', '"-500.00"'),
        'USD.default.max_per_customer: "-500.00" is negative',
    ),
    (_edit("[JPY.default]", "[YEN.default]"), "YEN: unknown currency"),
    (
        _edit("approvers = [", "approver = ["),
        'USD."Opsgraph Inc.".approver: unknown key (keys: auto_approve_below, max_per_request, '
        "max_per_customer, period, approvers)",
    ),
    (_edit('max_per_customer = "300.000"\n', ""), "KWD.default.max_per_customer: missing"),
    (_edit('period = "year"\n', ""), "JPY.default.period: missing"),
    (_edit("[JPY.default]", '[JPY."Opsgraph K.K."]'), "JPY.default: missing"),
    (
        _edit('"15.000"', '"150.001"'),
        "KWD.default.auto_approve_below: 150.001 KWD is more than max_per_request (150.000 KWD)",
    ),
    (
        _edit('"50000"', '"100001"'),
        "JPY.default.max_per_request: 100001 JPY is more than max_per_customer (100000 JPY)",
    ),
    (
        _edit('["finance_approver"]', '["finance"]'),
        'USD."Opsgraph Inc.".approvers: unknown role "finance" (roles: viewer, support_agent, '
        "support_lead, finance_approver, integration_admin)",
    ),
    (
        _edit('["finance_approver"]', '["support_lead"]'),
        'USD."Opsgraph Inc.".approvers: support_lead may not approve credits (its scopes lack '
        "credits:approve)",
    ),
    (
        _edit('["finance_approver"]', "[]"),
        'USD."Opsgraph Inc.".approvers: needs at least one role, or nobody could approve',
    ),
    (_edit('"month"', '"week"'), 'USD.default.period: "week" is not month, quarter or year'),
    (
        _edit("[USD.default]", "[USD]"),
        "USD.auto_approve_below: not a rule: write rules under [USD.default] or "
        '[USD."<legal entity>"]',
    ),
    (
        _edit('[USD."Opsgraph Inc."]', '[USD."Opsgraph Inc. "]'),
        'USD."Opsgraph Inc. ": not a legal entity\'s name',
    ),
    ("", "no currency has a rule, so every credit would be refused"),
    (
        "[USD",
        "not valid TOML (Expected ']' at the end of a table declaration (at end of document))",
    ),
]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_an_invalid_policy_fails_with_one_line_naming_the_value(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        CreditPolicy.parse(text, source="credit_policy.toml")
    assert err.value.message == f"credit_policy.toml: {message}"


def test_a_missing_file_is_one_line_naming_it() -> None:
    with pytest.raises(ConfigurationError) as err:
        CreditPolicy.load(Path("/nonexistent/credit_policy.toml"))
    assert err.value.message == (
        "credit policy file /nonexistent/credit_policy.toml: No such file or directory"
    )


def test_a_bad_file_from_the_settings_fails_to_load_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "credit_policy.toml"
    bad.write_text(_edit('"month"', '"week"'))
    monkeypatch.setenv("OPSGRAPH_CREDIT_POLICY_FILE", str(bad))
    with pytest.raises(ConfigurationError) as err:
        CreditPolicy.load(load_settings().credit_policy_file)
    assert err.value.message == (
        f'credit policy file {bad}: USD.default.period: "week" is not month, quarter or year'
    )


def test_exactly_auto_approve_below_needs_an_approver(policy: CreditPolicy) -> None:
    below = policy.decide(usd("49.99"), INC, usd("0.00"))
    at = policy.decide(usd("50.00"), INC, usd("0.00"))
    assert (below.outcome, below.approvers) == (CreditOutcome.AUTO_APPROVE, frozenset())
    assert below.reason == (
        "49.99 USD is under the 50.00 USD from which credits for Opsgraph Inc. need an "
        "approver, so it is approved now."
    )
    assert (at.outcome, at.approvers) == (
        CreditOutcome.NEEDS_APPROVAL, frozenset({Role.FINANCE_APPROVER}),
    )  # fmt: skip
    assert at.reason == (
        "50.00 USD needs approval by a finance approver, as every credit of 50.00 USD or more "
        "does for Opsgraph Inc."
    )


def test_exactly_max_per_request_is_allowed_and_one_cent_more_is_refused(
    policy: CreditPolicy,
) -> None:
    assert policy.decide(usd("200.00"), INC, usd("0.00")).outcome is CreditOutcome.NEEDS_APPROVAL
    over = policy.decide(usd("200.01"), INC, usd("0.00"))
    assert (over.outcome, over.approvers) == (CreditOutcome.REFUSED, frozenset())
    assert over.reason == "200.01 USD is over the 200.00 USD a request may credit for Opsgraph Inc."


def test_the_customers_period_total_may_reach_the_limit_but_not_pass_it(
    policy: CreditPolicy,
) -> None:
    at = policy.decide(usd("200.00"), INC, already_this_period=usd("800.00"))
    over = policy.decide(usd("200.00"), INC, already_this_period=usd("800.01"))
    assert at.outcome is CreditOutcome.NEEDS_APPROVAL
    assert over.outcome is CreditOutcome.REFUSED
    assert over.reason == (
        "This customer already has 800.01 USD credited or pending this quarter, and "
        "200.00 USD more would make 1000.01 USD, over the 1000.00 USD a customer may be "
        "credited per quarter for Opsgraph Inc."
    )


def test_a_small_credit_is_refused_when_it_passes_the_customers_limit(
    policy: CreditPolicy,
) -> None:
    decision = policy.decide(usd("0.01"), INC, already_this_period=usd("1000.00"))
    assert decision.outcome is CreditOutcome.REFUSED


def test_yen_amounts_have_no_minor_unit(policy: CreditPolicy) -> None:
    def decide(amount: int) -> CreditOutcome:
        return policy.decide(Money(amount, "JPY"), "Opsgraph K.K.", Money(0, "JPY")).outcome

    assert [decide(4999), decide(5000), decide(50000), decide(50001)] == [
        CreditOutcome.AUTO_APPROVE, CreditOutcome.NEEDS_APPROVAL,
        CreditOutcome.NEEDS_APPROVAL, CreditOutcome.REFUSED,
    ]  # fmt: skip
    refused = policy.decide(Money(50001, "JPY"), "Opsgraph K.K.", Money(0, "JPY"))
    assert (
        refused.reason == "50001 JPY is over the 50000 JPY a request may credit for Opsgraph K.K."
    )


def test_dinar_amounts_have_three_decimals(policy: CreditPolicy) -> None:
    entity = "Opsgraph Gulf W.L.L."
    below = policy.decide(Money(14999, "KWD"), entity, Money(0, "KWD"))
    over = policy.decide(Money(150001, "KWD"), entity, Money(0, "KWD"))
    assert below.outcome is CreditOutcome.AUTO_APPROVE
    assert below.reason.startswith("14.999 KWD is under the 15.000 KWD ")
    assert over.reason == (
        "150.001 KWD is over the 150.000 KWD a request may credit for Opsgraph Gulf W.L.L."
    )


def test_a_listed_entity_has_its_own_rule_and_the_others_the_default(
    policy: CreditPolicy,
) -> None:
    own = policy.decide(usd("40.00"), INC, usd("0.00"))
    other = policy.decide(usd("40.00"), "Opsgraph B.V.", usd("0.00"))
    nobody = policy.decide(usd("151.00"), None, usd("0.00"))
    assert own.outcome is CreditOutcome.AUTO_APPROVE
    assert own.rule is not None and own.rule.name == 'USD."Opsgraph Inc."'
    assert other.outcome is CreditOutcome.NEEDS_APPROVAL
    assert other.rule is not None and other.rule.name == "USD.default"
    assert nobody.reason == (
        "151.00 USD is over the 150.00 USD a request may credit for a customer with no legal "
        "entity."
    )


def test_a_currency_without_a_rule_is_refused(policy: CreditPolicy) -> None:
    decision = policy.decide(Money(1000, "EUR"), "Opsgraph B.V.", Money(0, "EUR"))
    assert (decision.outcome, decision.rule, decision.approvers) == (
        CreditOutcome.REFUSED, None, frozenset(),
    )  # fmt: skip
    assert decision.reason == "No credit policy covers EUR, so credits in EUR cannot be requested."


@pytest.mark.parametrize("amount", ["0.00", "-5.00"])
def test_a_credit_of_nothing_is_refused(policy: CreditPolicy, amount: str) -> None:
    decision = policy.decide(usd(amount), INC, usd("0.00"))
    assert (decision.outcome, decision.reason) == (
        CreditOutcome.REFUSED, "A credit must be more than 0.00 USD.",
    )  # fmt: skip


def test_a_period_total_in_another_currency_is_a_bug_not_a_refusal(policy: CreditPolicy) -> None:
    with pytest.raises(MoneyError):
        policy.decide(usd("10.00"), INC, Money(0, "EUR"))


@pytest.mark.parametrize(
    ("period", "today", "start"),
    [
        (CreditPeriod.MONTH, date(2024, 5, 31), date(2024, 5, 1)),
        (CreditPeriod.MONTH, date(2024, 5, 1), date(2024, 5, 1)),
        (CreditPeriod.QUARTER, date(2024, 1, 1), date(2024, 1, 1)),
        (CreditPeriod.QUARTER, date(2024, 5, 31), date(2024, 4, 1)),
        (CreditPeriod.QUARTER, date(2024, 9, 30), date(2024, 7, 1)),
        (CreditPeriod.QUARTER, date(2024, 12, 31), date(2024, 10, 1)),
        (CreditPeriod.YEAR, date(2024, 12, 31), date(2024, 1, 1)),
    ],
)
def test_period_start_is_the_first_day_of_the_calendar_period(
    policy: CreditPolicy, period: CreditPeriod, today: date, start: date
) -> None:
    assert policy.period_start(period, today) == start


def test_policy_check_prints_each_rule_of_the_shipped_file() -> None:
    done = opsgraph("policy", "check")
    shipped = CreditPolicy.load(DEFAULT_CREDIT_POLICY)
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert [line.partition(" auto-approved")[0].rstrip() for line in lines] == [
        rule.name for rule in shipped.rules.values()
    ]
    assert lines[0] == (
        "USD.default              auto-approved below 25.00 USD, at most 200.00 USD a request "
        "and 500.00 USD a customer per quarter; approvers: finance_approver"
    )


def test_policy_check_stops_with_one_line_on_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "credit_policy.toml"
    bad.write_text(_edit('"25.00"', "25.00"))
    done = opsgraph("policy", "check", str(bad))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [
        f"opsgraph: credit policy file {bad}: USD.default.auto_approve_below: 25.0 must be a "
        'string in major units, like "250.00"'
    ]


def test_policy_check_reads_the_file_the_settings_name(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    done = opsgraph("policy", "check", OPSGRAPH_CREDIT_POLICY_FILE=str(missing))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"opsgraph: credit policy file {missing}: No such file or directory"
    ]
    assert "Traceback" not in done.stderr + done.stdout
