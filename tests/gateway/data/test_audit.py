"""What the audit log keeps of a request: secrets filtered out of its variables, and the
operation named from a bounded read of a query that never ran."""

from __future__ import annotations

from gateway.data.audit import Operation, describe, filtered

KEY = "og_0123456789abcdef_" + "x" * 43


def test_secrets_are_filtered_by_name_and_by_look() -> None:
    variables = {
        "id": "cust_0001",
        "accessToken": "t",
        "clientSecret": "s",
        "newPassword": "p",
        "Authorization": "a",
        "apiKey": "k",
        "nested": [{"note": "Bearer abc"}, {"jwt": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"}],
        "reference": f"see {KEY}",
        "amount": 12,
        "blog_post": "og_ is a prefix",
    }
    assert filtered(variables) == {
        "id": "cust_0001",
        "accessToken": "[filtered]",
        "clientSecret": "[filtered]",
        "newPassword": "[filtered]",
        "Authorization": "[filtered]",
        "apiKey": "[filtered]",
        "nested": [{"note": "[filtered]"}, {"jwt": "[filtered]"}],
        "reference": "[filtered]",
        "amount": 12,
        "blog_post": "og_ is a prefix",
    }


def test_a_refused_query_is_named_by_its_operation() -> None:
    document = "query A { systems { name } } mutation B { approve }"
    assert describe(document, "B", {"x": 1}) == Operation("B", "mutation", {"x": 1})
    assert describe("{ systems { name } }", None) == Operation(None, "query")
    assert describe("query Named { x }", None, ["not", "a", "map"]) == Operation("Named", "query")
    assert describe("{ " + "a " * 5_000 + "}", "Big") == Operation("Big", None)
    assert describe(None, 7) == Operation(None, None)
