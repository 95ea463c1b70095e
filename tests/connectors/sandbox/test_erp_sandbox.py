"""The ERP sandbox on its own, over real HTTP, without the connector: NetSuite's record API
and SuiteQL as the sandbox serves them, its errors, and what a request may carry (each query
parameter, preference, header and body field applied, or refused in NetSuite's words)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from connectors.models import Posting
from connectors.sandbox import erp as sandbox_app
from connectors.sandbox.erp.api import LOGIN_FAILED
from connectors.sandbox.erp.query import (
    Column,
    Condition,
    Query,
    QueryError,
    Row,
    Table,
    execute,
    parse,
)
from tests.connectors.conftest import running_sandbox
from tests.connectors.erp_helpers import AUTH, QUERY_HEADERS, RECORDS, SUITEQL, _suiteql

RECORD = "/services/rest/record/v1"
RESTLET = "/app/site/hosting/restlet.nl"
VOID = {"script": "customscript_opsgraph_void", "deploy": "1"}


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[tuple[str, httpx.Client]]:
    with running_sandbox(sandbox_app.create_app, RECORDS) as running:
        yield running


@pytest.fixture
def fresh() -> Iterator[tuple[str, httpx.Client]]:
    """A sandbox of its own, for tests that write."""
    with running_sandbox(sandbox_app.create_app, RECORDS) as running:
        yield running


def _decimal_json(response: httpx.Response) -> Any:
    return json.loads(response.content, parse_float=Decimal)


def _error_code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["o:errorDetails"][0]["o:errorCode"]


def _refusal(response: httpx.Response) -> tuple[int, dict[str, str]]:
    """The status and the one error detail of NetSuite's error answer."""
    [detail] = response.json()["o:errorDetails"]
    return response.status_code, detail


def _refused(code: str, detail: str, *culprit: str) -> tuple[int, dict[str, str]]:
    """NetSuite's 400 detail; ``culprit`` is the field naming what was refused and its value
    (``"o:errorQueryParam", "limit"``)."""
    return 400, {"detail": detail, "o:errorCode": code, **dict([culprit] if culprit else [])}


# -- record API -----------------------------------------------------------------------------


def test_record_api_serves_a_seeded_invoice_as_netsuite_does(sandbox_url: Any) -> None:
    url, admin = sandbox_url
    response = admin.get("/services/rest/record/v1/invoice/5030", headers=AUTH)
    body = _decimal_json(response)
    base = f"{url}/services/rest/record/v1"
    assert response.headers["content-type"] == "application/vnd.oracle.resource+json; type=singular"
    assert body == {
        "links": [{"rel": "self", "href": f"{base}/invoice/5030"}],
        "id": "5030",
        "externalId": "in_Hnc0G7P8ChKs9Q",
        "entity": {"links": [{"rel": "self", "href": f"{base}/customer/1008"}], "id": "1008",
                   "refName": "Wayne Health"},
        "tranDate": "2026-10-01",
        "subsidiary": {"links": [{"rel": "self", "href": f"{base}/subsidiary/4"}], "id": "4",
                       "refName": "Opsgraph Gulf W.L.L."},
        "currency": {"links": [{"rel": "self", "href": f"{base}/currency/22"}], "id": "22",
                     "refName": "KWD"},
        "subtotal": Decimal("16.000"),
        "taxTotal": Decimal("0.000"),
        "total": Decimal("16.000"),
        "status": {"id": "paidInFull", "refName": "Paid In Full"},
        "memo": "OPS-0008-002",
        "lastModifiedDate": body["lastModifiedDate"],
    }  # fmt: skip
    assert b'"subtotal": 16.000' in response.content


def test_customer_record_carries_the_receivable_balance(sandbox_url: Any) -> None:
    _, admin = sandbox_url
    body = _decimal_json(admin.get("/services/rest/record/v1/customer/1002", headers=AUTH))
    # One open invoice: 405.00 + 85.75 tax; the two paid ones do not count.
    assert body["balance"] == Decimal("490.75")
    assert (body["companyName"], body["externalId"]) == ("Globex Retail", "cust_0002")


def test_an_unknown_record_is_netsuites_404(sandbox_url: Any) -> None:
    _, admin = sandbox_url
    response = admin.get("/services/rest/record/v1/creditMemo/5030", headers=AUTH)
    assert response.status_code == 404
    assert response.json()["o:errorDetails"] == [
        {
            "detail": "The record instance does not exist. Provide a valid record instance ID.",
            "o:errorCode": "NONEXISTENT_ID",
        }
    ]


def test_a_wrong_token_gets_netsuites_401_body(sandbox_url: Any) -> None:
    _, admin = sandbox_url
    response = admin.post(
        SUITEQL, headers={"Authorization": "Bearer nope", "Prefer": "transient"}, json={"q": "x"}
    )
    assert response.status_code == 401
    assert response.json() == {
        "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.2",
        "title": "Unauthorized",
        "status": 401,
        "o:errorDetails": [{"detail": LOGIN_FAILED, "o:errorCode": "INVALID_LOGIN"}],
    }


def test_an_injected_rate_limit_is_netsuites_429(sandbox_url: Any) -> None:
    _, admin = sandbox_url
    admin.put("/_sandbox/faults", json={"rate_limit_next": 1, "retry_after_s": 3})
    try:
        response = _suiteql(admin, "SELECT id FROM customer")
    finally:
        admin.put("/_sandbox/faults", json={})
    assert (response.status_code, response.headers["retry-after"]) == (429, "3")
    assert response.json()["title"] == "Too Many Requests"
    assert response.json()["o:errorDetails"][0]["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"


def test_an_idempotency_key_replays_the_same_location(fresh: Any) -> None:
    url, admin = fresh
    body = {
        "entity": {"id": "1003"}, "subsidiary": {"id": "3"}, "currency": {"id": "20"},
        "tranDate": "2026-11-02", "item": {"items": [{"amount": 500, "tax1Amt": 50}]},
    }  # fmt: skip
    headers = {**AUTH, "X-NetSuite-Idempotency-Key": "5b0d2c7e-6c54-4b7e-9d0f-1f4f4b3f8d21"}
    first = admin.post("/services/rest/record/v1/creditMemo", headers=headers, json=body)
    again = admin.post("/services/rest/record/v1/creditMemo", headers=headers, json=body)
    assert (first.status_code, again.status_code) == (204, 204)
    assert (
        first.headers["location"]
        == again.headers["location"]
        == f"{url}/services/rest/record/v1/creditMemo/9001"
    )
    memos = _suiteql(admin, "SELECT id FROM transaction WHERE recordtype = 'creditmemo'").json()
    assert memos["items"] == [{"links": [], "id": "9001"}]


# -- SuiteQL --------------------------------------------------------------------------------


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
            "Unsupported condition near 'LIKE'; use =, IN, >, >=, < or <=.",
        ),
        ("SELECT id FROM customer; DELETE FROM customer", "Unexpected character ';' at 23."),
        ("SELECT id FROM customer WHERE id = 1 OR 1 = 1", "Unexpected 'OR' after the query."),
        (
            "SELECT id FROM customer WHERE id > 'a'",
            "'>' compares with a number or a TO_DATE, not 'a'.",
        ),
        (
            "SELECT id FROM transaction WHERE trandate >= '2026-11-01'",
            "'>=' compares with a number or a TO_DATE, not '2026-11-01'.",
        ),
        (
            "SELECT id FROM transaction WHERE trandate < TO_DATE('01/11/2026', 'DD/MM/YYYY')",
            "TO_DATE takes the format 'YYYY-MM-DD', not 'DD/MM/YYYY'.",
        ),
        (
            "SELECT id FROM transaction WHERE trandate <= TO_DATE('2026-02-30', 'YYYY-MM-DD')",
            "'2026-02-30' is not a date in the format YYYY-MM-DD.",
        ),
        (
            "SELECT id FROM transaction WHERE BUILTIN.DF(subsidiary) LIKE 'Ops%'",
            "Unsupported condition near 'LIKE'; use =, IN, >, >=, < or <=.",
        ),
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


def test_suiteql_filters_on_display_names_and_date_windows(sandbox_url: Any) -> None:
    _, admin = sandbox_url
    kk = "SELECT id, trandate FROM transaction WHERE BUILTIN.DF(subsidiary) = 'Opsgraph K.K.'"
    october = _suiteql(
        admin,
        f"{kk} AND trandate >= TO_DATE('2026-10-01', 'YYYY-MM-DD') "
        "AND trandate < TO_DATE('2026-11-01', 'YYYY-MM-DD') ORDER BY id",
    ).json()
    september = _suiteql(
        admin, f"{kk} AND trandate <= TO_DATE('2026-09-01', 'yyyy-mm-dd') ORDER BY id"
    ).json()
    assert [(r["id"], r["trandate"]) for r in october["items"]] == [
        ("5010", "2026-10-01"),
        ("5026", "2026-10-01"),
    ]
    assert [r["id"] for r in september["items"]] == ["5009", "5025", "5131"]
    assert parse(
        "SELECT id FROM transaction WHERE BUILTIN.DF(subsidiary) = 'Opsgraph K.K.' "
        "AND trandate < TO_DATE('2026-11-01', 'YYYY-MM-DD') AND id <= 5100"
    ).where == (
        Condition("subsidiary", "=", ("Opsgraph K.K.",), display=True),
        Condition("trandate", "<", ("2026-11-01",), dates=True),
        Condition("id", "<=", ("5100",)),
    )


def test_ids_order_and_compare_as_numbers_through_keyset_pages() -> None:
    """``id > n ORDER BY id`` pages as NetSuite's integer ids do: 999 before 5001, 10001
    after 5131 (as text, "10001" would come first and "999" last)."""
    seeded = next(r for r in RECORDS if isinstance(r, Posting))
    extra = [replace(seeded, id="999"), replace(seeded, id="10001")]
    with running_sandbox(sandbox_app.create_app, [*RECORDS, *extra]) as (_, admin):
        q = "SELECT id FROM transaction WHERE entity = '1001' AND id > {after} ORDER BY id"
        pages = [_suiteql(admin, q.format(after=after), limit=2).json() for after in (0, 5001)]
    assert [([r["id"] for r in p["items"]], p["hasMore"], p["totalResults"]) for p in pages] == [
        (["999", "5001"], True, 4),
        (["5002", "10001"], False, 2),
    ]


def test_an_item_holds_the_columns_selected_that_have_a_value() -> None:
    """A display name is the reference's, or the column's own where a row has none; a null
    is left out; ``*`` leaves display names out."""
    rows: list[Row] = [
        {"id": "1", "status": "open", "status@df": "Open", "memo": "m1"},
        {"id": "2", "status": "x", "memo": None},  # no display name, no memo
    ]
    q = "SELECT id, BUILTIN.DF(status) AS shown, BUILTIN.DF(memo), memo FROM transaction"
    items, total = execute(parse(q), Table(rows))
    assert (items, total) == ([
        {"id": "1", "shown": "Open", "expr2": "m1", "memo": "m1"},
        {"id": "2", "shown": "x"},
    ], 2)  # fmt: skip
    every, _ = execute(parse("SELECT * FROM transaction"), Table(rows))
    assert every == [{"id": "1", "status": "open", "memo": "m1"}, {"id": "2", "status": "x"}]


class _Touched(dict[str, str | None]):
    """A row that notes each time a query reads it."""

    reads: list[int] = []

    def get(self, key: str, default: Any = None) -> Any:
        _Touched.reads.append(id(self))
        return super().get(key, default)


def test_a_keyset_page_reads_only_its_rows_and_a_binary_search() -> None:
    rows: list[Row] = [
        _Touched(id=str(n), recordtype="invoice" if n % 2 else "journalentry")
        for n in range(5000, 1000, -1)  # stored out of id order
    ]
    table = Table(rows)
    q = "SELECT id FROM transaction WHERE recordtype = 'invoice' AND id > {} ORDER BY id"
    first, total = execute(parse(q.format(0)), table, 0, 10)
    _Touched.reads.clear()
    deep, rest = execute(parse(q.format(4001)), table, 0, 10)
    assert ([r["id"] for r in first], total) == ([str(n) for n in range(1001, 1021, 2)], 2000)
    assert ([r["id"] for r in deep], rest) == ([str(n) for n in range(4003, 4023, 2)], 499)
    # The rows found on the first page are the table's to keep, sorted: this page searched
    # them (twice, for its two ends) and read its own ten, and scanned and sorted nothing.
    probes = 2 * (math.ceil(math.log2(2000)) + 1)
    assert len(set(_Touched.reads)) <= probes + 10 < len(rows) / 100


def test_a_lookup_by_values_reads_an_index_of_the_column_not_every_row() -> None:
    rows: list[Row] = [
        _Touched(id=str(n), externalid=f"in_{n % 1500}", recordtype="invoice")
        for n in range(1000, 4000)
    ]
    table = Table(rows)
    q = "SELECT id FROM transaction WHERE externalid IN ({}) AND recordtype = 'invoice' ORDER BY id"
    execute(parse(q.format("'in_1'")), table)  # the first lookup of the column indexes it
    _Touched.reads.clear()
    found, total = execute(parse(q.format("'in_7', 'in_1200', 'in_9999'")), table)
    assert ([r["id"] for r in found], total) == (["1200", "1507", "2700", "3007"], 4)
    assert len(set(_Touched.reads)) == 4  # the rows holding those values, and no other


def test_suiteql_needs_prefer_transient_and_a_page_of_at_most_1000(sandbox_url: Any) -> None:
    _, admin = sandbox_url
    q = {"q": "SELECT id FROM customer"}
    missing = admin.post(SUITEQL, headers=AUTH, json=q)
    too_big = admin.post(SUITEQL, params={"limit": 1001}, headers=QUERY_HEADERS, json=q)
    assert _error_code(missing) == (400, "INVALID_HEADER")
    assert _error_code(too_big) == (400, "INVALID_PARAMETER")


# -- what a request may carry: applied, or refused in NetSuite's words ----------------------


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", f"{RECORD}/invoice/5030", {"q": "status IS open"}),
        ("GET", f"{RECORD}/customer/1002", {"simpleEnumFormat": "true"}),
        ("POST", SUITEQL, {"limit": "5", "expandSubResources": "true"}),
    ],
)
def test_a_query_parameter_the_endpoint_does_not_apply_is_refused(
    sandbox_url: Any, method: str, path: str, params: dict[str, str]
) -> None:
    _, admin = sandbox_url
    body = {"q": "SELECT id FROM customer"} if method == "POST" else None
    response = admin.request(method, path, params=params, headers=QUERY_HEADERS, json=body)
    name = list(params)[-1]
    detail = f"The query parameter {name} is not supported here."
    assert _refusal(response) == _refused("INVALID_PARAMETER", detail, "o:errorQueryParam", name)


def test_fields_answers_the_named_fields_alone(sandbox_url: Any) -> None:
    url, admin = sandbox_url
    response = admin.get(f"{RECORD}/invoice/5030", params={"fields": "total,status"}, headers=AUTH)
    assert _decimal_json(response) == {
        "links": [{"rel": "self", "href": f"{url}{RECORD}/invoice/5030"}],
        "total": Decimal("16.000"),
        "status": {"id": "paidInFull", "refName": "Paid In Full"},
    }
    unknown = admin.get(f"{RECORD}/invoice/5030", params={"fields": "total,pin"}, headers=AUTH)
    detail = "Record type 'invoice' has no field pin."
    assert _refusal(unknown) == _refused("INVALID_PARAMETER", detail, "o:errorQueryParam", "fields")


def test_suiteql_pages_start_at_a_multiple_of_the_limit(sandbox_url: Any) -> None:
    _, admin = sandbox_url
    assert _suiteql(admin, "SELECT id FROM customer", limit=2, offset=4).status_code == 200
    between = _suiteql(admin, "SELECT id FROM customer", limit=2, offset=3)
    detail = "offset must be zero or a positive multiple of limit."
    assert _refusal(between) == _refused("INVALID_PARAMETER", detail, "o:errorQueryParam", "offset")


def test_every_answer_is_synchronous_so_respond_async_is_refused(sandbox_url: Any) -> None:
    _, admin = sandbox_url
    q = {"q": "SELECT id FROM customer"}
    both = admin.post(SUITEQL, headers={**AUTH, "Prefer": "transient, respond-async"}, json=q)
    read = admin.get(f"{RECORD}/customer/1001", headers={**AUTH, "Prefer": "respond-async"})
    for response in (both, read):
        detail = "The sandbox does not honour 'Prefer: respond-async' here."
        assert _refusal(response) == _refused("INVALID_HEADER", detail, "o:errorHeader", "Prefer")


def test_netsuite_headers_the_sandbox_would_not_apply_are_refused(sandbox_url: Any) -> None:
    _, admin = sandbox_url
    customer = f"{RECORD}/customer/1001"
    strict = admin.get(customer, headers={**AUTH, "X-NetSuite-PropertyNameValidation": "Error"})
    lenient = admin.get(customer, headers={**AUTH, "X-NetSuite-PropertyNameValidation": "Ignore"})
    keyed = admin.get(customer, headers={**AUTH, "X-NetSuite-Idempotency-Key": "k-1"})
    text = admin.post(
        SUITEQL,
        headers={**QUERY_HEADERS, "Content-Type": "text/plain"},
        content=b'{"q": "SELECT id FROM customer"}',
    )
    assert strict.status_code == 200
    assert [(_error_code(r), _refusal(r)[1]["o:errorHeader"]) for r in (lenient, keyed, text)] == [
        ((400, "INVALID_HEADER"), "X-NetSuite-PropertyNameValidation"),
        ((400, "INVALID_HEADER"), "X-NetSuite-Idempotency-Key"),
        ((400, "INVALID_HEADER"), "Content-Type"),
    ]


CREDIT = {
    "entity": {"id": "1003"}, "subsidiary": {"id": "3"}, "currency": {"id": "20"},
    "tranDate": "2026-11-02", "item": {"items": [{"amount": 500, "tax1Amt": 50}]},
}  # fmt: skip


def test_a_body_field_the_sandbox_does_not_keep_is_refused_not_dropped(fresh: Any) -> None:
    _, admin = fresh
    memo = f"{RECORD}/creditMemo"
    department = admin.post(memo, headers=AUTH, json={**CREDIT, "department": {"id": "1"}})
    rate = admin.post(memo, headers=AUTH, json={**CREDIT, "item": {"items": [{"rate": 5}]}})
    replace = admin.post(memo, params={"replace": "item"}, headers=AUTH, json=CREDIT)
    bound = admin.post(
        SUITEQL, headers=QUERY_HEADERS, json={"q": "SELECT id FROM customer", "params": []}
    )
    assert [_refusal(r) for r in (department, rate, bound)] == [
        _refused("INVALID_CONTENT", "The sandbox does not keep the field department.",
                 "o:errorPath", "department"),
        _refused("INVALID_CONTENT", "The sandbox does not keep the field item.items[0].rate.",
                 "o:errorPath", "item.items[0].rate"),
        _refused("INVALID_CONTENT", "A SuiteQL request body has no field params.",
                 "o:errorPath", "params"),
    ]  # fmt: skip
    assert _error_code(replace) == (400, "INVALID_PARAMETER")
    memos = _suiteql(admin, "SELECT id FROM transaction WHERE recordtype = 'creditmemo'").json()
    assert memos["items"] == []


def test_a_created_transaction_keeps_its_lines_for_expand_sub_resources(fresh: Any) -> None:
    _, admin = fresh
    lines = [
        {"item": {"id": "77"}, "amount": 500, "tax1Amt": 50, "description": "SLA credit"},
        {"amount": 100},
    ]
    created = admin.post(f"{RECORD}/creditMemo", headers=AUTH,
                         json={**CREDIT, "item": {"items": lines}})  # fmt: skip
    path = urlsplit(created.headers["location"]).path
    plain = _decimal_json(admin.get(path, headers=AUTH))
    expanded = _decimal_json(admin.get(path, params={"expandSubResources": "true"}, headers=AUTH))
    assert "item" not in plain
    assert expanded == {**plain, "item": {
        "links": [], "count": 2, "hasMore": False, "offset": 0, "totalResults": 2,
        "items": [
            {"links": [], "line": 1, "amount": Decimal(500), "tax1Amt": Decimal(50),
             "item": {"id": "77"}, "description": "SLA credit"},
            {"links": [], "line": 2, "amount": Decimal(100), "tax1Amt": Decimal(0)},
        ],
    }}  # fmt: skip
    assert (plain["subtotal"], plain["taxTotal"]) == (Decimal(600), Decimal(50))
    maybe = admin.get(path, params={"expandSubResources": "maybe"}, headers=AUTH)
    assert _error_code(maybe) == (400, "INVALID_PARAMETER")


def test_patch_sets_the_named_fields_and_null_removes_one(fresh: Any) -> None:
    url, admin = fresh
    invoice = f"{RECORD}/invoice/5031"
    changed = admin.patch(invoice, headers=AUTH, json={"memo": "Disputed", "externalId": None})
    total = admin.patch(invoice, headers=AUTH, json={"total": 1})
    assert (changed.status_code, changed.headers["location"]) == (204, url + invoice)
    rows = _suiteql(admin, "SELECT id, memo, externalid FROM transaction WHERE id = '5031'").json()
    assert rows["items"] == [{"links": [], "id": "5031", "memo": "Disputed"}]
    detail = "The sandbox cannot change the field total of invoice records."
    assert _refusal(total) == _refused("INVALID_CONTENT", detail, "o:errorPath", "total")


def test_delete_removes_a_transaction_from_reads_balances_and_changes(fresh: Any) -> None:
    _, admin = fresh
    last = _suiteql(admin, "SELECT seq FROM change ORDER BY seq DESC", limit=1).json()
    invoice = f"{RECORD}/invoice/5007"  # 1002's one open invoice
    keyed = {**AUTH, "X-NetSuite-Idempotency-Key": "delete-5007"}
    first, again = admin.delete(invoice, headers=keyed), admin.delete(invoice, headers=keyed)
    gone, read = admin.delete(invoice, headers=AUTH), admin.get(invoice, headers=AUTH)
    customer = admin.delete(f"{RECORD}/customer/1002", headers=AUTH)
    statuses = [r.status_code for r in (first, again, gone, read, customer)]
    assert statuses == [204, 204, 404, 404, 405]
    balance = _suiteql(admin, "SELECT balance FROM customer WHERE id = '1002'").json()
    assert balance["items"] == [{"links": [], "balance": "0"}]
    after = last["items"][0]["seq"]
    changes = _suiteql(
        admin, f"SELECT id, recordtype, changetype, entity FROM change WHERE seq > {after}"
    ).json()
    assert changes["items"] == [
        {"links": [], "id": "5007", "recordtype": "invoice", "changetype": "deleted",
         "entity": "1002"}
    ]  # fmt: skip


def test_an_unknown_record_type_is_netsuites_404(sandbox_url: Any) -> None:
    _, admin = sandbox_url
    answers = [
        admin.get(f"{RECORD}/employee/1", headers=AUTH),
        admin.post(f"{RECORD}/employee", headers=AUTH, json={}),
        admin.patch(f"{RECORD}/employee/1", headers=AUTH, json={}),
        admin.delete(f"{RECORD}/employee/1", headers=AUTH),
    ]
    for response in answers:
        assert _refusal(response) == (
            404,
            {"detail": "Record type 'employee' does not exist.", "o:errorCode": "NONEXISTENT_ID"},
        )


def test_an_external_id_in_place_of_an_id_is_refused_not_missed(sandbox_url: Any) -> None:
    _, admin = sandbox_url
    response = admin.get(f"{RECORD}/customer/eid:cust_0002", headers=AUTH)
    detail = "The sandbox does not find records by external ID (eid:); use the internal ID."
    assert _refusal(response) == _refused("INVALID_PARAMETER", detail)


def test_the_links_in_a_record_lead_to_records(sandbox_url: Any) -> None:
    url, admin = sandbox_url
    invoice = admin.get(f"{RECORD}/invoice/5030", headers=AUTH).json()
    entity, subsidiary, currency = (
        admin.get(invoice[ref]["links"][0]["href"], headers=AUTH).json()
        for ref in ("entity", "subsidiary", "currency")
    )
    assert entity["companyName"] == "Wayne Health"
    assert subsidiary == {
        "links": [{"rel": "self", "href": f"{url}{RECORD}/subsidiary/4"}],
        "id": "4",
        "name": "Opsgraph Gulf W.L.L.",
    }
    assert currency == {
        "links": [{"rel": "self", "href": f"{url}{RECORD}/currency/22"}],
        "id": "22",
        "name": "KWD",
        "symbol": "KWD",
        "currencyPrecision": 3,
    }


# -- the void RESTlet -----------------------------------------------------------------------


def _void(
    admin: httpx.Client, body: Any, key: str | None = None, params: dict[str, str] = VOID
) -> httpx.Response:
    headers = {**AUTH, "X-NetSuite-Idempotency-Key": key} if key else AUTH
    return admin.post(RESTLET, params=params, headers=headers, json=body)


def test_the_void_restlet_voids_once_per_key_and_keeps_the_transaction(fresh: Any) -> None:
    _, admin = fresh
    last = _suiteql(admin, "SELECT seq FROM change ORDER BY seq DESC", limit=1).json()
    body = {"type": "invoice", "id": "5007", "reason": "Posted twice"}  # 1002's open invoice
    first, again = _void(admin, body, "void-5007"), _void(admin, body, "void-5007")
    assert [(r.status_code, r.headers["content-type"], r.json()) for r in (first, again)] == [
        (200, "application/json", {"id": "5007", "voided": True}),
    ] * 2
    row = _suiteql(admin, "SELECT subtotal, taxtotal, foreigntotal, status, memo "
                          "FROM transaction WHERE id = '5007'").json()  # fmt: skip
    assert row["items"] == [{"links": [], "subtotal": "0", "taxtotal": "0", "foreigntotal": "0",
                             "status": "voided", "memo": "Posted twice"}]  # fmt: skip
    record = _decimal_json(admin.get(f"{RECORD}/invoice/5007", headers=AUTH))
    assert (record["status"], record["total"]) == ({"id": "voided", "refName": "Voided"}, 0)
    balance = _suiteql(admin, "SELECT balance FROM customer WHERE id = '1002'").json()
    assert balance["items"] == [{"links": [], "balance": "0"}]
    after = last["items"][0]["seq"]
    changes = _suiteql(admin, f"SELECT id, changetype FROM change WHERE seq > {after}").json()
    assert changes["items"] == [{"links": [], "id": "5007", "changetype": "updated"}]


def test_the_void_restlet_refuses_in_netsuites_words(fresh: Any) -> None:
    _, admin = fresh
    void = {"type": "invoice", "id": "5031", "reason": "Duplicate"}
    assert _void(admin, void, "first").status_code == 200
    answers = [
        _void(admin, void, "second"),  # voided already
        _void(admin, {**void, "id": "4999"}),
        _void(admin, {**void, "type": "creditmemo"}),  # 5031 is an invoice
        _void(admin, {**void, "type": "salesorder"}),
        _void(admin, {**void, "memo": "x"}),
        _void(admin, {**void, "reason": ""}),
        _void(admin, void, params={**VOID, "script": "customscript_other"}),
    ]
    not_found = "The record instance does not exist. Provide a valid record instance ID."
    assert [_refusal(r) for r in answers] == [
        _refused("USER_ERROR", "Transaction 5031 is voided already."),
        (404, {"detail": not_found, "o:errorCode": "NONEXISTENT_ID"}),
        (404, {"detail": not_found, "o:errorCode": "NONEXISTENT_ID"}),
        _refused("USER_ERROR", "A transaction of type salesorder cannot be voided."),
        _refused("INVALID_CONTENT", "The void RESTlet takes no field memo.", "o:errorPath", "memo"),
        _refused("INVALID_FLD_VALUE", "Please enter a text value for: reason.",
                 "o:errorPath", "reason"),
        _refused("INVALID_PARAMETER", "No RESTlet is deployed with script=customscript_other.",
                 "o:errorQueryParam", "script"),
    ]  # fmt: skip
    assert answers[1].json()["title"] == "Not Found"
