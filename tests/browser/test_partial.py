"""A customer 360 while billing is down, in a real browser: billing's panels say they are
partial and why, the other systems' panels still show their data with their source.

Last in the package (it leaves billing's breaker open for a while): the demo is shared."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from connectors.models import SystemName
from gateway.auth.scopes import Role
from gateway.demo import SANDBOX_OFFSET, sandbox_ports
from tests.browser.conftest import Demo, Tabs, shot

BILLING_PANELS = ("subscriptions", "entitlements", "invoices")
# What a system that answers 503 every time becomes, as the panels show it: the call's
# failure, or the breaker it opened, failing fast.
DOWN = ("UPSTREAM_UNAVAILABLE", "CIRCUIT_OPEN")


@pytest.fixture
def billing_down(demo: Demo) -> Iterator[None]:
    port = urlsplit(demo.url).port
    assert port is not None
    billing = sandbox_ports(port + SANDBOX_OFFSET)[SystemName.BILLING]
    faults = f"http://127.0.0.1:{billing}/_sandbox/faults"
    httpx.put(faults, json={"error_rate": 1.0, "error_status": 503}).raise_for_status()
    try:
        yield
    finally:
        httpx.put(faults, json={}).raise_for_status()


def test_billing_down_leaves_its_panels_partial_and_the_rest_shown(
    demo: Demo, tabs: Tabs, billing_down: None
) -> None:
    seeded = demo.manifest()
    # One no other browser test opens, so nothing of it is cached yet.
    customer = next(c for c in seeded["customers"] if c["id"] != demo.breached_customer())
    accounts = (r for r in seeded["records"]["crm"] if r["@type"] == "Account")
    account = next(r for r in accounts if r["ref"] == customer["id"])
    tab = tabs()
    tab.sign_in(demo, Role.VIEWER)
    page = tab.new_page()
    page.goto(f"{demo.url}/dashboards/customers?id={customer['id']}")

    expect(page.locator(".customer-heading h2")).to_have_text(customer["name"])
    for name in BILLING_PANELS:
        panel = page.locator(f'[data-panel="{name}"]')
        expect(panel.locator(".source")).to_have_text("partial")
        expect(panel.locator(".error")).to_have_count(1)
        assert panel.locator(".error code").inner_text() in DOWN, name
        expect(panel.locator(".error")).to_contain_text("billing")
    account_panel = page.locator('[data-panel="account"]')
    expect(account_panel.locator(".source")).to_contain_text("CRM (Salesforce)")
    expect(account_panel.locator(".facts")).to_contain_text(account["owner"])
    expect(page.locator('[data-panel="cases"] .source')).to_contain_text("Support (Zendesk)")
    expect(page.locator('[data-panel="balance"] .source')).to_contain_text("ERP (NetSuite)")
    expect(page.locator(".loading")).to_have_count(0)
    shot(page, "customers-billing-down")
    assert tab.errors == [] and tab.off_host == []
