"""The Salesforce org stand-in over HTTP, driven without the connector: the wire shapes,
SOQL, versions, describe, writes and the API usage it reports (Composite is
``test_crm_composite``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from connectors.models import Account
from tests.connectors import crm_helpers
from tests.connectors.crm_helpers import ACCOUNTS, API, NOT_FOUND, names, sub

org, wire, fresh = crm_helpers.org, crm_helpers.wire, crm_helpers.fresh


def codes(response: httpx.Response) -> tuple[int, list[str]]:
    return response.status_code, [e["errorCode"] for e in response.json()]


def score(a: Account) -> int:
    assert a.health_score is not None
    return a.health_score


def renewal(a: Account) -> date:
    assert a.renewal_date is not None
    return a.renewal_date


async def query(wire: httpx.AsyncClient, soql: str, **headers: str) -> httpx.Response:
    return await wire.get(f"{API}/query", params={"q": soql}, headers=headers)


async def test_an_account_is_served_in_salesforce_shape(wire: httpx.AsyncClient) -> None:
    account = ACCOUNTS[0]
    assert account.renewal_date is not None and account.health_score is not None
    soql = (
        "SELECT Id, Name, Opsgraph_Id__c, Segment__c, Owner.Name, Strategic__c, "
        f"Renewal_Date__c, Health_Score__c FROM Account WHERE Id = '{account.id}'"
    )
    body = (await query(wire, soql)).json()
    owner_url = body["records"][0]["Owner"]["attributes"]["url"]
    assert owner_url.startswith(f"{API}/sobjects/User/005")
    assert body == {
        "totalSize": 1,
        "done": True,
        "records": [
            {
                "attributes": {"type": "Account", "url": f"{API}/sobjects/Account/{account.id}"},
                "Id": account.id,
                "Name": account.name,
                "Opsgraph_Id__c": account.ref,
                "Segment__c": account.segment,
                "Owner": {"attributes": {"type": "User", "url": owner_url}, "Name": account.owner},
                "Strategic__c": account.strategic,
                "Renewal_Date__c": account.renewal_date.isoformat(),
                "Health_Score__c": float(account.health_score),
            }
        ],
    }
    assert f'"Health_Score__c":{account.health_score}.0' in (await query(wire, soql)).text


async def test_soql_filters_with_in_and_booleans_orders_and_limits(wire: httpx.AsyncClient) -> None:
    soql = (
        "select Name from account where Strategic__c = true "
        "and Segment__c in ('enterprise', 'SMB') order by Name desc limit 2"
    )
    want = sorted(
        (a.name for a in ACCOUNTS if a.strategic and a.segment in ("Enterprise", "SMB")),
        reverse=True,
    )[:2]
    assert [r["Name"] for r in (await query(wire, soql)).json()["records"]] == want


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id FROM Account WHERE (Name = 'x')", "MALFORMED_QUERY"),
        ("SELECT COUNT() FROM Account", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name = 'x' OR Name = 'y'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account GROUP BY Name", "MALFORMED_QUERY"),
        ("SELECT Industry FROM Account", "INVALID_FIELD"),
        ("SELECT Id FROM Contact", "INVALID_TYPE"),
        ("SELECT Id FROM Account WHERE Id = 'nope'", "INVALID_QUERY_FILTER_OPERATOR"),
    ],
)
async def test_soql_outside_the_subset_is_refused(
    wire: httpx.AsyncClient, soql: str, code: str
) -> None:
    response = await query(wire, soql)
    assert response.status_code == 400
    assert [e["errorCode"] for e in response.json()] == [code]


async def test_query_pages_by_next_records_url(wire: httpx.AsyncClient) -> None:
    soql = "SELECT Id FROM Account WHERE Opsgraph_Id__c IN ('cust_0001','cust_0002','cust_0003')"
    first = (
        await query(wire, soql + " ORDER BY Id", **{"Sforce-Query-Options": "batchSize=2"})
    ).json()
    assert (first["totalSize"], first["done"], len(first["records"])) == (3, False, 2)
    assert first["nextRecordsUrl"].startswith(f"{API}/query/01g")
    assert first["nextRecordsUrl"].endswith("-2")
    rest = (await wire.get(first["nextRecordsUrl"])).json()
    assert (rest["totalSize"], rest["done"], "nextRecordsUrl" in rest) == (3, True, False)
    ids = [r["Id"] for r in first["records"] + rest["records"]]
    assert ids == sorted(a.id for a in ACCOUNTS[:3])
    stale = await wire.get(f"{API}/query/01gnosuchcursorAAA-2")
    assert (stale.status_code, stale.json()[0]["errorCode"]) == (400, "INVALID_QUERY_LOCATOR")


async def test_composite_batch_wire_shape_and_limit(wire: httpx.AsyncClient) -> None:
    account = ACCOUNTS[0]
    batch = [
        {"method": "GET", "url": f"v61.0/sobjects/Account/{account.id}"},
        {"method": "GET", "url": "v61.0/sobjects/Account/001000000000999AAA"},
    ]
    body = (await wire.post(f"{API}/composite/batch", json={"batchRequests": batch})).json()
    assert body["hasErrors"] is True
    [found, missing] = body["results"]
    assert found["statusCode"] == 200
    assert (found["result"]["Id"], found["result"]["Name"]) == (account.id, account.name)
    assert found["result"]["OwnerId"].startswith("005")
    assert missing == {
        "statusCode": 404,
        "result": [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}],
    }
    too_many = await wire.post(f"{API}/composite/batch", json={"batchRequests": batch * 13})
    assert too_many.status_code == 400


async def test_a_wrong_token_gets_salesforces_401(wire: httpx.AsyncClient) -> None:
    response = await wire.get(f"{API}/limits", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Token"
    assert response.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


# -- versions and the API usage ------------------------------------------------------------


async def test_the_served_versions_are_listed_without_a_session(
    org: tuple[str, httpx.Client],
) -> None:
    async with httpx.AsyncClient(base_url=org[0]) as anonymous:
        versions = (await anonymous.get("/services/data/")).json()
    assert len(versions) == 31
    assert versions[0] == {"label": "Summer '14", "url": "/services/data/v31.0", "version": "31.0"}
    assert versions[28] == {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"}
    assert versions[-1] == {"label": "Summer '24", "url": "/services/data/v61.0", "version": "61.0"}


@pytest.mark.parametrize("version", ["31.0", "45.0", "59.0"])
async def test_every_served_version_answers_in_its_own_urls(
    wire: httpx.AsyncClient, version: str
) -> None:
    account = ACCOUNTS[0]
    soql = f"SELECT Id FROM Account WHERE Id = '{account.id}'"
    body = (await wire.get(f"/services/data/v{version}/query", params={"q": soql})).json()
    url = f"/services/data/v{version}/sobjects/Account/{account.id}"
    assert body["records"] == [{"attributes": {"type": "Account", "url": url}, "Id": account.id}]


@pytest.mark.parametrize("version", ["v30.0", "v62.0", "v61", "vlatest"])
async def test_a_version_not_served_is_not_found(wire: httpx.AsyncClient, version: str) -> None:
    answer = await wire.get(f"/services/data/{version}/limits")
    assert (answer.status_code, answer.json()) == (404, NOT_FOUND)


async def test_every_answer_says_how_much_of_the_daily_allowance_is_spent(
    fresh: httpx.AsyncClient,
) -> None:
    first = await fresh.get(f"{API}/query", params={"q": "SELECT Id FROM Account LIMIT 1"})
    refused = await fresh.get(f"{API}/query", params={"q": "SELECT Id FROM"})
    users = "/query?q=SELECT+Id+FROM+User"
    both = [sub("first", "GET", users), sub("second", "GET", users)]
    two = await fresh.post(f"{API}/composite", json={"compositeRequest": both})
    limits = await fresh.get(f"{API}/limits/")
    usage = [r.headers["sforce-limit-info"] for r in (first, refused, two, limits)]
    assert usage == [f"api-usage={n}/15000" for n in (1, 2, 3, 4)]
    assert limits.json() == {"DailyApiRequests": {"Max": 15000, "Remaining": 14996}}
    unauthorized = await fresh.get(f"{API}/limits", headers={"Authorization": "Bearer nope"})
    assert "sforce-limit-info" not in unauthorized.headers


# -- describe ------------------------------------------------------------------------------


async def test_describe_is_the_schema_not_an_external_id(wire: httpx.AsyncClient) -> None:
    body = (await wire.get(f"{API}/sobjects/Account/describe")).json()
    assert [f["name"] for f in body["fields"]] == [
        "Id", "IsDeleted", "Name", "Opsgraph_Id__c", "Segment__c", "OwnerId", "Strategic__c",
        "Renewal_Date__c", "Health_Score__c", "CreatedDate", "LastModifiedDate",
        "SystemModstamp",
    ]  # fmt: skip
    fields = {f["name"]: f for f in body["fields"]}
    assert fields["Opsgraph_Id__c"] == {
        "name": "Opsgraph_Id__c", "label": "Opsgraph Id", "type": "string",
        "soapType": "xsd:string", "length": 255, "precision": 0, "scale": 0, "nillable": True,
        "createable": True, "updateable": True, "defaultedOnCreate": False, "externalId": True,
        "idLookup": True, "unique": False, "caseSensitive": False, "custom": True,
        "nameField": False, "filterable": True, "sortable": True, "referenceTo": [],
        "relationshipName": None,
    }  # fmt: skip
    shown = ("Id", "Name", "OwnerId", "Health_Score__c")
    summary = {n: (fields[n]["type"], fields[n]["nillable"], fields[n]["updateable"],
                   fields[n]["externalId"]) for n in shown}  # fmt: skip
    assert summary == {
        "Id": ("id", False, False, False),
        "Name": ("string", False, True, False),
        "OwnerId": ("reference", False, True, False),
        "Health_Score__c": ("double", True, True, False),
    }
    owner = fields["OwnerId"]
    assert (owner["referenceTo"], owner["relationshipName"]) == (["User"], "Owner")
    assert (body["name"], body["keyPrefix"], body["createable"]) == ("Account", "001", True)


async def test_an_sobject_answers_its_basic_information(wire: httpx.AsyncClient) -> None:
    info = (await wire.get(f"{API}/sobjects/Account/")).json()
    assert info == {
        "objectDescribe": {
            "name": "Account", "label": "Account", "labelPlural": "Accounts", "keyPrefix": "001",
            "custom": False, "createable": True, "updateable": True, "deletable": True,
            "undeletable": False, "queryable": True, "retrieveable": True,
            "urls": {"sobject": f"{API}/sobjects/Account",
                     "describe": f"{API}/sobjects/Account/describe",
                     "rowTemplate": f"{API}/sobjects/Account/{{ID}}"},
        },
        "recentItems": [],
    }  # fmt: skip
    every = (await wire.get(f"{API}/sobjects")).json()
    assert [(s["name"], s["createable"]) for s in every["sobjects"]] == [
        ("Account", True), ("Task", True), ("User", False)
    ]  # fmt: skip
    unknown = await wire.get(f"{API}/sobjects/Contact/describe")
    assert (unknown.status_code, unknown.json()) == (404, NOT_FOUND)


# -- writes --------------------------------------------------------------------------------


async def test_a_create_answers_201_and_the_record_holds_salesforces_defaults(
    fresh: httpx.AsyncClient,
) -> None:
    created = await fresh.post(f"{API}/sobjects/Account/", json={"Name": "Nakatomi Trading"})
    new_id = created.json()["id"]
    assert (created.status_code, created.json()) == (
        201, {"id": new_id, "success": True, "errors": []}
    )  # fmt: skip
    assert created.headers["location"] == f"{API}/sobjects/Account/{new_id}"
    record = (await fresh.get(f"{API}/sobjects/Account/{new_id}")).json()
    owner = (await fresh.get(f"{API}/sobjects/User/{record['OwnerId']}")).json()
    assert owner["Name"] == "Integration User"
    assert {k: record[k] for k in ("Id", "Name", "Opsgraph_Id__c", "Strategic__c",
                                   "Health_Score__c", "IsDeleted")} == {
        "Id": new_id, "Name": "Nakatomi Trading", "Opsgraph_Id__c": None, "Strategic__c": False,
        "Health_Score__c": None, "IsDeleted": False,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"Segment__c": "SMB"}, 400, {"message": "Required fields are missing: [Name]",
                                      "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["Name"]}),
        ({"Name": ""}, 400, {"message": "Required fields are missing: [Name]",
                             "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["Name"]}),
        ({"Name": "x", "CreatedDate": "2026-01-01T00:00:00Z"}, 400, {
            "message": "Unable to create/update fields: CreatedDate. Please check the security "
                       "settings of this field and verify that it is read/write for your "
                       "profile or permission set.",
            "errorCode": "INVALID_FIELD_FOR_INSERT_UPDATE", "fields": ["CreatedDate"]}),
        ({"Name": "x", "Industry": "Retail"}, 400, {
            "message": "No such column 'Industry' on sobject of type Account",
            "errorCode": "INVALID_FIELD"}),
        ({"Name": "x" * 256}, 400, {
            "message": f"Account Name: data value too large: {'x' * 256} (max length=255)",
            "errorCode": "STRING_TOO_LONG", "fields": ["Name"]}),
        ({"Name": "x", "Health_Score__c": "high"}, 400, {
            "message": 'Cannot deserialize Health_Score__c from "high"',
            "errorCode": "JSON_PARSER_ERROR"}),
        ({"Name": "x", "OwnerId": "005000000000999AAA"}, 400, {
            "message": "invalid cross reference id", "errorCode": "INVALID_CROSS_REFERENCE_KEY",
            "fields": ["OwnerId"]}),
    ],
)  # fmt: skip
async def test_a_create_is_refused_as_salesforce_refuses_it(
    wire: httpx.AsyncClient, body: dict[str, Any], status: int, error: dict[str, Any]
) -> None:
    refused = await wire.post(f"{API}/sobjects/Account", json=body)
    assert (refused.status_code, refused.json()) == (status, [error])


async def test_a_number_is_kept_to_its_fields_scale(fresh: httpx.AsyncClient) -> None:
    account = ACCOUNTS[0]
    patched = await fresh.patch(
        f"{API}/sobjects/Account/{account.id}", json={"Health_Score__c": 64.5}
    )
    assert patched.status_code == 204
    record = (await fresh.get(f"{API}/sobjects/Account/{account.id}")).json()
    assert record["Health_Score__c"] == 65.0


async def test_update_and_delete_by_id_answer_204_and_a_deleted_record_is_gone(
    fresh: httpx.AsyncClient,
) -> None:
    account = ACCOUNTS[1]
    url = f"{API}/sobjects/Account/{account.id}"
    now, day = datetime.now(UTC), timedelta(days=1)
    window = {"start": (now - day).isoformat(), "end": (now + day).isoformat()}

    async def changed() -> list[str]:
        answer = await fresh.get(f"{API}/sobjects/Account/updated/", params=window)
        ids: list[str] = answer.json()["ids"]
        return ids

    patched = await fresh.patch(url, json={"Segment__c": "Enterprise"})
    assert (patched.status_code, patched.content) == (204, b"")
    assert (await fresh.get(url)).json()["Segment__c"] == "Enterprise"
    assert account.id in await changed()
    deleted = await fresh.delete(url)
    assert (deleted.status_code, deleted.content) == (204, b"")
    gone = await fresh.get(url)
    assert (gone.status_code, gone.json()) == (404, NOT_FOUND)
    entity_is_deleted = [
        {"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED", "fields": []}
    ]
    for again in (await fresh.delete(url), await fresh.patch(url, json={"Name": "Back"})):
        assert (again.status_code, again.json()) == (404, entity_is_deleted)
    assert account.name not in await names(fresh, "Name != null")
    assert account.id not in await changed()


async def test_a_record_is_read_by_its_external_id(fresh: httpx.AsyncClient) -> None:
    account = ACCOUNTS[2]
    by_id = (await fresh.get(f"{API}/sobjects/Account/{account.id}")).json()
    by_ref = await fresh.get(f"{API}/sobjects/Account/Opsgraph_Id__c/{account.ref.upper()}")
    assert (by_ref.status_code, by_ref.json()) == (200, by_id)
    none = await fresh.get(f"{API}/sobjects/Account/Opsgraph_Id__c/cust_none")
    assert (none.status_code, none.json()) == (404, NOT_FOUND)
    not_external = await fresh.get(f"{API}/sobjects/Account/Name/{account.name}")
    assert not_external.json() == [{
        "message": "Provided external ID field does not exist or is not accessible: Name",
        "errorCode": "NOT_FOUND",
    }]  # fmt: skip
    other = ACCOUNTS[3]
    await fresh.patch(f"{API}/sobjects/Account/{other.id}", json={"Opsgraph_Id__c": account.ref})
    shared = await fresh.get(f"{API}/sobjects/Account/Opsgraph_Id__c/{account.ref}")
    assert (shared.status_code, shared.json()) == (
        300, [f"{API}/sobjects/Account/{account.id}", f"{API}/sobjects/Account/{other.id}"]
    )  # fmt: skip
    deleted = await fresh.delete(f"{API}/sobjects/Account/Opsgraph_Id__c/{account.ref}")
    assert deleted.status_code == 300
    await fresh.delete(f"{API}/sobjects/Account/{other.id}")
    deleted = await fresh.delete(f"{API}/sobjects/Account/Opsgraph_Id__c/{account.ref}")
    assert deleted.status_code == 204
    assert (await fresh.get(f"{API}/sobjects/Account/{account.id}")).status_code == 404


async def test_fields_limits_a_record_to_the_fields_it_names(wire: httpx.AsyncClient) -> None:
    account = ACCOUNTS[0]
    url = f"{API}/sobjects/Account/{account.id}"
    record = (await wire.get(url, params={"fields": "name, Segment__c"})).json()
    assert record == {
        "attributes": {"type": "Account", "url": url},
        "Name": account.name,
        "Segment__c": account.segment,
        "Id": account.id,
    }
    unknown = await wire.get(url, params={"fields": "Name,Industry"})
    assert codes(unknown) == (400, ["INVALID_FIELD"])


async def test_a_15_character_id_names_the_record_it_begins(wire: httpx.AsyncClient) -> None:
    account = ACCOUNTS[4]
    record = (await wire.get(f"{API}/sobjects/Account/{account.id[:15]}")).json()
    assert (record["Id"], record["Name"]) == (account.id, account.name)
    soql = f"SELECT Name FROM Account WHERE Id IN ('{account.id[:15]}')"
    rows = (await wire.get(f"{API}/query", params={"q": soql})).json()["records"]
    assert [r["Name"] for r in rows] == [account.name]


async def test_an_upsert_answers_as_its_version_does_and_update_only_never_creates(
    fresh: httpx.AsyncClient,
) -> None:
    old, new = "/services/data/v45.0", "/services/data/v46.0"
    path = "/sobjects/Account/Opsgraph_Id__c/cust_upsert_1"
    created = await fresh.patch(old + path, json={"Name": "Upsert One"})
    new_id = created.json()["id"]
    assert (created.status_code, created.json()) == (
        201, {"id": new_id, "success": True, "errors": []}
    )  # fmt: skip
    updated_old = await fresh.patch(old + path, json={"Segment__c": "SMB"})
    assert (updated_old.status_code, updated_old.content) == (204, b"")
    updated_new = await fresh.patch(new + path, json={"Segment__c": "Enterprise"})
    assert (updated_new.status_code, updated_new.json()) == (
        200, {"id": new_id, "success": True, "errors": [], "created": False}
    )  # fmt: skip
    only = await fresh.patch(
        new + "/sobjects/Account/Opsgraph_Id__c/cust_upsert_2",
        params={"updateOnly": "true"},
        json={"Name": "Never"},
    )
    assert (only.status_code, only.json()) == (404, NOT_FOUND)
    soql = "SELECT Name FROM Account WHERE Opsgraph_Id__c LIKE 'cust_upsert%'"
    rows = (await fresh.get(f"{API}/query", params={"q": soql})).json()["records"]
    assert [r["Name"] for r in rows] == ["Upsert One"]


# -- SOQL ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "want"),
    [
        ("Health_Score__c > 80", lambda a: score(a) > 80),
        ("Health_Score__c >= 79.0", lambda a: score(a) >= 79),
        ("Health_Score__c < 64", lambda a: score(a) < 64),
        ("Health_Score__c <= 64 AND Strategic__c = true", lambda a: score(a) <= 64 and a.strategic),
        ("Renewal_Date__c >= 2027-04-23 AND Renewal_Date__c < 2027-06-01",
         lambda a: date(2027, 4, 23) <= renewal(a) < date(2027, 6, 1)),
        ("Name > 'umbrella'", lambda a: a.name.casefold() > "umbrella"),
        ("Name LIKE '%health'", lambda a: a.name.endswith("Health")),
        ("Name LIKE 'acme_logistics'", lambda a: a.name == "Acme Logistics"),
        ("Name LIKE 'Acme\\_Logistics'", lambda a: False),
        ("Owner.Name LIKE 'ana%'", lambda a: a.owner == "Ana Ortiz"),
        ("Segment__c != 'smb'", lambda a: a.segment != "SMB"),
        ("Segment__c <> 'SMB'", lambda a: a.segment != "SMB"),
        ("Segment__c NOT IN ('SMB', 'Enterprise')", lambda a: a.segment == "Mid-Market"),
    ],
)  # fmt: skip
async def test_soql_compares_by_range_pattern_and_exclusion(
    wire: httpx.AsyncClient, where: str, want: Any
) -> None:
    assert await names(wire, where) == sorted(a.name for a in ACCOUNTS if want(a))


async def test_soql_compares_datetimes(fresh: httpx.AsyncClient) -> None:
    account = ACCOUNTS[5]
    assert await names(fresh, "CreatedDate < 2000-01-01T00:00:00Z") == []
    everyone = await names(fresh, "CreatedDate > 2000-01-01T00:00:00.000+0000")
    assert everyone == sorted(a.name for a in ACCOUNTS)
    soql = "SELECT CreatedDate FROM Account ORDER BY CreatedDate DESC LIMIT 1"
    seeded = (await fresh.get(f"{API}/query", params={"q": soql})).json()["records"][0]
    await asyncio.sleep(0.01)
    await fresh.patch(f"{API}/sobjects/Account/{account.id}", json={"Segment__c": "SMB"})
    since = seeded["CreatedDate"].replace("+0000", "Z")
    assert await names(fresh, f"LastModifiedDate > {since}") == [account.name]
    assert await names(fresh, f"LastModifiedDate <= {since}") == sorted(
        a.name for a in ACCOUNTS if a is not account
    )


async def test_soql_orders_by_several_fields_and_pages_by_offset(wire: httpx.AsyncClient) -> None:
    ordered = sorted(ACCOUNTS, key=lambda a: a.name)
    ordered.sort(key=lambda a: a.segment or "", reverse=True)
    got = await names(wire, "Name != null", order="Segment__c DESC NULLS LAST, Name ASC")
    assert got == [a.name for a in ordered]
    soql = "SELECT Name FROM Account ORDER BY Health_Score__c DESC LIMIT 3 OFFSET 2"
    rows = (await wire.get(f"{API}/query", params={"q": soql})).json()["records"]
    by_score = sorted(ACCOUNTS, key=score, reverse=True)
    assert [r["Name"] for r in rows] == [a.name for a in by_score[2:5]]


@pytest.mark.parametrize(
    ("soql", "code", "message"),
    [
        ("SELECT Id FROM Account WHERE Strategic__c > true",
         "INVALID_QUERY_FILTER_OPERATOR", "invalid operator on boolean field"),
        ("SELECT Id FROM Account WHERE Health_Score__c LIKE '8%'",
         "INVALID_QUERY_FILTER_OPERATOR", "invalid operator on double field"),
        ("SELECT Id FROM Account WHERE Renewal_Date__c > 2027-01-01T00:00:00Z", "INVALID_FIELD",
         "value of filter criterion for field 'Renewal_Date__c' must be of type date"),
        ("SELECT Id FROM Account WHERE CreatedDate > 2027-01-01", "INVALID_FIELD",
         "value of filter criterion for field 'CreatedDate' must be of type dateTime"),
        ("SELECT Id FROM Account WHERE Name < 5", "INVALID_FIELD",
         "value of filter criterion for field 'Name' must be of type string and should be "
         "enclosed in quotes"),
        ("SELECT Id FROM Account LIMIT 5 OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE",
         "Maximum SOQL offset allowed is 2000"),
        ("SELECT Id FROM Account ORDER BY Name NULLS SOMETIMES", "MALFORMED_QUERY",
         "unexpected token: 'SOMETIMES'"),
        ("SELECT Id, Name, id FROM Account", "MALFORMED_QUERY", "duplicate field selected: Id"),
    ],
)  # fmt: skip
async def test_soql_refuses_an_operator_or_literal_the_field_does_not_take(
    wire: httpx.AsyncClient, soql: str, code: str, message: str
) -> None:
    refused = await wire.get(f"{API}/query", params={"q": soql})
    assert (refused.status_code, refused.json()) == (400, [{"message": message, "errorCode": code}])
