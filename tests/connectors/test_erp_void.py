"""Voiding an ERP posting through the connector: ``VoidPosting`` goes to the void RESTlet, over
real HTTP to the ERP sandbox; the posting stays, voided, with zero amounts. (The RESTlet on
its own is tested in ``tests/connectors/sandbox/test_erp_sandbox.py``.)"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date

import httpx
import pytest

from connectors.commands import VoidPosting, WriteResult
from connectors.erp import ErpConnector
from connectors.errors import UpstreamNotFound, UpstreamRejected
from connectors.models import ChangeEvent, ConnectorConfig, ObjectKind, Posting, SystemName
from connectors.money import Money
from connectors.sandbox import erp as sandbox_app
from tests.connectors.conftest import running_sandbox
from tests.connectors.erp_helpers import RECORDS, SUITEQL, _connect

ERP = SystemName.ERP
DUPLICATE = VoidPosting(posting_id="5131", reason="Duplicate of 5009")  # the planted duplicate


@pytest.fixture
async def erp() -> AsyncIterator[ErpConnector]:
    """A connector on a sandbox of its own: every test here writes."""
    with running_sandbox(sandbox_app.create_app, RECORDS) as (url, _):
        connector = _connect(url)
        yield connector
        await connector.aclose()


async def _feed_end(erp: ErpConnector) -> str:
    batch = await erp.changes(None)
    while batch.has_more:
        batch = await erp.changes(batch.cursor)
    return batch.cursor


async def test_a_voided_posting_stays_listed_with_zero_amounts(erp: ErpConnector) -> None:
    result = await erp.write(DUPLICATE, "void-5131")
    [voided] = await erp.fetch_many(ObjectKind.POSTING, ["5131"])
    listed = await erp.list_all(ObjectKind.POSTING, filters={"external_id": "in_YhcH9muZ11Kl3r"})
    assert result == WriteResult(system=ERP, kind=ObjectKind.POSTING, id="5131", created=True)
    assert voided == Posting(
        system=ERP, id="5131", type="invoice", customer_id="1003",
        external_id="in_YhcH9muZ11Kl3r", subsidiary="Opsgraph K.K.", amount=Money(0, "JPY"),
        tax=Money(0, "JPY"), tran_date=date(2026, 9, 1), status="voided",
        memo="Duplicate of 5009",
    )  # fmt: skip
    assert [(p.id, p.status) for p in listed] == [("5009", "paidInFull"), ("5131", "voided")]


async def test_the_same_key_voids_once(erp: ErpConnector) -> None:
    cursor = await _feed_end(erp)
    first = await erp.write(DUPLICATE, "void-twice")
    again = await erp.write(DUPLICATE, "void-twice")
    after = await erp.changes(cursor)
    at = after.events[0].occurred_at
    assert again == first
    assert after.events == [
        ChangeEvent(system=ERP, kind=ObjectKind.POSTING, id="5131", occurred_at=at,
                    type="updated", parent="1003"),
        ChangeEvent(system=ERP, kind=ObjectKind.BALANCE, id="1003", occurred_at=at,
                    type="updated"),
    ]  # fmt: skip


async def test_voiding_an_unknown_posting_is_not_found(erp: ErpConnector) -> None:
    with pytest.raises(UpstreamNotFound) as missing:
        await erp.write(VoidPosting(posting_id="4999", reason="Duplicate"), "void-4999")
    assert missing.value.message == "erp has no posting '4999'"
    assert erp.calls == 1  # the read that did not find it; nothing was voided


async def test_voiding_a_voided_posting_is_rejected(erp: ErpConnector) -> None:
    await erp.write(DUPLICATE, "void-first")
    with pytest.raises(UpstreamRejected) as refused:
        await erp.write(DUPLICATE, "void-second")
    assert refused.value.message == (
        "erp rejected the request: Bad Request: Transaction 5131 is voided already. (USER_ERROR)"
    )


async def test_a_void_goes_to_the_restlet_host_with_the_idempotency_key() -> None:
    """On NetSuite, RESTlets are served from another host than the REST web services."""
    sent: list[httpx.Request] = []
    row = {"id": "5131", "recordtype": "invoice", "entity": "1003", "trandate": "2026-09-01",
           "subsidiaryname": "Opsgraph K.K.", "currencyname": "JPY", "subtotal": "56000",
           "taxtotal": "5600", "status": "paidInFull"}  # fmt: skip

    def netsuite(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if request.url.path == SUITEQL:
            return httpx.Response(200, json={"items": [row], "hasMore": False})
        return httpx.Response(200, json={"id": "5131", "voided": True})

    config = ConnectorConfig(
        base_url="https://1234567.suitetalk.api.netsuite.com",
        secret="token",
        options={"restlet_url": "https://1234567.restlets.api.netsuite.com/"},
    )
    connector = ErpConnector(config, transport=httpx.MockTransport(netsuite))
    try:
        await connector.write(DUPLICATE, "void-key-1")
    finally:
        await connector.aclose()
    read, void = sent
    assert read.url.host == "1234567.suitetalk.api.netsuite.com"
    assert (void.method, str(void.url)) == (
        "POST",
        "https://1234567.restlets.api.netsuite.com/app/site/hosting/restlet.nl"
        "?script=customscript_opsgraph_void&deploy=1",
    )
    assert void.headers["X-NetSuite-Idempotency-Key"] == "void-key-1"
    assert json.loads(void.content) == {"type": "invoice", "id": "5131",
                                        "reason": "Duplicate of 5009"}  # fmt: skip
