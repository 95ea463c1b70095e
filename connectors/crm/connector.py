"""The CRM connector: Salesforce REST API v61.0, Accounts (and the Tasks logged on them).

Reads are SOQL (``fetch_many`` is one ``WHERE Id IN (...)`` per batch, pages follow
``nextRecordsUrl``); writes are upserts by an external id (an Account's ``Opsgraph_Id__c``,
a Task's ``Opsgraph_Ref__c``) and updates by record id; the change feed is
``sobjects/Account/updated``. There are no webhooks: Salesforce's Outbound Messages are
unsigned SOAP and Change Data Capture needs a streaming (Pub/Sub API) client, so the
gateway polls ``changes`` instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from connectors import paging
from connectors.base import Connector, Writer
from connectors.commands import (
    LogAccountActivity,
    UpdateAccountHealth,
    UpsertAccount,
    WriteCommand,
    WriteResult,
)
from connectors.crm import errors
from connectors.crm.wire import (
    ACCOUNT_FIELDS,
    API,
    TASK_CREATE_ONLY,
    TASK_REF,
    account_change,
    account_fields,
    account_from_wire,
    is_record_id,
    parse_sf_datetime,
    select,
    sf_datetime,
    soql_in,
    soql_literal,
    task_fields,
)
from connectors.errors import UpstreamConflict, UpstreamRateLimited
from connectors.http import BearerToken, HttpClient
from connectors.models import (
    Account,
    ChangeBatch,
    ChangeEvent,
    ConnectorConfig,
    ObjectKind,
    Page,
    Record,
    SystemName,
)

# Salesforce serves ``updated`` for no more than 30 days back: the furthest a first poll
# can look. Older history is what ``list_page`` is for.
LOOKBACK = timedelta(days=30)
# Salesforce honours batchSize between 200 and 2000 and treats it as a hint.
MAX_BATCH_SIZE = 2000
# canonical list filter -> the field it compares
FILTERS = {
    "ref": "Opsgraph_Id__c",
    "customer": "Id",
    "segment": "Segment__c",
    "owner": "Owner.Name",
}
Row = dict[str, Any]


class CrmConnector(Connector):
    """Salesforce's REST API has no idempotency header. ``UpsertAccount`` is keyed by the
    external id ``Opsgraph_Id__c`` (the account's ``ref``), ``LogAccountActivity`` by the
    Task's ``Opsgraph_Ref__c`` (its ``external_ref``), and ``UpdateAccountHealth`` sets a
    value: sending any of them again leaves the same single record with the same fields,
    so the retry that an idempotency key guards against is harmless without it."""

    system = SystemName.CRM
    reads = frozenset({ObjectKind.ACCOUNT})
    # 200 18-character ids keep a query URL near 6 KB, well inside Salesforce's 16 KB limit.
    batch_limit = 200
    composite_limit = 25  # subrequests per Composite Batch request

    def __init__(
        self, config: ConnectorConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__()
        bearer = BearerToken(config.secret)
        self._http = HttpClient(self.system, config, errors, self.requests, transport, auth=bearer)

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- reads -----------------------------------------------------------------------

    def _may_exist(self, kind: ObjectKind, id_: str) -> bool:
        return is_record_id(id_)

    async def _fetch_batch(self, kind: ObjectKind, ids: Sequence[str]) -> Mapping[str, Record]:
        rows = await self._query_all(select(ACCOUNT_FIELDS, f"Id IN {soql_in(ids)}"))
        return {row["Id"]: account_from_wire(row) for row in rows}

    async def _list_page(
        self, kind: ObjectKind, cursor: str | None, limit: int, filters: Mapping[str, str]
    ) -> Page[Record]:
        if limit < 1:
            raise self._rejected(f"{self.system}: a page holds at least one record")
        soql = ""
        if cursor is None:
            where = self._where(filters)
            if where is None:
                return Page(items=[], cursor=None)
            soql = select(ACCOUNT_FIELDS, where, order_by="Id")
        elif not cursor.startswith(f"{API}/query/"):
            raise self._rejected(f"{self.system}: that is not a CRM page cursor")
        rows = await self._query_page(soql, cursor, min(limit, MAX_BATCH_SIZE))
        return Page(items=[account_from_wire(row) for row in rows.items], cursor=rows.cursor)

    async def _query_page(
        self, soql: str, cursor: str | None, batch_size: int | None = None
    ) -> Page[Row]:
        """One page of a SOQL query: the first (no cursor), or the one at the
        ``nextRecordsUrl`` the page before named."""
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"} if batch_size else None
        if cursor is None:
            body = await self._http.json("GET", f"{API}/query", params={"q": soql}, headers=headers)
        else:
            body = await self._http.json("GET", cursor, headers=headers)
        return Page(items=body["records"], cursor=None if body["done"] else body["nextRecordsUrl"])

    async def _query_all(self, soql: str) -> list[Row]:
        return await paging.collect(lambda cursor: self._query_page(soql, cursor))

    async def fetch_composite(self, ids: Sequence[str]) -> list[Account | None]:
        """Accounts by id through Composite Batch: 25 sObject GETs per request, then one
        SOQL query for the owners' names, which an sObject row does not carry (only
        ``OwnerId``). The same answer as ``fetch_many`` by a second route."""
        rows: dict[str, Row] = {}
        for batch in paging.batches(filter(is_record_id, ids), self.composite_limit):
            subrequests = [{"method": "GET", "url": f"v61.0/sobjects/Account/{i}"} for i in batch]
            body = await self._http.json(
                "POST", f"{API}/composite/batch", json={"batchRequests": subrequests}
            )
            for id_, result in zip(batch, body["results"], strict=True):
                if result["statusCode"] == 200:
                    rows[id_] = result["result"]
                elif result["statusCode"] != 404:
                    failed = httpx.Response(result["statusCode"], json=result["result"])
                    raise self._http.error_for(failed)
        owners = sorted({r["OwnerId"] for r in rows.values() if r.get("OwnerId")})
        names: dict[str, str] = {}
        for batch in paging.batches(owners, self.batch_limit):
            users = await self._query_all(
                select(("Id", "Name"), f"Id IN {soql_in(batch)}", sobject="User")
            )
            names.update((u["Id"], u["Name"]) for u in users)

        def account(row: Row | None) -> Account | None:
            if row is None:
                return None
            owner = names.get(row.get("OwnerId") or "")
            return account_from_wire({**row, "Owner": {"Name": owner} if owner else None})

        return [account(rows.get(i)) for i in ids]

    def _where(self, filters: Mapping[str, str]) -> str | None:
        """The WHERE clause for list filters; None when no account can match."""
        clauses = []
        for key, value in filters.items():
            field = FILTERS.get(key)
            if field is None:
                raise self._rejected(f"{self.system} cannot filter accounts by {key!r}")
            if field == "Id" and not is_record_id(value):
                return None
            clauses.append(f"{field} = {soql_literal(value)}")
        return " AND ".join(clauses)

    # -- writes ----------------------------------------------------------------------

    def _writers(self) -> Mapping[type[WriteCommand], Writer]:
        return {
            UpsertAccount: self._upsert,
            UpdateAccountHealth: self._update_health,
            LogAccountActivity: self._log_activity,
        }

    async def _upsert(self, command: UpsertAccount, idempotency_key: str) -> WriteResult:
        fields = account_fields(command.given())
        # Salesforce always has an owner: an account created without one is the API user's.
        if command.owner is not None:
            fields["OwnerId"] = await self._user_id(command.owner)
        url = f"{API}/sobjects/Account/Opsgraph_Id__c/{quote(command.ref, safe='')}"
        response = await self._http.request("PATCH", url, json=fields)
        return await self._upserted(response, "Account", "Opsgraph_Id__c", command.ref)

    async def _log_activity(self, command: LogAccountActivity, idempotency_key: str) -> WriteResult:
        """A Task on the account, upserted by its ``external_ref``: the same ref again
        updates that one Task. A follow-up is assigned to the account's owner, read first.
        Salesforce sets ``TaskSubtype`` only on a create and refuses an upsert that finds
        the Task and carries it, so a refusal naming it is the Task already there: it is
        updated without it (and never created)."""
        if not is_record_id(command.account_id):
            raise self._rejected(f"{self.system}: {command.account_id!r} is not an account id")
        url = f"{API}/sobjects/Task/{TASK_REF}/{quote(command.external_ref, safe='')}"
        fields = task_fields(command, datetime.now(UTC).date())
        if command.follow_up_on is not None:
            fields["OwnerId"] = await self._owner_id(command.account_id)
        try:
            response = await self._http.request("PATCH", url, json={**fields, **TASK_CREATE_ONLY})
        except errors.FieldNotWritable as refused:
            if not set(refused.fields) & TASK_CREATE_ONLY.keys():
                raise
            params = {"updateOnly": "true"}
            response = await self._http.request("PATCH", url, params=params, json=fields)
        return await self._upserted(response, "Task", TASK_REF, command.external_ref)

    async def _upserted(
        self, response: httpx.Response, sobject: str, field: str, value: str
    ) -> WriteResult:
        """What an upsert by external id wrote: 201 created, 200 updated (204 before API
        46.0, without the record's id, which its external id then finds)."""
        if response.status_code in (300, 404):
            raise self._http.error_for(response)
        if response.status_code == 204:
            return self._written(await self._id_by(sobject, field, value), created=False)
        body = response.json()
        return self._written(body["id"], created=body.get("created", response.status_code == 201))

    async def _update_health(
        self, command: UpdateAccountHealth, idempotency_key: str
    ) -> WriteResult:
        if not is_record_id(command.id):
            raise self._rejected(f"{self.system}: {command.id!r} is not an account id")
        fields = account_fields(command.given())
        url = f"{API}/sobjects/Account/{command.id}"
        response = await self._http.request("PATCH", url, json=fields)
        if response.status_code == 404:
            raise self._http.error_for(response)
        return self._written(command.id, created=False)

    def _written(self, id_: str, *, created: bool) -> WriteResult:
        """Every CRM write is an account's: a Task logged on one answers as ``account``, with
        the Task's id (ObjectKind has no activity)."""
        return WriteResult(system=self.system, kind=ObjectKind.ACCOUNT, id=id_, created=created)

    async def _owner_id(self, account_id: str) -> str:
        """The User id of whoever owns the account (Salesforce always has one)."""
        url = f"{API}/sobjects/Account/{account_id}"
        response = await self._http.request("GET", url, params={"fields": "OwnerId"})
        if response.status_code == 404:
            raise self._http.error_for(response)
        return str(response.json()["OwnerId"])

    async def _user_id(self, name: str) -> str:
        where = f"Name = {soql_literal(name)} AND IsActive = true"
        users = await self._query_all(select(("Id",), where, sobject="User", limit=2))
        if not users:
            raise self._rejected(f"{self.system} has no active user named {name!r}")
        if len(users) > 1:
            raise UpstreamConflict(
                f"{self.system} has several users named {name!r}", system=self.system.value
            )
        return str(users[0]["Id"])

    async def _id_by(self, sobject: str, field: str, value: str) -> str:
        """The id of the one ``sobject`` record whose external id ``field`` is ``value``."""
        where = f"{field} = {soql_literal(value)}"
        rows = await self._query_all(select(("Id",), where, sobject=sobject))
        if len(rows) != 1:
            raise UpstreamConflict(
                f"{self.system}: {len(rows)} records of {sobject} carry {field} {value!r}",
                system=self.system.value,
            )
        return str(rows[0]["Id"])

    # -- changes and health ----------------------------------------------------------

    async def changes(self, since: str | None) -> ChangeBatch:
        """Accounts changed after ``since`` (a ``latestDateCovered``). Salesforce reports
        only ids, so one SOQL query per batch tells created from updated by CreatedDate.

        Real Salesforce ignores the seconds of ``start``/``end``: poll it at most once a
        minute. The sandbox is exact to the millisecond so tests need not wait. A cursor
        older than 30 days is refused (INVALID_REPLICATION_DATE): list the accounts again."""
        now = datetime.now(UTC)
        try:
            start = parse_sf_datetime(since) if since else now - LOOKBACK
        except ValueError:
            raise self._rejected(f"{self.system}: that is not a CRM change cursor") from None
        if sf_datetime(now) <= sf_datetime(start):  # an empty window; Salesforce refuses it
            return ChangeBatch(events=[], cursor=since or sf_datetime(start), has_more=False)
        body = await self._http.json(
            "GET",
            f"{API}/sobjects/Account/updated/",
            params={"start": sf_datetime(start), "end": sf_datetime(now)},
        )
        events: list[ChangeEvent] = []
        for batch in paging.batches(body["ids"], self.batch_limit):
            where = f"Id IN {soql_in(batch)}"
            rows = await self._query_all(select(("Id", "CreatedDate", "LastModifiedDate"), where))
            events += [account_change(row, start) for row in rows]
        events.sort(key=lambda e: (e.occurred_at, e.id))
        return ChangeBatch(events=events, cursor=body["latestDateCovered"], has_more=False)

    async def _probe(self) -> str | None:
        """``limits`` is Salesforce's cheapest authenticated call, and it says how much of
        the org's daily API allowance is left: none left is unhealthy."""
        body = await self._http.json("GET", f"{API}/limits")
        daily = body.get("DailyApiRequests", {})
        remaining, maximum = daily.get("Remaining", 0), daily.get("Max", 0)
        detail = f"{remaining} of {maximum} daily API requests left"
        if remaining <= 0:
            raise UpstreamRateLimited(detail, system=self.system.value)
        return detail
