"""A newcomer's path through the demo, in a real browser (issue #13's "done when"): open
the URL the demo prints, sign in as a support lead, find a customer by their Stripe id, see
their 360, request a credit for their breached case; in a second browser context sign in
as finance, approve it; the first page shows it posted without being reloaded. The demo's
business metrics (``/metrics``) count what the newcomer did."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import Page, expect

from gateway.auth.scopes import Role
from gateway.rules.credit_policy import CreditPolicy
from gateway.settings import load_settings
from tests.browser.conftest import Demo, Tabs, shot
from tests.gateway.telemetry.prometheus import Samples, scrape, value


def _customer(demo: Demo) -> dict[str, Any]:
    wanted = demo.breached_customer()
    customer: dict[str, Any] = next(c for c in demo.manifest()["customers"] if c["id"] == wanted)
    return customer


def _sign_in(page: Page, demo: Demo, role: Role, path: str = "/dashboards") -> None:
    page.goto(demo.url + path)
    expect(page.locator('[data-panel="sign-in"] .warning')).to_contain_text("Development sign-in")
    page.locator(f'button[data-role="{role}"]').click()
    expect(page.locator("#who .subject")).to_have_text(f"demo-{role}")


def test_a_credit_from_a_breached_case_to_its_posting_live(demo: Demo, tabs: Tabs) -> None:
    customer = _customer(demo)
    stripe_id = customer["external_ids"]["billing"]
    invoices = sorted(
        r["number"]
        for r in demo.manifest()["records"]["billing"]
        if r["@type"] == "Invoice" and r["customer_id"] == stripe_id
    )
    # At the auto-approval threshold (approved alone only strictly below it): finance decides.
    rule = CreditPolicy.load(load_settings().credit_policy_file).rule_for(
        customer["currency"], customer["legal_entity"]
    )
    assert rule is not None
    amount = rule.auto_approve_below.amount_str()
    before = _metrics(demo)

    support = tabs()
    lead = support.new_page()
    _sign_in(lead, demo, Role.SUPPORT_LEAD)
    assert lead.url == f"{demo.url}/dashboards/customers"
    lead.locator('input[name="q"]').fill(stripe_id)
    lead.locator("form.search button").click()
    lead.wait_for_url(f"**/dashboards/customers?id={customer['id']}")
    expect(lead.locator(".customer-heading h2")).to_have_text(customer["name"])
    expect(lead.locator(".customer-heading .ids")).to_contain_text(stripe_id)
    numbers = lead.locator('[data-panel="invoices"] tbody td[data-label="Number"]')
    expect(numbers).to_have_count(len(invoices))
    assert sorted(numbers.all_inner_texts()) == invoices
    expect(lead.locator('[data-panel="invoices"] .source')).to_contain_text("Billing (Stripe)")
    # A support lead may not read balances: that panel says so, the rest still shows.
    expect(lead.locator('[data-panel="balance"] .source')).to_have_text("not for your role")
    breached = lead.locator(
        '[data-panel="cases"] tr', has=lead.locator(".badge", has_text="breached")
    )
    expect(breached).to_have_count(1)
    shot(lead, "newcomer-1-customer-360")

    breached.locator("a.action").click()
    lead.wait_for_url("**/dashboards/support?customer=*")
    form = lead.locator('form[data-form="request-credit"]')
    form.locator('input[name="amount"]').fill(amount)
    form.locator('input[name="reason"]').fill("The outage breached the SLA")
    form.locator('button[type="submit"]').click()
    requested = lead.locator("[data-requested]")
    expect(requested.locator("[data-status]")).to_have_attribute("data-status", "REQUESTED")
    credit_id = requested.get_attribute("data-requested")
    lead.evaluate("window.notReloaded = true")
    shot(lead, "newcomer-2-credit-requested")

    approvals = tabs()
    finance = approvals.new_page()
    _sign_in(finance, demo, Role.FINANCE_APPROVER, "/dashboards/approvals")
    row = finance.locator("tr", has=finance.locator(f'[data-approve="{credit_id}"]'))
    expect(row.locator('td[data-label="Customer"]')).to_have_text(customer["name"])
    expect(row.locator('td[data-label="Requested"]')).to_contain_text("demo-support_lead")
    expect(row.locator(".policy code")).to_have_text(rule.name)
    shot(finance, "newcomer-3-approvals-queue")
    row.locator(f'[data-approve="{credit_id}"]').click()
    expect(finance.locator(f'[data-approve="{credit_id}"]')).to_have_count(0)
    expect(finance.locator('[data-panel="decided"] [data-status]')).to_have_attribute(
        "data-status", "POSTED"
    )
    shot(finance, "newcomer-4-approved")

    # The support lead's page heard it: posted, by finance, with the ERP's memo.
    expect(requested.locator("[data-status]")).to_have_attribute("data-status", "POSTED")
    posted = lead.locator('[data-panel="credits"] tr', has=lead.locator('[data-status="POSTED"]'))
    expect(posted.locator('td[data-label="Decided by"]')).to_have_text("demo-finance_approver")
    expect(posted.locator('td[data-label="ERP memo"]')).not_to_have_text("—")
    assert lead.evaluate("window.notReloaded") is True
    shot(lead, "newcomer-5-posted-live")
    assert support.errors == [] and support.off_host == []
    assert approvals.errors == [] and approvals.off_host == []

    after = _metrics(demo)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("opsgraph_credit_approval_delay_seconds_count") == 1
    finished = "opsgraph_workflow_runs_finished_total"
    assert delta(finished, workflow="service_credit", status="succeeded") == 1
    writes = "opsgraph_owner_writes_total"
    assert delta(writes, system="erp", kind="posting", outcome="done") == 1
    requests = "opsgraph_graphql_requests_total"
    assert delta(requests, operation="ApproveCredit", type="mutation") == 1
    assert delta(requests, operation="RequestCredit", type="mutation") == 1


def _metrics(demo: Demo) -> Samples:
    with httpx.Client(base_url=demo.url, timeout=10) as client:
        return scrape(client)  # type: ignore[arg-type]  # httpx's get, as TestClient's
