from __future__ import annotations

import time
from datetime import datetime

from connectors.models import ObjectKind, SystemName, kind_of
from tests.gateways import Gateway, graphql
from tests.world import Sandboxes

CHECK = """query($id: ID!, $feature: String!) {
  entitlementCheck(customerId: $id, feature: $feature) {
    allowed reason feature supportTier slaHours subscriptionId plan { id name }
    source { system externalId }
  }
}"""


def test_a_feature_in_the_plan_is_allowed_with_its_sla(boxes: Sandboxes, gateway: Gateway) -> None:
    client = gateway()
    customer = next(c for c in boxes.world.customers if c.plan == "enterprise")
    sub = next(
        r for r in boxes.world.slice(SystemName.BILLING)
        if kind_of(r) is ObjectKind.SUBSCRIPTION
        and r.customer_id == customer.external_ids[SystemName.BILLING]  # type: ignore[attr-defined]
    )  # fmt: skip
    body = graphql(client, CHECK, id=customer.id, feature="phone_support")
    assert body["data"]["entitlementCheck"] == {
        "allowed": True,
        "reason": "Enterprise plan includes phone_support",
        "feature": "phone_support",
        "supportTier": "premium",
        "slaHours": 4,
        "subscriptionId": sub.id,
        "plan": {"id": f"price_enterprise_{customer.currency.lower()}", "name": "Enterprise"},
        "source": {"system": "BILLING", "externalId": customer.external_ids[SystemName.BILLING]},
    }


def test_a_feature_outside_the_plan_is_refused_with_the_reason(
    boxes: Sandboxes, gateway: Gateway
) -> None:
    customer = next(c for c in boxes.world.customers if c.plan == "starter")
    body = graphql(gateway(), CHECK, id=customer.id, feature="sso")
    decision = body["data"]["entitlementCheck"]
    assert decision["allowed"] is False
    assert decision["reason"] == "Starter plan does not include sso"
    assert decision["slaHours"] == 48 and decision["supportTier"] == "standard"


def test_unknown_features_and_customers_are_typed_errors(
    boxes: Sandboxes, gateway: Gateway
) -> None:
    client = gateway()
    unknown_feature = graphql(client, CHECK, id=boxes.world.customers[0].id, feature="teleport")
    assert unknown_feature["data"] is None
    (error,) = unknown_feature["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert error["message"].startswith("unknown feature 'teleport'; known features: api_access")
    unknown_customer = graphql(client, CHECK, id="cust_9999", feature="sso")
    assert unknown_customer["errors"][0]["extensions"] == {"code": "NOT_FOUND"}
    assert unknown_customer["errors"][0]["message"] == "no customer with id 'cust_9999'"


FRESHNESS = """query($id: ID!, $feature: String!) {
  entitlementCheck(customerId: $id, feature: $feature) {
    allowed checkedAt
    source { fetchedAt cached }
    plan { source { fetchedAt cached } }
  }
}"""


def test_a_check_is_as_fresh_as_what_it_rests_on_not_the_time_it_is_asked(
    boxes: Sandboxes, gateway: Gateway
) -> None:
    """``checkedAt`` is when the subscriptions and plans it used were read from billing
    (the older of them), so asking again while they are cached answers the same."""
    client = gateway()
    customer = next(c for c in boxes.world.customers if c.plan == "enterprise")
    first = graphql(client, FRESHNESS, id=customer.id, feature="sso")["data"]["entitlementCheck"]
    read = [first["source"]["fetchedAt"], first["plan"]["source"]["fetchedAt"]]
    assert first["checkedAt"] == min(read, key=datetime.fromisoformat)
    time.sleep(0.05)
    again = graphql(client, FRESHNESS, id=customer.id, feature="sso")["data"]["entitlementCheck"]
    assert again["source"]["cached"] is True and again["plan"]["source"]["cached"] is True
    assert again["checkedAt"] == first["checkedAt"]
