"""Every dashboard page, signed in through the demo's development sign-in, at 1280x800 and
on a phone: it draws its panels, says where their data came from, settles with nothing
loading and no error, asks no other host for anything, fits the screen's width and leaves
a screenshot. The pages about one customer show the one with the demo's breached case.

The pages' DOM conventions: a panel is ``section.panel[data-panel=NAME]``, its source and
freshness ``.source``, a loading state ``.loading``, an error ``.error``; the sign-in has one
``button[data-role=ROLE]`` per role."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from dashboards.web import PAGES
from gateway.auth.scopes import Role
from tests.browser.conftest import SESSION_KEY, Demo, Tabs, shot

# The sign-in is a panel too, until it reloads the page signed in.
PANELS = 'section.panel[data-panel]:not([data-panel="sign-in"])'
# Who works on each page.
ROLES = {
    "customers": Role.VIEWER,
    "support": Role.SUPPORT_LEAD,
    "approvals": Role.FINANCE_APPROVER,
    "reconciliation": Role.FINANCE_APPROVER,
    "operations": Role.INTEGRATION_ADMIN,
}


def _path(demo: Demo, name: str) -> str:
    customer = demo.breached_customer()
    return {
        "customers": f"customers?id={customer}",
        "support": f"support?customer={customer}",
    }.get(name, name)


def _signed_in(page: Page, demo: Demo, name: str) -> None:
    page.goto(f"{demo.url}/dashboards/{_path(demo, name)}")
    page.locator(f'button[data-role="{ROLES[name]}"]').click()
    expect(page.locator(PANELS).first).to_be_visible()


def test_every_page_has_someone_to_sign_in_as() -> None:
    assert sorted(ROLES) == sorted(PAGES)


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
@pytest.mark.parametrize("name", PAGES)
def test_a_page_settles_with_its_panels_sourced_and_nothing_off_host(
    demo: Demo, tabs: Tabs, name: str, phone: bool
) -> None:
    tab = tabs(phone=phone)
    page = tab.new_page()
    _signed_in(page, demo, name)

    expect(page.locator(".loading")).to_have_count(0)
    shot(page, f"{name}-{'phone' if phone else 'desktop'}")
    expect(page.locator(f"{PANELS} .source:not(:empty)").first).to_be_visible()
    expect(page.locator(".error")).to_have_count(0)
    assert tab.off_host == []
    assert tab.errors == []
    # Usable means no sideways scrolling: a wide table scrolls inside its panel.
    wide, screen = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert wide <= screen, f"{name} is {wide}px wide on a {screen}px screen"


def test_the_development_sign_in_keeps_the_session_for_this_tab(demo: Demo, tabs: Tabs) -> None:
    page = tabs().new_page()
    _signed_in(page, demo, "approvals")
    stored = json.loads(page.evaluate(f"sessionStorage.getItem({json.dumps(SESSION_KEY)})"))
    assert (stored["subject"], stored["roles"]) == ("demo-finance_approver", ["finance_approver"])
    assert stored["token"]
