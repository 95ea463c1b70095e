"""GraphiQL in the demo (development profile) is served from the gateway's own assets: it
loads and runs a query with every other host unreachable. At ``/graphiql`` a browser opens
it without a token and the tab's dashboards sign-in fills in the Authorization header;
``/graphql`` answers a browser that sends a token with the same page."""

from __future__ import annotations

from playwright.sync_api import Page, Response, expect

from gateway.auth.scopes import Role
from tests.browser.conftest import Demo, Tab, Tabs, shot

QUERY = "{ systems { name healthy } }"
SYSTEMS = [{"name": n, "healthy": True} for n in ("BILLING", "ERP", "CRM", "SUPPORT")]


def _is_the_query(response: Response) -> bool:
    request = response.request
    return request.method == "POST" and "systems" in (request.post_data or "")


def _runs_the_query(tab: Tab, page: Page) -> None:
    expect(page.locator(".graphiql-container")).to_be_visible()
    page.locator(".graphiql-query-editor .CodeMirror").click()
    page.keyboard.press("Control+A")
    # Typed key by key, the editor would close each brace itself.
    page.keyboard.insert_text(QUERY)
    with page.expect_response(_is_the_query) as answer:
        page.locator(".graphiql-execute-button").click()

    assert answer.value.json() == {"data": {"systems": SYSTEMS}}
    expect(page.locator(".graphiql-response")).to_contain_text('"SUPPORT"')
    assert tab.off_host == []
    assert tab.errors == []


def test_graphiql_runs_a_query_with_no_internet_as_the_tab_signed_in(
    demo: Demo, tabs: Tabs
) -> None:
    tab = tabs()
    tab.sign_in(demo, Role.VIEWER)
    page = tab.new_page()
    page.goto(f"{demo.url}/graphiql")
    _runs_the_query(tab, page)
    shot(page, "graphiql")


def test_graphql_answers_a_browser_with_a_token_with_the_same_graphiql(
    demo: Demo, tabs: Tabs
) -> None:
    tab = tabs()
    tab.context.set_extra_http_headers({"authorization": f"Bearer {demo.token(Role.VIEWER)}"})
    page = tab.new_page()
    page.goto(f"{demo.url}/graphql")
    _runs_the_query(tab, page)
