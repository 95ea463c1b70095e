"""The actions event routes are made of (``event_routes.toml``): each a workflow step that
reads the event from its run's input and the outputs of the steps before it, and sends its
owner the step's idempotency key, so that a step called again (a retry, a crash, a replay)
takes effect there once.

Usage over a threshold (Stripe's ``billing.alert.triggered``):
    ``enrich_usage``                the customer's accounts everywhere, the overage priced in
                                    its currency with its entity's tax and its segment's cost
                                    centre, and the CRM health score it moves to
    ``erp_post_usage``              the overage posted to the ERP as an invoice
    ``crm_usage_health``            the CRM account's health score set
    ``support_entitlement_changed`` a ticket telling the support desk what changed

A plan changed or cancelled (``customer.subscription.updated`` / ``.deleted``):
    ``refresh_entitlements``        the subscriptions read again from billing; what the
                                    customer is entitled to now
    ``crm_plan_changed``            the change logged on the CRM account

An SLA breached (Zendesk's ``ticket.tags_changed`` adding ``sla_breached``):
    ``provisional_credit``          a credit request for the case, as the credit policy allows

A step that finds nothing to do (an unlinked customer, no overage) says so in its output and
succeeds; one whose owner refuses fails the run, which is then a dead letter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.commands import CreateCase, LogAccountActivity, PostInvoice, UpdateAccountHealth
from connectors.models import (
    Account,
    CasePriority,
    CustomerRecord,
    ObjectKind,
    Plan,
    Subscription,
    SystemName,
)
from connectors.money import Money, MoneyError, exponent
from gateway.auth.principal import Principal, PrincipalKind
from gateway.auth.scopes import Role
from gateway.data.crosswalk import Crosswalk, CustomerIdentity
from gateway.data.reads import settled
from gateway.errors import BadUserInput
from gateway.events.routing import Action
from gateway.rules.entitlements import entitlements
from gateway.workflows.engine import StepContext
from gateway.writes.credits import Credits
from gateway.writes.pipeline import Writes

# Who asks for what a route does (a credit's requester): never a person, so never its approver.
ROUTER = Principal.of("opsgraph:routing", PrincipalKind.SERVICE, roles=[Role.SUPPORT_AGENT])
DEFAULT = "default"

Output = dict[str, Any]
P = TypeVar("P", bound=BaseModel)


def _event(step: StepContext) -> Mapping[str, Any]:
    """The vendor's event the run is about (the CloudEvent's data)."""
    data = step.run.input["event"].get("data")
    if not isinstance(data, Mapping):
        raise BadUserInput("the event carries no data")
    return data


def _decimal_table(value: Mapping[str, str], what: str) -> dict[str, Decimal]:
    table = {}
    for key, text in value.items():
        try:
            number = Decimal(text)
        except ArithmeticError:
            raise ValueError(f"{what} {key}: {text!r} is not a number") from None
        if not number.is_finite() or number < 0:
            raise ValueError(f"{what} {key}: {text!r} must be 0 or more")
        table[key] = number
    return table


class _Params(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class UsageParams(_Params):
    unit_price: dict[str, str]  # currency -> a price per unit in major units
    tax_percent: dict[str, str]  # legal entity (or default) -> percent
    cost_centre: dict[str, str]  # CRM segment (or default) -> cost centre
    health_bonus: int = Field(ge=0, le=100)

    @field_validator("unit_price")
    @classmethod
    def _prices(cls, value: dict[str, str]) -> dict[str, str]:
        for currency, text in _decimal_table(value, "unit_price").items():
            try:
                exponent(currency)
            except MoneyError as exc:
                raise ValueError(str(exc)) from None
            if text.as_tuple().exponent < -exponent(currency):  # type: ignore[operator]
                raise ValueError(f"unit_price {currency}: {text} has more decimals than it has")
        return value

    @field_validator("tax_percent")
    @classmethod
    def _percent(cls, value: dict[str, str]) -> dict[str, str]:
        if any(p > 100 for p in _decimal_table(value, "tax_percent").values()):
            raise ValueError("tax_percent is at most 100")
        return value


class CreditParams(_Params):
    credit: dict[str, str]  # currency -> the amount, in major units
    reason: str = Field(min_length=1, max_length=500)

    @field_validator("credit")
    @classmethod
    def _amounts(cls, value: dict[str, str]) -> dict[str, str]:
        for currency, text in value.items():
            try:
                amount = Money.of(text, currency)
            except MoneyError as exc:
                raise ValueError(f"credit {currency}: {exc}") from None
            if amount.amount_minor <= 0:
                raise ValueError(f"credit {currency}: must be more than 0")
        return value


@dataclass(frozen=True)
class Usage:
    """What Stripe's ``billing.alert_triggered`` says: a customer's usage of a meter reached
    an alert's threshold."""

    customer: str
    alert: str
    meter: str
    threshold: int
    value: int

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> Usage:
        try:
            triggered = event["data"]["object"]
            alert = triggered["alert"]
            threshold = alert["usage_threshold"]
            return cls(
                customer=str(triggered["customer"]),
                alert=str(alert["id"]),
                meter=str(threshold["meter"]),
                threshold=int(threshold["gte"]),
                value=int(triggered["value"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BadUserInput(f"not a usage alert Stripe sends: {exc!r}") from None


class Actions:
    def __init__(self, writes: Writes, crosswalk: Crosswalk, credits: Credits) -> None:
        self.writes = writes
        self.reader = writes.reader
        self.crosswalk = crosswalk
        self.credits = credits

    # -- usage over a threshold ---------------------------------------------------------------

    async def enrich_usage(self, step: StepContext, params: UsageParams) -> Output:
        usage = Usage.of(_event(step))
        identity = await self._identity(SystemName.BILLING, usage.customer)
        if identity is None:
            return {"customer": None, "skipped": f"billing customer {usage.customer} is not linked"}
        ids = identity.external_ids
        currency = await self._billed_in(usage.customer)
        account = await self._account(ids.get(SystemName.CRM))
        units = max(usage.value - usage.threshold, 0)
        output: Output = {
            "customer": identity.id,
            "erp": ids.get(SystemName.ERP),
            "crm": ids.get(SystemName.CRM),
            "support": ids.get(SystemName.SUPPORT),
            "legalEntity": identity.legal_entity,
            "alert": usage.alert,
            "meter": usage.meter,
            "units": units,
            "currency": currency,
            "costCentre": _by(params.cost_centre, account.segment if account else None),
            "healthScore": None,
        }
        if account is not None and account.health_score is not None:
            output["healthScore"] = min(100, account.health_score + params.health_bonus)
        if currency is None or currency not in params.unit_price:
            output["skipped"] = f"no unit price in {currency or 'the customer’s currency'}"
            return output
        price = Decimal(params.unit_price[currency]).scaleb(exponent(currency))
        amount = int(price * units)
        percent = Decimal(_by(params.tax_percent, identity.legal_entity) or "0")
        tax = int((amount * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        output |= {"amountMinor": amount, "taxMinor": tax, "taxPercent": str(percent)}
        return output

    async def erp_post_usage(self, step: StepContext) -> Output:
        enriched = step.outputs["enrich_usage"]
        amount = int(enriched.get("amountMinor") or 0)
        if not amount or enriched.get("erp") is None or enriched.get("legalEntity") is None:
            return {"system": "erp", "skipped": "nothing to bill, or no ERP customer"}
        currency = str(enriched["currency"])
        posting = PostInvoice(
            customer_id=enriched["erp"],
            amount=Money(amount, currency),
            tax=Money(int(enriched["taxMinor"]), currency),
            subsidiary=enriched["legalEntity"],
            tran_date=_occurred_on(step),
            external_id=f"usage:{enriched['alert']}:{enriched['customer']}"[:255],
            memo=(
                f"Usage over threshold: {enriched['units']} units of meter "
                f"{enriched['meter']} (alert {enriched['alert']}); cost centre "
                f"{enriched['costCentre']}"
            )[:4000],
        )
        result = await self.writes.apply(posting, step.idempotency_key)
        await self.reader.invalidate_many(
            [
                (ObjectKind.BALANCE, enriched["erp"], None),
                (ObjectKind.POSTING, None, enriched["erp"]),
            ]
        )
        return {"system": "erp", "reference": result.id, "amountMinor": amount}

    async def crm_usage_health(self, step: StepContext) -> Output:
        enriched = step.outputs["enrich_usage"]
        score = enriched.get("healthScore")
        if enriched.get("crm") is None or score is None:
            return {"system": "crm", "skipped": "no CRM account with a health score"}
        update = UpdateAccountHealth(id=enriched["crm"], health_score=int(score))
        result = await self.writes.apply(update, step.idempotency_key)
        await self.reader.invalidate(ObjectKind.ACCOUNT, enriched["crm"])
        return {"system": "crm", "reference": result.id, "healthScore": score}

    async def support_entitlement_changed(self, step: StepContext) -> Output:
        enriched = step.outputs["enrich_usage"]
        if enriched.get("support") is None:
            return {"system": "support", "skipped": "the customer has no support organization"}
        billed = ""
        if enriched.get("amountMinor"):
            money = Money(int(enriched["amountMinor"]), str(enriched["currency"]))
            billed = f" The overage is billed: {money.amount_str()} {money.currency}."
        case = CreateCase(
            organization_id=enriched["support"],
            subject=f"Entitlement changed: usage over the threshold of {enriched['meter']}",
            body=(
                f"The customer's usage of {enriched['meter']} passed its alert's threshold by "
                f"{enriched['units']} units (alert {enriched['alert']}).{billed} Expect "
                "questions about the plan's limits."
            ),
            priority=CasePriority.LOW,
            external_id=step.idempotency_key,
        )
        result = await self.writes.apply(case, step.idempotency_key)
        await self.reader.invalidate(ObjectKind.CASE, None, parent=enriched["support"])
        return {"system": "support", "reference": result.id}

    # -- plan changes ---------------------------------------------------------------------

    async def refresh_entitlements(self, step: StepContext) -> Output:
        subscription = _object(_event(step))
        customer = str(subscription.get("customer") or "")
        identity = await self._identity(SystemName.BILLING, customer)
        if identity is None:
            return {"customer": None, "skipped": f"billing customer {customer!r} is not linked"}
        await self.reader.invalidate(ObjectKind.SUBSCRIPTION, None, parent=customer)
        (read,) = await self.reader.related(ObjectKind.SUBSCRIPTION, [customer], Subscription)
        subscriptions = settled(read).value
        plans = {p.id: p for p in settled(await self.reader.catalog(ObjectKind.PLAN, Plan)).value}
        entitled = entitlements(subscriptions, plans)
        return {
            "customer": identity.id,
            "crm": identity.external_ids.get(SystemName.CRM),
            "plans": sorted({s.plan_id for s in subscriptions if s.plan_id in plans}),
            "features": sorted(e.feature for e in entitled),
        }

    async def crm_plan_changed(self, step: StepContext) -> Output:
        refreshed = step.outputs["refresh_entitlements"]
        if refreshed.get("crm") is None:
            return {"system": "crm", "skipped": "the customer has no CRM account"}
        event = step.run.input["event"]
        subscription = _object(_event(step))
        cancelled = str(event["type"]).endswith(".deleted")
        what = "Subscription cancelled" if cancelled else "Plan changed"
        features = ", ".join(refreshed["features"]) or "none"
        activity = LogAccountActivity(
            account_id=refreshed["crm"],
            subject=f"{what}: {subscription.get('id')}"[:255],
            description=(
                f"{what} in billing. Plans now: {', '.join(refreshed['plans']) or 'none'}. "
                f"Entitled to: {features}."
            ),
            external_ref=step.idempotency_key,
        )
        result = await self.writes.apply(activity, step.idempotency_key)
        return {"system": "crm", "reference": result.id}

    # -- SLA breaches -----------------------------------------------------------------------

    async def provisional_credit(self, step: StepContext, params: CreditParams) -> Output:
        detail = _event(step).get("detail") or {}
        organization, case = str(detail.get("organization_id") or ""), str(detail.get("id"))
        identity = await self._identity(SystemName.SUPPORT, organization)
        if identity is None:
            return {"opened": False, "reason": f"organization {organization!r} is not linked"}
        currency = await self._currency(identity)
        if currency is None or currency not in params.credit:
            return {"opened": False, "reason": f"no provisional credit in {currency}"}
        amount = Money.of(params.credit[currency], currency)
        credit_id = "cr_" + hashlib.sha256(step.idempotency_key.encode()).hexdigest()[:24]
        try:
            credit, _ = await self.credits.request(
                ROUTER, identity, case, amount, params.reason, credit_id=credit_id
            )
        except BadUserInput as refused:  # the policy said no: nothing to open
            return {"opened": False, "reason": refused.message, "code": refused.code}
        return {"opened": True, "credit": credit.id, "status": credit.status.value}

    # -- what the actions read ----------------------------------------------------------------

    async def _identity(self, system: SystemName, external_id: str) -> CustomerIdentity | None:
        if not external_id:
            return None
        return await self.crosswalk.by_external_id(system, external_id, entities=None)

    async def _account(self, crm: str | None) -> Account | None:
        if crm is None:
            return None
        (read,) = await self.reader.records(ObjectKind.ACCOUNT, [crm], Account)
        return settled(read).value

    async def _currency(self, identity: CustomerIdentity) -> str | None:
        billing = identity.external_ids.get(SystemName.BILLING)
        return None if billing is None else await self._billed_in(billing)

    async def _billed_in(self, billing: str) -> str | None:
        """The currency billing bills the customer in. Asked of billing itself: the
        gateway owns the customer record, and the reader answers only owners' records."""
        connector = self.writes.registry.get(SystemName.BILLING)
        (record,) = await connector.fetch_many(ObjectKind.CUSTOMER, [billing])
        return record.currency if isinstance(record, CustomerRecord) else None


def _by(table: Mapping[str, str], key: str | None) -> str | None:
    return table.get(key or "", table.get(DEFAULT))


def _object(event: Mapping[str, Any]) -> Mapping[str, Any]:
    found = (event.get("data") or {}).get("object")
    return found if isinstance(found, Mapping) else {}


def _occurred_on(step: StepContext) -> date:
    when = str(step.run.input["event"].get("time") or "")
    try:
        return datetime.fromisoformat(when).astimezone(UTC).date()
    except ValueError:
        return datetime.now(UTC).date()


def _plain(method: Callable[[Actions, StepContext], Awaitable[Output]]) -> Action:
    return Action(None, lambda actions, _: lambda step: method(actions, step))


def _with(
    params: type[P], method: Callable[[Actions, StepContext, P], Awaitable[Output]]
) -> Action:
    return Action(params, lambda actions, given: lambda step: method(actions, step, given))


# Every action a route may list, by name.
ACTIONS: dict[str, Action] = {
    "enrich_usage": _with(UsageParams, Actions.enrich_usage),
    "erp_post_usage": _plain(Actions.erp_post_usage),
    "crm_usage_health": _plain(Actions.crm_usage_health),
    "support_entitlement_changed": _plain(Actions.support_entitlement_changed),
    "refresh_entitlements": _plain(Actions.refresh_entitlements),
    "crm_plan_changed": _plain(Actions.crm_plan_changed),
    "provisional_credit": _with(CreditParams, Actions.provisional_credit),
}
