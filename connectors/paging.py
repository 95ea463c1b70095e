"""How one read becomes several requests: pages of results behind a cursor, and batches of
ids. Every cursor loop in the connectors is ``Pages``; every id batch is ``batches``.

A system's "next page" hook is a function from a cursor (None for the first page) to a
``Page`` whose ``cursor`` asks for the page after it, or is None at the end. The cursor is
whatever the system pages by: an offset (NetSuite's ``offset`` while ``hasMore``), a URL
(Salesforce's ``nextRecordsUrl``, Zendesk's ``next_page``), an opaque token (Zendesk's
``after_cursor``, Stripe search's ``next_page``) or the last id seen (Stripe's
``starting_after``). The walk owns nothing else, so the caller decides what each page
costs: the resilience layer gives every page its own deadline and retries
(``Resilient.list_all``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Generic, TypeVar

from connectors.models import Page

T = TypeVar("T")
H = TypeVar("H")

# cursor (None: the first page) -> that page, naming the next
NextPage = Callable[[str | None], Awaitable[Page[T]]]


class Pages(Generic[T]):
    """The pages ``fetch`` serves, first to last, each fetched when the walk reaches it::

    async for page in Pages(fetch):
        ...  # stop early by leaving the loop; no further page is asked for
    """

    def __init__(self, fetch: NextPage[T]) -> None:
        self._fetch = fetch
        self._cursor: str | None = None
        self._done = False

    def __aiter__(self) -> Pages[T]:
        return self

    async def __anext__(self) -> Page[T]:
        if self._done:
            raise StopAsyncIteration
        page = await self._fetch(self._cursor)
        self._cursor = page.cursor
        self._done = page.cursor is None
        return page


async def collect(fetch: NextPage[T]) -> list[T]:
    """Every item on every page, in order."""
    return [item async for page in Pages(fetch) for item in page.items]


def batches(ids: Iterable[H], size: int) -> list[Sequence[H]]:
    """The distinct ``ids``, in first-seen order, in batches of at most ``size``."""
    distinct = list(dict.fromkeys(ids))
    return [distinct[start : start + size] for start in range(0, len(distinct), size)]
