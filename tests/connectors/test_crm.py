from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from connectors.commands import UNSET, UpdateAccountHealth, UpsertAccount
from connectors.crm import CrmConnector, connect
from connectors.errors import (
    UpstreamConflict,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRejected,
)
from connectors.models import Account, ConnectorConfig, ObjectKind, SystemName
from connectors.sandbox.crm import create_app
from tests.connectors.conftest import running_sandbox
from tests.connectors.contract import (
    ConnectorCase,
    ConnectorContract,
    ContractSpec,
    case_fixture,
)
from tests.connectors.crm_helpers import ACCOUNTS, SEEDED

API = "/services/data/v61.0"
_refs = itertools.count(1)


def new_account(ref: str, **changes: Any) -> UpsertAccount:
    fields: dict[str, Any] = {
        "name": "Nakatomi Trading",
        "segment": "Enterprise",
        "owner": ACCOUNTS[0].owner,
        "strategic": True,
        "renewal_date": date(2027, 2, 1),
        "health_score": 64,
    }
    return UpsertAccount(ref=ref, **{**fields, **changes})


SPEC = ContractSpec(
    connect=connect,
    seeded=SEEDED,
    batched_reads=frozenset({ObjectKind.ACCOUNT}),
    related={},  # an account is the CRM's customer: it has no parent to group by
    write=lambda: new_account(f"cust_contract_{next(_refs)}"),
)
case = case_fixture(SPEC)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[str, httpx.Client]]:
    with running_sandbox(create_app, SEEDED) as running:
        yield running


@pytest.fixture(scope="module")
def org() -> Iterator[tuple[str, httpx.Client]]:
    """A second org for the system-specific tests, so their writes never meet the
    contract's exact listings."""
    with running_sandbox(create_app, SEEDED) as running:
        yield running


@pytest.fixture
async def wire(org: tuple[str, httpx.Client]) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": "Bearer sandbox-secret"}
    async with httpx.AsyncClient(base_url=org[0], headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
async def crm(org: tuple[str, httpx.Client]) -> AsyncIterator[CrmConnector]:
    connector = connect(ConnectorConfig(base_url=org[0], secret="sandbox-secret"))
    yield connector
    await connector.aclose()


class TestCrmContract(ConnectorContract):
    async def test_write_with_the_same_key_writes_once(self, case: ConnectorCase) -> None:
        """Salesforce's REST API has no idempotency key: an upsert by external id is the
        idempotency. The contract's version expects a second key with the same payload to
        make a new record; here the same ref is the same account whatever the key, and a
        different ref makes a new one."""
        before = len(await case.connector.list_all(ObjectKind.ACCOUNT))
        first = await case.connector.write(case.write, "contract-key-1")
        again = await case.connector.write(case.write, "contract-key-2")
        assert (first.created, again.created, again.id) == (True, False, first.id)
        assert len(await case.connector.list_all(ObjectKind.ACCOUNT)) == before + 1
        other = await case.connector.write(new_account(f"cust_other_{next(_refs)}"), "k-3")
        assert other.created is True and other.id != first.id


def served(admin: httpx.Client) -> dict[str, int]:
    requests: dict[str, int] = admin.get("/_sandbox/stats").json()["requests"]
    return requests


async def test_list_pages_with_the_batch_size_it_asks_for(crm: CrmConnector) -> None:
    page = await crm.list_page(ObjectKind.ACCOUNT, limit=3, filters={"segment": "Enterprise"})
    enterprise = sorted(a.id for a in ACCOUNTS if a.segment == "Enterprise")
    assert [a.id for a in page.items] == enterprise[:3]
    assert (page.cursor is None) is (len(enterprise) <= 3)
    by_ref = await crm.list_page(ObjectKind.ACCOUNT, filters={"ref": "cust_0004"})
    assert by_ref.items == [ACCOUNTS[3]]


async def test_malformed_ids_are_unknown_without_a_call(crm: CrmConnector) -> None:
    before = crm.calls
    assert await crm.fetch_many(ObjectKind.ACCOUNT, ["nope", "001'; DROP"]) == [None, None]
    assert (await crm.list_page(ObjectKind.ACCOUNT, filters={"customer": "nope"})).items == []
    assert crm.calls == before


async def test_upsert_answers_201_then_200_by_external_id(
    wire: httpx.AsyncClient, crm: CrmConnector
) -> None:
    url = f"{API}/sobjects/Account/Opsgraph_Id__c/cust_wire_1"
    created = await wire.patch(url, json={"Name": "Wire One"})
    assert created.status_code == 201
    new_id = created.json()["id"]
    assert created.json() == {"id": new_id, "success": True, "errors": [], "created": True}
    updated = await wire.patch(
        url.replace("cust_wire_1", "CUST_WIRE_1"), json={"Segment__c": "SMB"}
    )
    assert updated.status_code == 200
    assert updated.json() == {"id": new_id, "success": True, "errors": [], "created": False}
    [account] = await crm.fetch_many(ObjectKind.ACCOUNT, [new_id])
    assert account == Account(
        system=SystemName.CRM,
        id=new_id,
        name="Wire One",
        ref="cust_wire_1",
        segment="SMB",
        owner="Integration User",
        strategic=False,
        renewal_date=None,
        health_score=None,
    )


async def test_an_upsert_matching_several_accounts_is_a_conflict(
    wire: httpx.AsyncClient, crm: CrmConnector
) -> None:
    for account in ACCOUNTS[4:6]:
        patched = await wire.patch(
            f"{API}/sobjects/Account/{account.id}", json={"Opsgraph_Id__c": "cust_dupe"}
        )
        assert patched.status_code == 204
    ambiguous = await wire.patch(f"{API}/sobjects/Account/Opsgraph_Id__c/cust_dupe", json={})
    assert ambiguous.status_code == 300
    assert ambiguous.json() == [f"{API}/sobjects/Account/{a.id}" for a in ACCOUNTS[4:6]]
    with pytest.raises(UpstreamConflict) as err:
        await crm.write(new_account("cust_dupe"), "k")
    assert err.value.message == "crm: 2 records share that external id"


async def test_an_upsert_answered_204_is_resolved_by_its_ref() -> None:
    """API versions before 46.0 answer an update with 204 and no body."""
    seen: list[str] = []

    def older_salesforce(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.method == "PATCH":
            assert json.loads(request.content) == {"Name": "Old API"}
            return httpx.Response(204)
        assert request.url.params["q"] == (
            "SELECT Id FROM Account WHERE Opsgraph_Id__c = 'cust_old'"
        )
        return httpx.Response(
            200, json={"totalSize": 1, "done": True, "records": [{"Id": "0" * 18}]}
        )

    config = ConnectorConfig(base_url="http://salesforce.test", secret="s")
    connector = CrmConnector(config, transport=httpx.MockTransport(older_salesforce))
    try:
        command = UpsertAccount(ref="cust_old", name="Old API")
        result = await connector.write(command, "k")
    finally:
        await connector.aclose()
    assert (result.id, result.created) == ("0" * 18, False)
    assert seen == [
        f"PATCH {API}/sobjects/Account/Opsgraph_Id__c/cust_old",
        f"GET {API}/query",
    ]


async def test_an_upsert_sends_only_the_fields_it_sets() -> None:
    """A field left unset keeps Salesforce's value; one given as None clears it."""
    sent: list[object] = []

    def salesforce(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        body = {"id": "0" * 18, "success": True, "errors": [], "created": False}
        return httpx.Response(200, json=body)

    config = ConnectorConfig(base_url="http://salesforce.test", secret="s")
    connector = CrmConnector(config, transport=httpx.MockTransport(salesforce))
    try:
        command = UpsertAccount(ref="cust_1", segment=None, renewal_date=date(2027, 2, 1))
        assert command.name is UNSET
        await connector.write(command, "k")
    finally:
        await connector.aclose()
    assert sent == [{"Segment__c": None, "Renewal_Date__c": "2027-02-01"}]


async def test_composite_batch_reads_accounts_and_their_owners(
    crm: CrmConnector, org: tuple[str, httpx.Client]
) -> None:
    wanted = [a.id for a in ACCOUNTS[:3]] + ["001000000000999AAA", "not-an-id"]
    org[1].post("/_sandbox/stats/reset")
    assert await crm.fetch_composite(wanted) == [*ACCOUNTS[:3], None, None]
    # one batch of GETs, then one SOQL query for the owners' names
    assert served(org[1]) == {f"POST {API}/composite/batch": 1, f"GET {API}/query": 1}


async def test_a_403_request_limit_exceeded_is_rate_limiting() -> None:
    with running_sandbox(lambda c: create_app(c, daily_api_limit=2), SEEDED) as (url, _):
        crm = connect(ConnectorConfig(base_url=url, secret="sandbox-secret"))
        try:
            assert (await crm.health()).detail == "1 of 2 daily API requests left"
            await crm.list_page(ObjectKind.ACCOUNT)
            with pytest.raises(UpstreamRateLimited) as err:
                await crm.list_page(ObjectKind.ACCOUNT)
            health = await crm.health()
        finally:
            await crm.aclose()
    assert err.value.message == (
        "crm API request limit exceeded: REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded."
    )
    assert err.value.retry_after is None
    assert health.healthy is False


async def test_a_health_update_is_reported_as_updated(crm: CrmConnector) -> None:
    start = await crm.changes(None)
    account = ACCOUNTS[6]
    command = UpdateAccountHealth(id=account.id, health_score=12)
    written = await crm.write(command, "health-1")
    assert (written.id, written.created) == (account.id, False)
    after = await crm.changes(start.cursor)
    assert [(e.id, e.type) for e in after.events] == [(account.id, "updated")]
    [fetched] = await crm.fetch_many(ObjectKind.ACCOUNT, [account.id])
    assert isinstance(fetched, Account) and fetched.health_score == 12


async def test_health_of_an_unknown_account_is_not_found(crm: CrmConnector) -> None:
    command = UpdateAccountHealth(id="001000000000999AAA", health_score=50)
    with pytest.raises(UpstreamNotFound):
        await crm.write(command, "k")


async def test_an_unknown_owner_is_refused(crm: CrmConnector) -> None:
    with pytest.raises(UpstreamRejected) as err:
        await crm.write(new_account("cust_orphan", owner="Nobody Here"), "k")
    assert err.value.message == "crm has no active user named 'Nobody Here'"
