"""``LogAccountActivity`` end to end over real HTTP: the command's checks, the CRM connector's
upsert of a completed Task by ``Opsgraph_Ref__c``, and the Salesforce sandbox answering it
as an org does (driven by the connector, by httpx and by simple-salesforce)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from connectors.commands import InvalidCommand, LogAccountActivity
from connectors.crm import CrmConnector, connect
from connectors.crm.errors import FieldNotWritable
from connectors.errors import UpstreamNotFound, UpstreamRejected
from connectors.models import ConnectorConfig, ObjectKind, SystemName
from connectors.sandbox.crm import create_app
from tests.connectors.conftest import running_sandbox
from tests.connectors.crm_helpers import ACCOUNTS, API, SEEDED, SESSION
from tests.connectors.sandbox.test_crm_vendor_client import client

CREDIT = "a service credit of 150.00 USD was approved for case 123 (memo 456)"
TASKS = f"{API}/sobjects/Task"
MISSING_ACCOUNT = "001000000000999AAA"


def note(ref: str = "credit-123", **changes: Any) -> LogAccountActivity:
    fields = {"account_id": ACCOUNTS[0].id, "subject": "Service credit approved",
              "description": CREDIT, "external_ref": ref}  # fmt: skip
    return LogAccountActivity(**{**fields, **changes})


@pytest.fixture
def org() -> Iterator[tuple[str, httpx.Client]]:
    """An org of its own: each test counts the Tasks and requests it made."""
    with running_sandbox(create_app, SEEDED) as running:
        yield running


@pytest.fixture
async def crm(org: tuple[str, httpx.Client]) -> AsyncIterator[CrmConnector]:
    connector = connect(ConnectorConfig(base_url=org[0], secret="sandbox-secret"))
    yield connector
    await connector.aclose()


@pytest.fixture
async def wire(org: tuple[str, httpx.Client]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=org[0], headers=SESSION, timeout=10) as http:
        yield http


def served(org: tuple[str, httpx.Client]) -> dict[str, int]:
    requests: dict[str, int] = org[1].get("/_sandbox/stats").json()["requests"]
    return requests


async def tasks_of(wire: httpx.AsyncClient, account_id: str) -> list[dict[str, Any]]:
    soql = (
        "SELECT Id, Subject, Description, Status, TaskSubtype, Opsgraph_Ref__c, ActivityDate "
        f"FROM Task WHERE WhatId = '{account_id}'"
    )
    answer = await wire.get(f"{API}/query", params={"q": soql})
    assert answer.status_code == 200, answer.json()
    return [{k: v for k, v in r.items() if k != "attributes"} for r in answer.json()["records"]]


# -- the connector ----------------------------------------------------------------------------


async def test_a_note_is_logged_once_per_external_ref(
    crm: CrmConnector, wire: httpx.AsyncClient, org: tuple[str, httpx.Client]
) -> None:
    before = datetime.now(UTC).date().isoformat()
    first = await crm.write(note(), "key-1")
    again = await crm.write(note(), "key-2")  # another key: the ref alone decides
    after = datetime.now(UTC).date().isoformat()
    assert (first.system, first.kind, first.created) == (SystemName.CRM, ObjectKind.ACCOUNT, True)
    assert first.id.startswith("00T")
    assert (again.id, again.created) == (first.id, False)
    # the create carries TaskSubtype, which the org refuses on the update: one retry without it
    assert served(org) == {f"PATCH {TASKS}/Opsgraph_Ref__c/credit-123": 3}
    [task] = await tasks_of(wire, ACCOUNTS[0].id)
    assert task.pop("ActivityDate") in (before, after)
    assert task == {"Id": first.id, "Subject": "Service credit approved", "Description": CREDIT,
                    "Status": "Completed", "TaskSubtype": "Task",
                    "Opsgraph_Ref__c": "credit-123"}  # fmt: skip


async def test_the_same_ref_with_new_words_updates_the_one_task(
    crm: CrmConnector, wire: httpx.AsyncClient
) -> None:
    first = await crm.write(note(), "key-1")
    amended = await crm.write(note(description=f"{CREDIT}; refunded"), "key-2")
    other = await crm.write(note("credit-124"), "key-3")
    assert (amended.id, amended.created, other.created) == (first.id, False, True)
    tasks = {t["Opsgraph_Ref__c"]: t for t in await tasks_of(wire, ACCOUNTS[0].id)}
    assert sorted(tasks) == ["credit-123", "credit-124"]
    assert tasks["credit-123"]["Description"] == f"{CREDIT}; refunded"
    assert tasks["credit-123"]["TaskSubtype"] == "Task"  # set when it was created, kept


async def test_the_longest_note_the_command_allows_is_one_salesforce_takes(
    crm: CrmConnector, wire: httpx.AsyncClient
) -> None:
    longest = note("r" * 80, subject="s" * 255, description="d" * 32_000)
    written = await crm.write(longest, "key-1")
    [task] = await tasks_of(wire, ACCOUNTS[0].id)
    assert (task["Id"], task["Opsgraph_Ref__c"], len(task["Description"])) == (
        written.id, "r" * 80, 32_000,
    )  # fmt: skip


async def test_a_follow_up_is_an_open_task_for_whoever_owns_the_account(
    crm: CrmConnector, wire: httpx.AsyncClient, org: tuple[str, httpx.Client]
) -> None:
    account = ACCOUNTS[1]
    written = await crm.write(note(account_id=account.id, follow_up_on=date(2026, 12, 10)), "k")
    assert served(org) == {
        f"GET {API}/sobjects/Account/{account.id}": 1,
        f"PATCH {TASKS}/Opsgraph_Ref__c/credit-123": 1,
    }
    owner = (await wire.get(f"{API}/sobjects/Account/{account.id}")).json()["OwnerId"]
    task = (await wire.get(f"{TASKS}/{written.id}")).json()
    assert {k: task[k] for k in ("WhatId", "OwnerId", "Status", "Priority", "ActivityDate")} == {
        "WhatId": account.id, "OwnerId": owner, "Status": "Not Started", "Priority": "High",
        "ActivityDate": "2026-12-10",
    }  # fmt: skip
    users = (
        await wire.get(f"{API}/query", params={"q": f"SELECT Name FROM User WHERE Id = '{owner}'"})
    ).json()
    assert [u["Name"] for u in users["records"]] == [account.owner]


async def test_a_follow_up_on_an_unknown_account_is_not_found_and_not_logged(
    crm: CrmConnector, org: tuple[str, httpx.Client]
) -> None:
    with pytest.raises(UpstreamNotFound):
        await crm.write(note(account_id=MISSING_ACCOUNT, follow_up_on=date(2026, 12, 10)), "k")
    assert served(org) == {f"GET {API}/sobjects/Account/{MISSING_ACCOUNT}": 1}


async def test_an_unknown_account_is_not_found(
    crm: CrmConnector, wire: httpx.AsyncClient, org: tuple[str, httpx.Client]
) -> None:
    with pytest.raises(UpstreamNotFound) as err:
        await crm.write(note(account_id=MISSING_ACCOUNT), "key-1")
    assert err.value.message == "crm: INVALID_CROSS_REFERENCE_KEY: invalid cross reference id"
    assert served(org) == {f"PATCH {TASKS}/Opsgraph_Ref__c/credit-123": 1}
    assert await tasks_of(wire, MISSING_ACCOUNT) == []


async def test_the_id_of_another_kind_of_record_is_rejected(
    crm: CrmConnector, org: tuple[str, httpx.Client]
) -> None:
    user_id = "005000000000001AAA"  # the org's integration user
    with pytest.raises(UpstreamRejected) as err:
        await crm.write(note(account_id=user_id), "key-1")
    assert not isinstance(err.value, FieldNotWritable)
    assert err.value.message == (
        "crm rejected the request: FIELD_INTEGRITY_EXCEPTION: "
        f"Related To ID: id value of incorrect type: {user_id}"
    )
    assert served(org) == {f"PATCH {TASKS}/Opsgraph_Ref__c/credit-123": 1}  # not retried


async def test_a_malformed_account_id_is_refused_without_a_call(
    crm: CrmConnector, org: tuple[str, httpx.Client]
) -> None:
    with pytest.raises(UpstreamRejected) as err:
        await crm.write(note(account_id="acme-labs"), "key-1")
    assert err.value.message == "crm: 'acme-labs' is not an account id"
    assert (crm.calls, served(org)) == (0, {})


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"account_id": ""}, "account_id must be a non-empty string"),
        ({"subject": ""}, "subject must be a non-empty string"),
        ({"subject": "s" * 256}, "subject must be at most 255 characters"),
        ({"description": ""}, "description must be a non-empty string"),
        ({"description": "d" * 32_001}, "description must be at most 32000 characters"),
        ({"external_ref": ""}, "external_ref must be a non-empty string"),
        ({"external_ref": "r" * 81}, "external_ref must be at most 80 characters"),
        ({"description": None}, "description must be a non-empty string"),
        ({"follow_up_on": "2026-12-10"}, "follow_up_on must be a date"),
        ({"follow_up_on": datetime(2026, 12, 10, tzinfo=UTC)}, "follow_up_on must be a date"),
    ],
)
def test_a_malformed_note_is_refused_before_anything_is_sent(
    changes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidCommand) as refused:
        note(**changes)
    assert refused.value.message == f"LogAccountActivity: {problem}"


# -- the sandbox, on the wire -----------------------------------------------------------------


def task_body(account_id: str, **changes: Any) -> dict[str, Any]:
    return {"WhatId": account_id, "Subject": "Service credit approved", "Description": CREDIT,
            "Status": "Completed", "ActivityDate": "2026-11-02", "TaskSubtype": "Task",
            **changes}  # fmt: skip


async def test_a_task_upsert_answers_as_salesforce_does(wire: httpx.AsyncClient) -> None:
    url = f"{TASKS}/Opsgraph_Ref__c/ref-1"
    created = await wire.patch(url, json=task_body(ACCOUNTS[2].id))
    new_id = created.json()["id"]
    assert (created.status_code, created.json()) == (
        201, {"id": new_id, "success": True, "errors": [], "created": True}
    )  # fmt: skip
    assert created.headers["location"] == f"{TASKS}/{new_id}"
    again = await wire.patch(url, json=task_body(ACCOUNTS[2].id))
    assert (again.status_code, again.json()[0]["errorCode"], again.json()[0]["fields"]) == (
        400, "INVALID_FIELD_FOR_INSERT_UPDATE", ["TaskSubtype"]
    )  # fmt: skip
    body = task_body(ACCOUNTS[2].id, Subject="Credit approved")
    del body["TaskSubtype"]
    updated = await wire.patch(url, json=body)
    assert (updated.status_code, updated.json()) == (
        200, {"id": new_id, "success": True, "errors": [], "created": False}
    )  # fmt: skip
    task = (await wire.get(f"{TASKS}/{new_id}")).json()
    assert {k: task[k] for k in ("Subject", "WhatId", "Status", "Priority", "TaskSubtype",
                                 "ActivityDate", "Opsgraph_Ref__c")} == {
        "Subject": "Credit approved", "WhatId": ACCOUNTS[2].id, "Status": "Completed",
        "Priority": "Normal", "TaskSubtype": "Task", "ActivityDate": "2026-11-02",
        "Opsgraph_Ref__c": "ref-1",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("what_id", "code", "message"),
    [
        ("acme", "MALFORMED_ID", "Related To ID: id value of incorrect type: acme"),
        ("005000000000001AAA", "FIELD_INTEGRITY_EXCEPTION",
         "Related To ID: id value of incorrect type: 005000000000001AAA"),
        (MISSING_ACCOUNT, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"),
    ],
)  # fmt: skip
async def test_a_task_relates_to_an_account_of_the_org(
    wire: httpx.AsyncClient, what_id: str, code: str, message: str
) -> None:
    refused = await wire.patch(f"{TASKS}/Opsgraph_Ref__c/ref-2", json=task_body(what_id))
    assert (refused.status_code, refused.json()) == (
        400, [{"message": message, "errorCode": code, "fields": ["WhatId"]}]
    )  # fmt: skip


async def test_a_tasks_comments_are_long_text_never_filtered_on(wire: httpx.AsyncClient) -> None:
    described = (await wire.get(f"{TASKS}/describe")).json()
    fields = {f["name"]: f for f in described["fields"]}
    comments = fields["Description"]
    assert (comments["type"], comments["length"], comments["filterable"]) == (
        "textarea", 32000, False
    )  # fmt: skip
    assert (fields["TaskSubtype"]["createable"], fields["TaskSubtype"]["updateable"]) == (
        True, False
    )  # fmt: skip
    assert [n for n, f in fields.items() if f["externalId"]] == ["Opsgraph_Ref__c"]
    soql = "SELECT Id FROM Task WHERE Description = 'x'"
    refused = await wire.get(f"{API}/query", params={"q": soql})
    assert (refused.status_code, refused.json()) == (400, [{
        "message": "field 'Description' can not be filtered in a query call",
        "errorCode": "INVALID_FIELD"}])  # fmt: skip


# -- the sandbox, through Salesforce's own client ---------------------------------------------


def test_simple_salesforce_upserts_a_task_and_reads_an_accounts_tasks(
    org: tuple[str, httpx.Client],
) -> None:
    sf = client(org)
    account, body = ACCOUNTS[3], task_body(ACCOUNTS[3].id)
    assert sf.Task.upsert("Opsgraph_Ref__c/ref-1", body) == 201
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Task.upsert("Opsgraph_Ref__c/ref-1", body)
    assert refused.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    del body["TaskSubtype"]
    assert sf.Task.upsert("Opsgraph_Ref__c/ref-1", {**body, "Subject": "Credit approved"}) == 200
    task = sf.Task.get_by_custom_id("Opsgraph_Ref__c", "ref-1")
    assert sf.Task.get(task["Id"]) == task
    result = sf.query(f"SELECT Id, Subject, What.Name FROM Task WHERE WhatId = '{account.id}'")
    url = f"/services/data/v59.0/sobjects/Task/{task['Id']}"
    what = result["records"][0]["What"]
    assert result == {
        "totalSize": 1,
        "done": True,
        "records": [{"attributes": {"type": "Task", "url": url}, "Id": task["Id"],
                     "Subject": "Credit approved",
                     "What": {"attributes": what["attributes"], "Name": account.name}}],
    }  # fmt: skip
