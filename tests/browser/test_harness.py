"""The harness itself: a page's request to another host is refused and recorded, so an empty
record in the other tests means the page asked no other host."""

from __future__ import annotations

from tests.browser.conftest import Demo, Tabs


def test_a_request_to_another_host_is_refused_and_recorded(demo: Demo, tabs: Tabs) -> None:
    tab = tabs()
    page = tab.new_page()
    page.goto(f"{demo.url}/healthz")
    refused = page.evaluate(
        "fetch('https://cdn.example.com/graphiql.js').then(() => false, () => true)"
    )
    assert refused
    assert tab.off_host == ["GET https://cdn.example.com/graphiql.js"]
