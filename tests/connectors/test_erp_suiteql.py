"""The connector's SuiteQL against the ERP sandbox: a statement NetSuite refuses is an upstream
rejection in NetSuite's words; postings filtered by legal entity, type and posting window;
keyset pages. (The sandbox's SuiteQL on its own, the subset it parses and what it answers, is
tested in ``tests/connectors/sandbox/test_erp_sandbox.py``.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from connectors.commands import CreateCreditMemo
from connectors.erp import ErpConnector, suiteql
from connectors.errors import UpstreamRejected
from connectors.models import ConnectorConfig, ObjectKind, PostingType
from connectors.money import Money
from connectors.sandbox import erp as sandbox
from tests.connectors.conftest import running_sandbox
from tests.connectors.contract import SECRET
from tests.connectors.erp_helpers import RECORDS, _connect


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[tuple[str, httpx.Client]]:
    with running_sandbox(sandbox.create_app, RECORDS) as running:
        yield running


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


# -- postings by legal entity, type and posting window ---------------------------------------

WINDOW = {
    "subsidiary": "Opsgraph K.K.",
    "type": "invoice",
    "posted_from": "2026-09-01",
    "posted_before": "2026-10-01",
}


class Recording(httpx.AsyncBaseTransport):
    """Real HTTP, keeping each request sent."""

    def __init__(self) -> None:
        self.sent: list[httpx.Request] = []
        self._http = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return await self._http.handle_async_request(request)

    async def aclose(self) -> None:
        await self._http.aclose()


def test_posting_filters_are_the_conditions_netsuite_takes() -> None:
    conditions = suiteql.filter_conditions(ObjectKind.POSTING, WINDOW)
    assert suiteql.postings_after(5011, conditions).split(" WHERE ")[1] == (
        "recordtype IN ('invoice', 'creditmemo', 'journalentry') "
        "AND BUILTIN.DF(subsidiary) = 'Opsgraph K.K.' AND recordtype = 'invoice' "
        "AND trandate >= TO_DATE('2026-09-01', 'YYYY-MM-DD') "
        "AND trandate < TO_DATE('2026-10-01', 'YYYY-MM-DD') AND id > 5011 ORDER BY id"
    )


async def test_postings_filter_by_legal_entity_type_and_posting_window() -> None:
    with running_sandbox(sandbox.create_app, RECORDS) as (url, _):
        connector = _connect(url)
        try:
            memo = await connector.write(
                CreateCreditMemo(customer_id="1003", amount=Money(1600, "JPY"),
                                 tax=Money(0, "JPY"), subsidiary="Opsgraph K.K.",
                                 tran_date=date(2026, 9, 30)),
                "memo-kk",
            )  # fmt: skip
            window = await connector.list_all(ObjectKind.POSTING, filters=WINDOW)
            credits = await connector.list_all(
                ObjectKind.POSTING, filters={**WINDOW, "type": "credit_memo"}
            )
            october = await connector.list_all(
                ObjectKind.POSTING, filters={**WINDOW, "posted_from": "2026-10-01",
                                             "posted_before": "2026-11-01"},
            )  # fmt: skip
        finally:
            await connector.aclose()
    # From the first day of the window, not from its last (Sep 30 is in, Oct 1 is out).
    assert [p.id for p in window] == ["5009", "5025", "5131"]
    assert [(p.id, p.type, p.subsidiary) for p in credits] == [
        (memo.id, PostingType.CREDIT_MEMO, "Opsgraph K.K.")
    ]
    assert [(p.id, p.tran_date) for p in october] == [
        ("5010", date(2026, 10, 1)),
        ("5026", date(2026, 10, 1)),
    ]


@pytest.mark.parametrize(
    ("filters", "problem"),
    [
        (
            {"posted_from": "01/11/2026"},
            "posted_from must be an ISO date (YYYY-MM-DD), not '01/11/2026'",
        ),
        (
            {"posted_before": "2026-11-01T00:00"},
            "posted_before must be an ISO date (YYYY-MM-DD), not '2026-11-01T00:00'",
        ),
        (
            {"type": "creditmemo"},
            "type must be one of invoice, credit_memo, journal_entry, not 'creditmemo'",
        ),
    ],  # fmt: skip
)
async def test_a_bad_filter_value_is_refused_without_a_call(
    filters: dict[str, str], problem: str
) -> None:
    connector = _connect("http://127.0.0.1:9")  # nothing listens there: nothing may be sent
    try:
        with pytest.raises(UpstreamRejected) as listed:
            await connector.list_page(ObjectKind.POSTING, filters=filters)
        with pytest.raises(UpstreamRejected) as paged:
            await connector.postings_after(0, 10, filters)
    finally:
        await connector.aclose()
    assert listed.value.message == paged.value.message == f"erp cannot filter posting: {problem}"
    assert connector.calls == 0


async def test_postings_after_pages_by_id_each_page_from_offset_zero(sandbox_url: Any) -> None:
    recording = Recording()
    connector = ErpConnector(
        ConnectorConfig(base_url=sandbox_url[0], secret=SECRET), transport=recording
    )
    filters = {"subsidiary": "Opsgraph K.K."}
    pages: list[list[str]] = []
    after = 0
    try:
        while True:
            page = await connector.postings_after(after, 3, filters)
            pages.append([p.id for p in page])
            if len(page) < 3:
                break
            after = int(page[-1].id)
        with pytest.raises(UpstreamRejected):
            await connector.postings_after(-1, 3, filters)
    finally:
        await connector.aclose()
    assert pages == [["5009", "5010", "5011"], ["5025", "5026", "5027"], ["5131"]]
    sent = [(r.url.params["limit"], r.url.params["offset"], json.loads(r.content)["q"])
            for r in recording.sent]  # fmt: skip
    assert [(limit, offset, q.split(" AND ")[-1]) for limit, offset, q in sent] == [
        ("3", "0", "id > 0 ORDER BY id"),
        ("3", "0", "id > 5011 ORDER BY id"),
        ("3", "0", "id > 5027 ORDER BY id"),
    ]
