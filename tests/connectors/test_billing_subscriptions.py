"""Changing a subscription's plan and cancelling it, through the billing connector and the
Stripe sandbox over real HTTP (one fresh sandbox for the module: each test takes its own
seeded subscription)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest

from connectors.billing import BillingConnector
from connectors.commands import (
    CancelSubscription,
    ChangeSubscriptionPlan,
    InvalidCommand,
    Proration,
    WriteCommand,
    WriteResult,
)
from connectors.errors import UpstreamNotFound, UpstreamRejected
from connectors.models import ObjectKind, Subscription, SubscriptionStatus, SystemName
from connectors.sandbox import fleet
from tests.connectors import billing_helpers
from tests.connectors.billing_helpers import SECRET, SEEDED, _get

K = ObjectKind
SUBS = [r for r in SEEDED if isinstance(r, Subscription)]  # one price each, all active
CANCELED = "A canceled subscription can only update its cancellation_details and metadata."

receiver, fresh, billing = billing_helpers.receiver, billing_helpers.fresh, billing_helpers.billing


def _requests(admin: httpx.Client) -> Counter[str]:
    return Counter(fleet.stats(admin)["requests"])


def _events(admin: httpx.Client, type_: str, id_: str) -> list[dict[str, Any]]:
    listed = _get(admin, "/v1/events", type=type_, limit=100).json()["data"]
    return [e for e in listed if e["data"]["object"]["id"] == id_]


def _written(record: Subscription, created: bool = True) -> WriteResult:
    return WriteResult(
        system=SystemName.BILLING, kind=K.SUBSCRIPTION, id=record.id, created=created,
        record=record,
    )  # fmt: skip


async def test_a_plan_change_moves_the_one_item_to_the_plans_price(
    billing: BillingConnector, fresh: tuple[str, httpx.Client]
) -> None:
    sub = SUBS[0]  # Starter in USD, 4 seats
    command = ChangeSubscriptionPlan(subscription_id=sub.id, plan_id="price_growth_usd")
    result = await billing.write(command, "plan-1")
    assert result == _written(replace(sub, plan_id="price_growth_usd"))
    [item] = _get(fresh[1], f"/v1/subscriptions/{sub.id}").json()["items"]["data"]
    assert (item["id"], item["price"]["id"], item["quantity"]) == (
        "si_" + sub.id.removeprefix("sub_"), "price_growth_usd", 4)  # fmt: skip
    assert await billing.fetch_many(K.SUBSCRIPTION, [sub.id]) == [result.record]


async def test_the_same_key_changes_the_plan_once(
    billing: BillingConnector, fresh: tuple[str, httpx.Client]
) -> None:
    sub = SUBS[4]  # Growth in USD
    command = ChangeSubscriptionPlan(
        subscription_id=sub.id, plan_id="price_enterprise_usd", proration=Proration.NONE
    )
    before = _requests(fresh[1])
    first = await billing.write(command, "plan-2")
    again = await billing.write(command, "plan-2")
    assert (first.created, again.created, again.record) == (True, False, first.record)
    assert _requests(fresh[1]) - before == {
        f"GET /v1/subscriptions/{sub.id}": 2, f"POST /v1/subscriptions/{sub.id}": 2}  # fmt: skip
    updates = _events(fresh[1], "customer.subscription.updated", sub.id)
    assert [e["data"]["previous_attributes"]["items"]["data"][0]["price"]["id"]
            for e in updates] == ["price_growth_usd"]  # fmt: skip


async def test_cancelling_now_ends_the_subscription_once(
    billing: BillingConnector, fresh: tuple[str, httpx.Client]
) -> None:
    sub = SUBS[1]
    command = CancelSubscription(subscription_id=sub.id, at_period_end=False)
    first = await billing.write(command, "cancel-1")
    again = await billing.write(command, "cancel-1")  # Stripe's 404 for it, answered
    canceled = replace(sub, status=SubscriptionStatus.CANCELED)
    assert (first, again) == (_written(canceled), _written(canceled, created=False))
    raw = _get(fresh[1], f"/v1/subscriptions/{sub.id}").json()
    assert raw["status"] == "canceled"
    assert raw["canceled_at"] == raw["ended_at"] is not None
    assert len(_events(fresh[1], "customer.subscription.deleted", sub.id)) == 1


async def test_cancelling_at_period_end_keeps_it_active_until_then(
    billing: BillingConnector, fresh: tuple[str, httpx.Client]
) -> None:
    sub = SUBS[2]
    command = CancelSubscription(subscription_id=sub.id, at_period_end=True)
    first = await billing.write(command, "cancel-2")
    again = await billing.write(command, "cancel-2")
    assert (first, again) == (_written(sub), _written(sub, created=False))
    raw = _get(fresh[1], f"/v1/subscriptions/{sub.id}").json()
    assert (raw["status"], raw["cancel_at_period_end"], raw["cancel_at"], raw["ended_at"]) == (
        "active", True, int(sub.current_period_end.timestamp()), None)  # fmt: skip
    assert len(_events(fresh[1], "customer.subscription.updated", sub.id)) == 1


@pytest.mark.parametrize(
    "command",
    [
        ChangeSubscriptionPlan(subscription_id="sub_missing", plan_id="price_growth_usd"),
        CancelSubscription(subscription_id="sub_missing", at_period_end=False),
        CancelSubscription(subscription_id="sub_missing", at_period_end=True),
    ],
    ids=["plan", "now", "at-period-end"],
)
async def test_an_unknown_subscription_is_not_found(
    billing: BillingConnector, command: WriteCommand
) -> None:
    with pytest.raises(UpstreamNotFound):
        await billing.write(command, "missing-1")


async def test_a_canceled_subscription_is_refused_in_stripes_words(
    billing: BillingConnector,
) -> None:
    sub = SUBS[3]
    await billing.write(CancelSubscription(subscription_id=sub.id, at_period_end=False), "end-3")
    for command in (
        ChangeSubscriptionPlan(subscription_id=sub.id, plan_id="price_growth_kwd"),
        CancelSubscription(subscription_id=sub.id, at_period_end=True),
    ):
        with pytest.raises(UpstreamRejected) as refused:
            await billing.write(command, "after-end-3")
        # Stripe's message may echo request values: it stays in the internal message.
        assert refused.value.message == "billing rejected the request (400)"
        assert CANCELED in (refused.value.internal or "")


async def test_a_subscription_of_two_prices_is_refused_after_one_read(
    billing: BillingConnector, fresh: tuple[str, httpx.Client]
) -> None:
    sub = SUBS[5]  # Growth in EUR
    added = fresh[1].post(
        f"/v1/subscriptions/{sub.id}",
        data={"items[0][price]": "price_starter_eur", "proration_behavior": "none"},
        headers={"Authorization": f"Bearer {SECRET}"},
    )
    assert len(added.json()["items"]["data"]) == 2
    before = _requests(fresh[1])
    command = ChangeSubscriptionPlan(subscription_id=sub.id, plan_id="price_enterprise_eur")
    with pytest.raises(UpstreamRejected, match="one price per subscription"):
        await billing.write(command, "plan-5")
    assert _requests(fresh[1]) - before == {f"GET /v1/subscriptions/{sub.id}": 1}


@pytest.mark.parametrize(
    "build",
    [
        lambda: ChangeSubscriptionPlan(subscription_id="", plan_id="price_growth_usd"),
        lambda: ChangeSubscriptionPlan(subscription_id=SUBS[6].id, plan_id=""),
        lambda: ChangeSubscriptionPlan(subscription_id=SUBS[6].id, plan_id="p", proration="none"),
        lambda: CancelSubscription(subscription_id="", at_period_end=False),
        lambda: CancelSubscription(subscription_id=SUBS[6].id, at_period_end="yes"),
    ],
    ids=["no-subscription", "no-plan", "proration-string", "cancel-no-id", "at-period-end-text"],
)
async def test_a_malformed_command_is_refused_before_any_request(
    billing: BillingConnector,
    fresh: tuple[str, httpx.Client],
    build: Callable[[], WriteCommand],
) -> None:
    before = fleet.stats(fresh[1])["total"]
    with pytest.raises(InvalidCommand):
        await billing.write(build(), "malformed-1")
    assert (fleet.stats(fresh[1])["total"] - before, billing.calls) == (0, 0)
