"""The one cursor loop: pages are fetched in order, each with the cursor the page before
named, until a page names none; ids go out distinct, in batches."""

from __future__ import annotations

from connectors import paging
from connectors.models import Page

PAGES = {None: Page(items=[1, 2], cursor="a"), "a": Page(items=[3], cursor="b"),
         "b": Page(items=[], cursor="c"), "c": Page(items=[4, 5], cursor=None)}  # fmt: skip


class Upstream:
    def __init__(self) -> None:
        self.asked: list[str | None] = []

    async def page(self, cursor: str | None) -> Page[int]:
        self.asked.append(cursor)
        return PAGES[cursor]


async def test_collect_follows_each_cursor_until_a_page_names_none() -> None:
    upstream = Upstream()
    assert await paging.collect(upstream.page) == [1, 2, 3, 4, 5]
    assert upstream.asked == [None, "a", "b", "c"]


async def test_leaving_the_walk_asks_for_no_further_page() -> None:
    upstream = Upstream()
    async for page in paging.Pages(upstream.page):
        if 3 in page.items:
            break
    assert upstream.asked == [None, "a"]


async def test_a_single_page_is_one_request() -> None:
    asked: list[str | None] = []

    async def only(cursor: str | None) -> Page[str]:
        asked.append(cursor)
        return Page(items=["x"], cursor=None)

    assert [p.items async for p in paging.Pages(only)] == [["x"]]
    assert asked == [None]


def test_batches_are_distinct_ids_in_first_seen_order() -> None:
    assert paging.batches(["a", "b", "a", "c", "d", "b", "e"], 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert paging.batches([], 10) == []
