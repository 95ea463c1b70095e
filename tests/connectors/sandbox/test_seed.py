from __future__ import annotations

from starlette.testclient import TestClient

from connectors.models import Plan, SystemName
from connectors.sandbox import fleet
from connectors.sandbox.seed import generate


def test_each_plans_sla_is_the_one_the_support_desk_measures() -> None:
    """The seed takes its plans' SLA hours from the desk's policies, never the reverse."""
    plans = [r for r in generate(customers=1).slice(SystemName.BILLING) if isinstance(r, Plan)]
    app = fleet.APPS[SystemName.SUPPORT](fleet.configs()[SystemName.SUPPORT])
    with TestClient(app) as client:
        answer = client.get("/api/v2/slas/policies", auth=("me@x.example/token", "sandbox-secret"))
    policies = {
        p["filter"]["all"][0]["value"]: p["policy_metrics"][0]["target"]
        for p in answer.json()["sla_policies"]
    }
    assert {f"support_{p.support_tier}": p.sla_hours * 60 for p in plans} == policies
    assert policies == {"support_premium": 240, "support_priority": 1440, "support_standard": 2880}
