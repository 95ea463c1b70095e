"""``selects``: whether a query asks for a field anywhere below the one resolving, through
nested selections, named fragments and inline fragments alike."""

from __future__ import annotations

import strawberry

from resolvers.selection import selects

ASKED: list[bool] = []


@strawberry.type
class Posting:
    id: str = "p1"


@strawberry.type
class Invoice:
    number: str = "INV-1"
    postings: list[Posting] = strawberry.field(default_factory=lambda: [Posting()])


@strawberry.type
class Query:
    @strawberry.field
    def invoices(self, info: strawberry.Info) -> list[Invoice]:
        ASKED.append(selects(info, "postings", "postingStatus"))  # type: ignore[arg-type]
        return [Invoice(), Invoice()]


SCHEMA = strawberry.Schema(Query)


def asked(query: str) -> list[bool]:
    ASKED.clear()
    result = SCHEMA.execute_sync(query)
    assert result.errors is None, result.errors
    return list(ASKED)


def test_a_field_selected_directly_or_deep_down_is_seen() -> None:
    assert asked("{ invoices { number postings { id } } }") == [True]
    assert asked("{ invoices { number } }") == [False]


def test_fragments_named_and_inline_are_followed() -> None:
    named = """
      query { invoices { ...Lines } }
      fragment Lines on Invoice { ...Deeper }
      fragment Deeper on Invoice { postings { id } }
    """
    assert asked(named) == [True]
    assert asked("{ invoices { ... on Invoice { postings { id } } } }") == [True]
    unrelated = "query { invoices { ...Head } } fragment Head on Invoice { number }"
    assert asked(unrelated) == [False]
