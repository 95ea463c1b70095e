"""SuiteQL in the ERP sandbox: the subset it parses, what it answers (NetSuite's collection
shape, amounts as Oracle number strings), and how it refuses a statement outside the subset."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connectors.errors import UpstreamRejected
from connectors.sandbox import erp as sandbox
from connectors.sandbox.erp.query import Column, Condition, Query, QueryError, parse
from tests.connectors.conftest import running_sandbox
from tests.connectors.erp_helpers import (
    AUTH,
    QUERY_HEADERS,
    RECORDS,
    SUITEQL,
    _connect,
    _suiteql,
)


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[tuple[str, httpx.Client]]:
    with running_sandbox(sandbox.create_app, RECORDS) as running:
        yield running


def _error_code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["o:errorDetails"][0]["o:errorCode"]


# -- answers --------------------------------------------------------------------------------


def test_suiteql_answers_with_netsuites_collection_shape(sandbox_url: Any) -> None:
    url, admin = sandbox_url
    response = _suiteql(
        admin,
        "SELECT id, companyname, BUILTIN.DF(currency) AS currencyname, balance FROM customer "
        "WHERE id IN ('1004', '1003') ORDER BY id",
        limit=1,
    )
    assert (
        response.headers["content-type"] == "application/vnd.oracle.resource+json; type=collection"
    )
    page = f"{url}{SUITEQL}?limit=1&offset="
    assert response.json() == {
        "links": [
            {"rel": "first", "href": page + "0"},
            {"rel": "next", "href": page + "1"},
            {"rel": "last", "href": page + "1"},
            {"rel": "self", "href": page + "0"},
        ],
        "count": 1,
        "hasMore": True,
        "items": [
            {
                "links": [],
                "id": "1003",
                "companyname": "Initech Labs",
                "currencyname": "JPY",
                "balance": "61600",
            }
        ],  # fmt: skip
        "offset": 0,
        "totalResults": 2,
    }


def test_suiteql_prints_amounts_as_oracle_number_strings(sandbox_url: Any) -> None:
    _, admin = sandbox_url
    rows = _suiteql(
        admin,
        "SELECT id, subtotal, taxtotal, foreigntotal FROM transaction WHERE id IN ('5030', '5007')",
    ).json()["items"]
    assert rows == [
        {
            "links": [],
            "id": "5007",
            "subtotal": "405",
            "taxtotal": "85.75",
            "foreigntotal": "490.75",
        },
        {"links": [], "id": "5030", "subtotal": "16", "taxtotal": "0", "foreigntotal": "16"},
    ]


# -- SuiteQL subset -------------------------------------------------------------------------


def test_suiteql_parser_accepts_the_subset() -> None:
    query = parse(
        "select ID, builtin.df(Subsidiary) as sub, BUILTIN.DF(currency) FROM Transaction "
        "WHERE entity IN ('1001', 'it''s') AND id > 5000 AND status = 'open' ORDER BY id DESC"
    )
    assert query == Query(
        table="transaction",
        columns=(
            Column("id", "id"),
            Column("subsidiary", "sub", display=True),
            Column("currency", "expr2", display=True),
        ),
        where=(
            Condition("entity", "in", ("1001", "it's")),
            Condition("id", ">", ("5000",)),
            Condition("status", "=", ("open",)),
        ),
        order_by="id",
        descending=True,
    )
    assert parse("SELECT * FROM change") == Query(table="change", columns=None)


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ("DROP TABLE customer", "Expected SELECT near 'DROP'."),
        ("SELECT id FROM employee", "Search error occurred: Record 'employee' was not found."),
        ("SELECT password FROM customer", "Field 'password' for record 'customer' was not found."),
        (
            "SELECT id FROM customer WHERE id LIKE '1%'",
            "Unsupported condition near 'LIKE'; use =, IN or >.",
        ),
        ("SELECT id FROM customer; DELETE FROM customer", "Unexpected character ';' at 23."),
        ("SELECT id FROM customer WHERE id = 1 OR 1 = 1", "Unexpected 'OR' after the query."),
        ("SELECT id FROM customer WHERE id > 'a'", "'>' compares with a number, not 'a'."),
    ],
)
def test_suiteql_outside_the_subset_is_refused_with_netsuites_body(
    sandbox_url: Any, statement: str, reason: str
) -> None:
    _, admin = sandbox_url
    with pytest.raises(QueryError):
        parse(statement)
    response = _suiteql(admin, statement)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/vnd.oracle.resource+json; type=error"
    assert response.json() == {
        "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1",
        "title": "Bad Request",
        "status": 400,
        "o:errorDetails": [
            {
                "detail": "Invalid search query. Detailed unprocessed description follows. "
                + reason,
                "o:errorCode": "INVALID_PARAMETER",
            }
        ],
    }


def test_suiteql_needs_prefer_transient_and_a_page_of_at_most_1000(sandbox_url: Any) -> None:
    _, admin = sandbox_url
    q = {"q": "SELECT id FROM customer"}
    missing = admin.post(SUITEQL, headers=AUTH, json=q)
    too_big = admin.post(SUITEQL, params={"limit": 1001}, headers=QUERY_HEADERS, json=q)
    assert _error_code(missing) == (400, "INVALID_HEADER")
    assert _error_code(too_big) == (400, "INVALID_PARAMETER")


async def test_a_rejected_statement_is_an_upstream_rejection(sandbox_url: Any) -> None:
    connector = _connect(sandbox_url[0])
    try:
        with pytest.raises(UpstreamRejected) as err:
            await connector._suiteql("SELECT id FROM employee", 1, 0)
    finally:
        await connector.aclose()
    assert err.value.message == (
        "erp rejected the request: Bad Request: Invalid search query. Detailed unprocessed "
        "description follows. Search error occurred: Record 'employee' was not found. "
        "(INVALID_PARAMETER)"
    )
