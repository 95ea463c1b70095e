"""Composite and Composite Batch on the Salesforce org stand-in, over HTTP: subrequests
that use earlier answers, all or none, and what a malformed request is answered."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.connectors import crm_helpers
from tests.connectors.crm_helpers import ACCOUNTS, API, NOT_FOUND, names, sub

org, wire, fresh = crm_helpers.org, crm_helpers.wire, crm_helpers.fresh


async def composite(
    wire: httpx.AsyncClient, *subrequests: dict[str, Any], **options: Any
) -> list[dict[str, Any]]:
    answer = await wire.post(
        f"{API}/composite", json={**options, "compositeRequest": list(subrequests)}
    )
    assert answer.status_code == 200, answer.json()
    results: list[dict[str, Any]] = answer.json()["compositeResponse"]
    return results


async def test_composite_subrequests_use_earlier_answers(fresh: httpx.AsyncClient) -> None:
    soql = "SELECT+Id,Segment__c+FROM+Account+WHERE+Id+=+'@{newAccount.id}'"
    results = await composite(
        fresh,
        sub("newAccount", "POST", "/sobjects/Account", {"Name": "Composite One"}),
        sub("setSegment", "PATCH", "/sobjects/Account/@{newAccount.id}", {"Segment__c": "SMB"}),
        sub("readBack", "GET", f"/query/?q={soql}"),
        sub("copy", "PATCH", f"/sobjects/Account/{ACCOUNTS[0].id}",
            {"Segment__c": "@{readBack.records[0].Segment__c}"}),
        allOrNone=True,
    )  # fmt: skip
    new_id = results[0]["body"]["id"]
    row = {"attributes": {"type": "Account", "url": f"{API}/sobjects/Account/{new_id}"},
           "Id": new_id, "Segment__c": "SMB"}  # fmt: skip
    assert results == [
        {"body": {"id": new_id, "success": True, "errors": []},
         "httpHeaders": {"Location": f"{API}/sobjects/Account/{new_id}"},
         "httpStatusCode": 201, "referenceId": "newAccount"},
        {"body": None, "httpHeaders": {}, "httpStatusCode": 204, "referenceId": "setSegment"},
        {"body": {"totalSize": 1, "done": True, "records": [row]}, "httpHeaders": {},
         "httpStatusCode": 200, "referenceId": "readBack"},
        {"body": None, "httpHeaders": {}, "httpStatusCode": 204, "referenceId": "copy"},
    ]  # fmt: skip


async def test_all_or_none_rolls_every_write_back(fresh: httpx.AsyncClient) -> None:
    account = ACCOUNTS[0]
    before = (await fresh.get(f"{API}/sobjects/Account/{account.id}")).json()
    results = await composite(
        fresh,
        sub("renamed", "PATCH", f"/sobjects/Account/{account.id}", {"Name": "Renamed"}),
        sub("created", "POST", "/sobjects/Account", {"Name": "Rolled Back"}),
        sub("nameless", "POST", "/sobjects/Account", {"Segment__c": "SMB"}),
        sub("after", "GET", "/sobjects/Account/@{created.id}"),
        allOrNone=True,
    )
    halted = [{"errorCode": "PROCESSING_HALTED", "message": "The transaction was rolled back "
               "since another operation in the same transaction failed."}]  # fmt: skip
    assert [(r["referenceId"], r["httpStatusCode"], r["body"]) for r in results] == [
        ("renamed", 400, halted),
        ("created", 400, halted),
        ("nameless", 400, [{"message": "Required fields are missing: [Name]",
                            "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["Name"]}]),
        ("after", 400, halted),
    ]  # fmt: skip
    assert (await fresh.get(f"{API}/sobjects/Account/{account.id}")).json() == before
    everyone = await names(fresh, "Name != null")
    assert everyone == sorted(a.name for a in ACCOUNTS)
    again = await fresh.post(f"{API}/sobjects/Account", json={"Name": "After Rollback"})
    assert (await fresh.get(f"{API}/sobjects/Account/{again.json()['id']}")).status_code == 200


async def test_without_all_or_none_only_what_refers_to_a_failure_is_halted(
    fresh: httpx.AsyncClient,
) -> None:
    results = await composite(
        fresh,
        sub("nameless", "POST", "/sobjects/Account", {"Segment__c": "SMB"}),
        sub("dependent", "PATCH", "/sobjects/Account/@{nameless.id}", {"Name": "x"}),
        sub("independent", "POST", "/sobjects/Account", {"Name": "Stands Alone"}),
    )
    assert [(r["referenceId"], r["httpStatusCode"]) for r in results] == [
        ("nameless", 400), ("dependent", 400), ("independent", 201)
    ]  # fmt: skip
    assert results[1]["body"] == [{
        "errorCode": "PROCESSING_HALTED",
        "message": "Invalid reference specified. No value for nameless.id found in nameless.",
    }]  # fmt: skip
    assert await names(fresh, "Name = 'Stands Alone'") == ["Stands Alone"]


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"compositeRequest": [{"method": "GET", "url": f"{API}/limits"}]},
         "JSON_PARSER_ERROR", "'referenceId' is a required field."),
        ({"compositeRequest": [sub("a", "GET", "/sobjects")], "haltOnError": True},
         "JSON_PARSER_ERROR", 'Unrecognized field "haltOnError"'),
        ({"compositeRequest": [sub("a", "GET", "/sobjects")], "allOrNone": "yes"},
         "JSON_PARSER_ERROR", "Cannot deserialize value of type boolean from allOrNone: 'yes'"),
        ({"compositeRequest": [sub("a", "GET", "/sobjects"), sub("a", "GET", "/sobjects")]},
         "INVALID_INPUT", "Duplicate ReferenceId provided in the request."),
        ({"compositeRequest": [{**sub("a", "GET", "/sobjects"),
                                "httpHeaders": {"If-Match": '"etag"'}}]},
         "INVALID_INPUT", "Header not allowed in a subrequest: If-Match"),
        ({"compositeRequest": [sub("a", "FETCH", "/sobjects")]},
         "JSON_PARSER_ERROR", "Invalid HTTP method: FETCH"),
    ],
)  # fmt: skip
async def test_a_malformed_composite_request_runs_nothing(
    wire: httpx.AsyncClient, body: dict[str, Any], code: str, message: str
) -> None:
    refused = await wire.post(f"{API}/composite", json=body)
    assert (refused.status_code, refused.json()) == (400, [{"message": message, "errorCode": code}])


async def test_composite_limits_and_versions(wire: httpx.AsyncClient) -> None:
    many = [sub(f"r{n}", "GET", "/sobjects") for n in range(26)]
    results = await composite(wire, *many)
    assert results == [{
        "body": [{"errorCode": "LIMIT_EXCEEDED",
                  "message": "The request can’t contain more than 25 operations."}],
        "httpHeaders": {}, "httpStatusCode": 400, "referenceId": None,
    }]  # fmt: skip
    old = await wire.post("/services/data/v37.0/composite", json={"compositeRequest": many[:1]})
    assert (old.status_code, old.json()) == (404, NOT_FOUND)
    batched = [sub("limits", "GET", "/limits"), sub("q", "GET", "/query?q=SELECT+Id+FROM+User")]
    limits, users = await composite(wire, *batched, collateSubrequests=True)
    assert (limits["httpStatusCode"], limits["body"]) == (404, NOT_FOUND)
    assert users["httpStatusCode"] == 200


async def test_a_batch_writes_and_halts_on_error_when_asked(fresh: httpx.AsyncClient) -> None:
    account = ACCOUNTS[3]
    batch = [
        {"method": "PATCH", "url": f"v61.0/sobjects/Account/{account.id}",
         "richInput": {"Segment__c": "Enterprise"}},
        {"method": "GET", "url": f"v61.0/sobjects/Account/{account.id}?fields=Segment__c"},
        {"method": "GET", "url": "v61.0/sobjects/Account/001000000000999AAA"},
        {"method": "GET", "url": "v61.0/limits"},
    ]  # fmt: skip
    body = {"batchRequests": batch, "haltOnError": True}
    answer = (await fresh.post(f"{API}/composite/batch", json=body)).json()
    url = f"{API}/sobjects/Account/{account.id}"
    assert answer == {
        "hasErrors": True,
        "results": [
            {"statusCode": 204, "result": None},
            {"statusCode": 200, "result": {"attributes": {"type": "Account", "url": url},
                                           "Segment__c": "Enterprise", "Id": account.id}},
            {"statusCode": 404, "result": NOT_FOUND},
            {"statusCode": 412, "result": [{"errorCode": "BATCH_PROCESSING_HALTED",
                                            "message": "Batch processing halted per request"}]},
        ],
    }  # fmt: skip
    unknown = await fresh.post(
        f"{API}/composite/batch",
        json={"batchRequests": [{**batch[1], "binaryPartName": "file"}]},
    )
    assert unknown.json() == [
        {"message": 'Unrecognized field "binaryPartName"', "errorCode": "JSON_PARSER_ERROR"}
    ]
