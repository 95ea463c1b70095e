"""The CRM sandbox driven by Salesforce's own Python client, ``simple_salesforce``, over
real HTTP: the calls a real integration makes, answered as a Salesforce org answers them.

simple-salesforce builds ``https://<instance>/services/data/vXX.X/...`` URLs; its session
carries a transport adapter that sends them to the sandbox's http URL instead, and fails
any request for another host."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceResourceNotFound,
)
from simple_salesforce.util import Usage

from connectors.models import Account
from connectors.sandbox.crm import create_app
from tests.connectors.conftest import running_sandbox
from tests.connectors.crm_helpers import ACCOUNTS, SEEDED

INSTANCE = "opsgraph.my.salesforce.com"
API = "/services/data/v59.0"  # simple-salesforce's default version


class ToSandbox(HTTPAdapter):
    """Sends a request for the org's instance to the sandbox, path and query unchanged."""

    def __init__(self, sandbox_url: str) -> None:
        super().__init__()
        self.sandbox = urlsplit(sandbox_url)

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        url = urlsplit(request.url or "")
        if url.netloc != INSTANCE:
            raise AssertionError(f"a request for another host: {request.url}")
        request.url = urlunsplit((self.sandbox.scheme, self.sandbox.netloc, *url[2:]))
        return super().send(request, **kwargs)


@pytest.fixture
def org() -> Iterator[tuple[str, httpx.Client]]:
    with running_sandbox(create_app, SEEDED) as running:
        yield running


def client(
    org: tuple[str, httpx.Client], session_id: str = "sandbox-secret", **options: Any
) -> Salesforce:
    session = requests.Session()
    session.mount("https://", ToSandbox(org[0]))
    return Salesforce(
        instance_url=f"https://{INSTANCE}", session_id=session_id, session=session, **options
    )


@pytest.fixture
def sf(org: tuple[str, httpx.Client]) -> Salesforce:
    return client(org)


def row(account: Account, **fields: Any) -> dict[str, Any]:
    url = f"{API}/sobjects/Account/{account.id}"
    return {"attributes": {"type": "Account", "url": url}, **fields}


def test_query_answers_the_records_in_salesforce_shape(sf: Salesforce) -> None:
    account = ACCOUNTS[0]
    soql = f"SELECT Id, Name, Owner.Name FROM Account WHERE Opsgraph_Id__c = '{account.ref}'"
    result = sf.query(soql)
    owner = result["records"][0]["Owner"]
    assert owner["attributes"]["url"].startswith(f"{API}/sobjects/User/005")
    assert result == {
        "totalSize": 1,
        "done": True,
        "records": [row(account, Id=account.id, Name=account.name,
                        Owner={"attributes": owner["attributes"], "Name": account.owner})],
    }  # fmt: skip


def test_query_all_follows_next_records_url(sf: Salesforce, org: tuple[str, httpx.Client]) -> None:
    batch = {"Sforce-Query-Options": "batchSize=3"}
    result = sf.query_all("SELECT Name FROM Account ORDER BY Name", headers=batch)
    by_name = sorted(ACCOUNTS, key=lambda a: a.name)
    assert result == {
        "records": [row(a, Name=a.name) for a in by_name],
        "totalSize": 8,
        "done": True,
    }
    cursor = f"GET {API}/query/01g000000000001AAA"
    assert org[1].get("/_sandbox/stats").json()["requests"] == {
        f"GET {API}/query/": 1, f"{cursor}-3": 1, f"{cursor}-6": 1
    }  # fmt: skip


def test_a_record_is_read_by_id_and_by_external_id(sf: Salesforce) -> None:
    account = ACCOUNTS[2]
    assert account.renewal_date is not None and account.health_score is not None
    by_id = sf.Account.get(account.id)
    assert by_id == sf.Account.get_by_custom_id("Opsgraph_Id__c", account.ref)
    want = row(
        account,
        Id=account.id,
        Name=account.name,
        Opsgraph_Id__c=account.ref,
        Segment__c=account.segment,
        Strategic__c=account.strategic,
        Renewal_Date__c=account.renewal_date.isoformat(),
        Health_Score__c=float(account.health_score),
    )
    assert {k: by_id[k] for k in want} == want
    assert sf.Account.get(account.id, params={"fields": "Name"}) == row(
        account, Name=account.name, Id=account.id
    )


def test_create_update_and_delete(sf: Salesforce) -> None:
    created = sf.Account.create({"Name": "Nakatomi Trading", "Segment__c": "Enterprise"})
    new_id = created["id"]
    assert created == {"id": new_id, "success": True, "errors": []}
    assert sf.Account.update(new_id, {"Health_Score__c": 71}) == 204
    record = sf.Account.get(new_id)
    got = (record["Name"], record["Segment__c"], record["Health_Score__c"])
    assert got == ("Nakatomi Trading", "Enterprise", 71.0)
    assert sf.Account.delete(new_id) == 204
    with pytest.raises(SalesforceResourceNotFound) as gone:
        sf.Account.get(new_id)
    assert gone.value.content == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Account.create({"Segment__c": "SMB"})
    missing = "Required fields are missing: [Name]"
    assert refused.value.content == [
        {"message": missing, "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["Name"]}
    ]


def test_an_upsert_by_external_id_answers_201_200_or_204_and_300(
    sf: Salesforce, org: tuple[str, httpx.Client]
) -> None:
    assert sf.Account.upsert("Opsgraph_Id__c/cust_vendor_1", {"Name": "Vendor One"}) == 201
    assert sf.Account.upsert("Opsgraph_Id__c/cust_vendor_1", {"Segment__c": "SMB"}) == 200
    before_46 = client(org, version="45.0")
    assert (
        before_46.Account.upsert("Opsgraph_Id__c/CUST_VENDOR_1", {"Segment__c": "Mid-Market"})
        == 204
    )
    record = sf.Account.get_by_custom_id("Opsgraph_Id__c", "cust_vendor_1")
    assert (record["Name"], record["Segment__c"]) == ("Vendor One", "Mid-Market")
    sf.Account.update(ACCOUNTS[0].id, {"Opsgraph_Id__c": "cust_vendor_1"})
    with pytest.raises(SalesforceMoreThanOneRecord) as ambiguous:
        sf.Account.upsert("Opsgraph_Id__c/cust_vendor_1", {"Segment__c": "SMB"})
    urls = [f"{API}/sobjects/Account/{id_}" for id_ in (ACCOUNTS[0].id, record["Id"])]
    assert ambiguous.value.content == urls


def test_describe_and_the_sobjects_basic_information(sf: Salesforce) -> None:
    described = sf.Account.describe()
    fields = {f["name"]: f for f in described["fields"]}
    assert list(fields) == [
        "Id", "IsDeleted", "Name", "Opsgraph_Id__c", "Segment__c", "OwnerId", "Strategic__c",
        "Renewal_Date__c", "Health_Score__c", "CreatedDate", "LastModifiedDate",
        "SystemModstamp",
    ]  # fmt: skip
    external = [n for n, f in fields.items() if f["externalId"]]
    required = [
        n
        for n, f in fields.items()
        if f["createable"] and not (f["nillable"] or f["defaultedOnCreate"])
    ]
    assert (external, required) == (["Opsgraph_Id__c"], ["Name"])
    assert sf.Account.metadata()["objectDescribe"]["keyPrefix"] == "001"
    assert [s["name"] for s in sf.describe()["sobjects"]] == ["Account", "Task", "User"]


def test_limits_and_the_api_usage_the_client_reads(sf: Salesforce) -> None:
    assert sf.restful("limits/") == {"DailyApiRequests": {"Max": 15000, "Remaining": 14999}}
    assert sf.limits() == {"DailyApiRequests": {"Max": 15000, "Remaining": 14998}}
    assert sf.api_usage == {"api-usage": Usage(used=2, total=15000)}
    accounts = sf.Account
    accounts.get(ACCOUNTS[0].id)
    assert accounts.api_usage == {"api-usage": Usage(used=3, total=15000)}


def test_a_composite_request_through_restful(sf: Salesforce) -> None:
    account = ACCOUNTS[1]
    body = {
        "allOrNone": True,
        "compositeRequest": [
            {"method": "GET", "referenceId": "byRef",
             "url": f"{API}/sobjects/Account/Opsgraph_Id__c/{account.ref}?fields=Id"},
            {"method": "PATCH", "referenceId": "update",
             "url": f"{API}/sobjects/Account/@{{byRef.Id}}", "body": {"Segment__c": "Enterprise"}},
            {"method": "POST", "referenceId": "create",
             "url": f"{API}/sobjects/Account", "body": {"Name": "Composite Co"}},
        ],
    }  # fmt: skip
    result = sf.restful("composite", method="POST", json=body)
    assert result is not None
    answers = result["compositeResponse"]
    new_id = answers[2]["body"]["id"]
    assert [(r["referenceId"], r["httpStatusCode"], r["body"]) for r in answers] == [
        ("byRef", 200, row(account, Id=account.id)),
        ("update", 204, None),
        ("create", 201, {"id": new_id, "success": True, "errors": []}),
    ]
    assert sf.Account.get(account.id)["Segment__c"] == "Enterprise"


def test_a_query_with_range_operators(sf: Salesforce) -> None:
    soql = (
        "SELECT Name FROM Account WHERE Health_Score__c >= 76 AND Health_Score__c < 90 "
        "AND Renewal_Date__c <= 2027-04-30 ORDER BY Health_Score__c DESC"
    )
    names = [r["Name"] for r in sf.query_all(soql)["records"]]
    assert names == ["Wayne Health", "Acme Logistics", "Stark Analytics"]


def test_bad_soql_is_a_malformed_request_with_salesforces_error_code(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.query("SELECT Id FROM Account WHERE Name = 'x' OR Name = 'y'")
    assert refused.value.status == 400
    assert refused.value.content == [
        {"message": "unexpected token: 'OR'", "errorCode": "MALFORMED_QUERY"}
    ]


def test_a_bad_session_is_an_expired_session(org: tuple[str, httpx.Client]) -> None:
    with pytest.raises(SalesforceExpiredSession) as refused:
        client(org, session_id="00Dexpired").query("SELECT Id FROM Account")
    assert refused.value.status == 401
    assert refused.value.content == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
