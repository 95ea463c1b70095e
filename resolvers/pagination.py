"""Relay connections, one shape for every list that pages: ``edges { cursor node }``,
``pageInfo { hasNextPage endCursor }`` and ``totalCount``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import strawberry

from gateway.errors import BadUserInput
from gateway.logs import quoted

T = TypeVar("T")
N = TypeVar("N")

MAX_PAGE = 200


def check_first(first: int) -> None:
    if not 0 < first <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    total_count: int

    @classmethod
    def empty(cls) -> Connection[T]:
        """No page: nothing to list, or nothing this principal may see."""
        return cls(
            edges=[], page_info=PageInfo(has_next_page=False, end_cursor=None), total_count=0
        )

    @classmethod
    def of(
        cls,
        items: Sequence[N],
        has_next_page: bool,
        total: int,
        cursor: Callable[[N], str],
        node: Callable[[N], T],
    ) -> Connection[T]:
        """A page a store cut already (``items``, whether more follow, how many in all)."""
        edges = [Edge(cursor=cursor(i), node=node(i)) for i in items]
        return cls(
            edges=edges,
            page_info=PageInfo(
                has_next_page=has_next_page, end_cursor=edges[-1].cursor if edges else None
            ),
            total_count=total,
        )

    @classmethod
    def page(
        cls,
        items: Sequence[N],
        first: int,
        after: str | None,
        cursor: Callable[[N], str],
        node: Callable[[N], T],
    ) -> Connection[T]:
        """The ``first`` of ``items`` (filtered and ordered already) after the one whose
        cursor is ``after``."""
        check_first(first)
        start = 0
        if after is not None:
            cursors = [cursor(i) for i in items]
            if after not in cursors:
                raise BadUserInput(f"unknown cursor {quoted(after)}")
            start = cursors.index(after) + 1
        page = items[start : start + first]
        return cls(
            edges=[Edge(cursor=cursor(i), node=node(i)) for i in page],
            page_info=PageInfo(
                has_next_page=start + first < len(items),
                end_cursor=cursor(page[-1]) if page else None,
            ),
            total_count=len(items),
        )
