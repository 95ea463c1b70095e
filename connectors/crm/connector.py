"""The CRM connector: Salesforce REST API v61.0, Accounts only.

Reads are SOQL (``fetch_many`` is one ``WHERE Id IN (...)`` per batch, ``list`` pages by
``nextRecordsUrl``); writes are upserts by the external id ``Opsgraph_Id__c`` and updates
by record id; the change feed is ``sobjects/Account/updated``. There are no webhooks:
Salesforce's Outbound Messages are unsigned SOAP and Change Data Capture needs a streaming
(Pub/Sub API) client, so the gateway polls ``changes`` instead.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from connectors.base import Connector
from connectors.crm.client import SalesforceHttp, describe
from connectors.crm.wire import (
    ACCOUNT_FIELDS,
    API,
    account_fields,
    account_from_wire,
    is_record_id,
    parse_sf_datetime,
    select,
    sf_datetime,
    soql_in,
    soql_literal,
)
from connectors.errors import UpstreamConflict, UpstreamError, UpstreamRejected
from connectors.models import (
    Account,
    ChangeBatch,
    ChangeEvent,
    ChangeType,
    ConnectorConfig,
    Health,
    ObjectKind,
    Page,
    Record,
    SystemName,
    WriteCommand,
    WriteResult,
)

# Salesforce serves ``updated`` for no more than 30 days back: the furthest a first poll
# can look. Older history is what ``list`` is for.
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


def _chunks(items: Sequence[str], size: int) -> builtins.list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class CrmConnector(Connector):
    system = SystemName.CRM
    reads = frozenset({ObjectKind.ACCOUNT})
    writes = frozenset({ObjectKind.ACCOUNT})
    # 200 18-character ids keep a query URL near 6 KB, well inside Salesforce's 16 KB limit.
    batch_limit = 200
    composite_limit = 25  # subrequests per Composite Batch request

    def __init__(
        self, config: ConnectorConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._http = SalesforceHttp(
            self.system.value,
            config.base_url,
            headers={"Authorization": f"Bearer {config.secret}", "Accept": "application/json"},
            timeout=config.timeout,
            describe=describe,
            transport=transport,
            max_connections=config.max_connections,
        )

    @property
    def calls(self) -> int:
        return self._http.calls

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- reads -----------------------------------------------------------------------

    async def _query(self, soql: str, batch_size: int | None = None) -> dict[str, Any]:
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"} if batch_size else None
        body: dict[str, Any] = await self._http.json(
            "GET", f"{API}/query", params={"q": soql}, headers=headers
        )
        return body

    async def _query_all(self, soql: str) -> builtins.list[dict[str, Any]]:
        body = await self._query(soql)
        records: builtins.list[dict[str, Any]] = builtins.list(body["records"])
        while not body["done"]:
            body = await self._http.json("GET", body["nextRecordsUrl"])
            records.extend(body["records"])
        return records

    async def fetch_many(
        self, kind: ObjectKind, ids: Sequence[str]
    ) -> builtins.list[Record | None]:
        if kind not in self.reads:
            raise self._refuse(kind)
        wanted = [i for i in dict.fromkeys(ids) if is_record_id(i)]
        found: dict[str, Record] = {}
        for chunk in _chunks(wanted, self.batch_limit):
            rows = await self._query_all(select(ACCOUNT_FIELDS, f"Id IN {soql_in(chunk)}"))
            found.update((row["Id"], account_from_wire(row)) for row in rows)
        return [found.get(i) for i in ids]

    async def list(
        self,
        kind: ObjectKind,
        *,
        cursor: str | None = None,
        limit: int = 100,
        filters: Mapping[str, str] | None = None,
    ) -> Page:
        if kind not in self.reads:
            raise self._refuse(kind)
        if limit < 1:
            raise UpstreamRejected("crm: a page holds at least one record", system="crm")
        size = min(limit, MAX_BATCH_SIZE)
        if cursor is not None:
            if not cursor.startswith(f"{API}/query/"):
                raise UpstreamRejected("crm: that is not a CRM page cursor", system="crm")
            body = await self._http.json(
                "GET", cursor, headers={"Sforce-Query-Options": f"batchSize={size}"}
            )
        else:
            where = _where(filters or {})
            if where is None:
                return Page(items=[], cursor=None)
            body = await self._query(select(ACCOUNT_FIELDS, where, order_by="Id"), size)
        items = [account_from_wire(row) for row in body["records"]]
        return Page(items=items, cursor=None if body["done"] else body["nextRecordsUrl"])

    async def fetch_composite(self, ids: Sequence[str]) -> builtins.list[Account | None]:
        """Accounts by id through Composite Batch: 25 sObject GETs per request, then one
        SOQL query for the owners' names, which an sObject row does not carry (only
        ``OwnerId``). The same answer as ``fetch_many`` by a second route."""
        wanted = [i for i in dict.fromkeys(ids) if is_record_id(i)]
        rows: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(wanted, self.composite_limit):
            batch = [{"method": "GET", "url": f"v61.0/sobjects/Account/{i}"} for i in chunk]
            body = await self._http.json(
                "POST", f"{API}/composite/batch", json={"batchRequests": batch}
            )
            for id_, result in zip(chunk, body["results"], strict=True):
                if result["statusCode"] == 200:
                    rows[id_] = result["result"]
                elif result["statusCode"] != 404:
                    failed = httpx.Response(result["statusCode"], json=result["result"])
                    raise self._http.error_for(failed)
        owners = sorted({r["OwnerId"] for r in rows.values() if r.get("OwnerId")})
        names: dict[str, str] = {}
        for chunk in _chunks(owners, self.batch_limit):
            users = await self._query_all(
                select(("Id", "Name"), f"Id IN {soql_in(chunk)}", sobject="User")
            )
            names.update((u["Id"], u["Name"]) for u in users)

        def account(row: dict[str, Any] | None) -> Account | None:
            if row is None:
                return None
            owner = names.get(row.get("OwnerId") or "")
            return account_from_wire({**row, "Owner": {"Name": owner} if owner else None})

        return [account(rows.get(i)) for i in ids]

    # -- writes ----------------------------------------------------------------------

    async def write(self, command: WriteCommand, idempotency_key: str) -> WriteResult:
        """Salesforce's REST API has no idempotency header. ``upsert`` is keyed by the
        external id ``Opsgraph_Id__c`` (the account's ``ref``) and ``update_health`` sets
        a value: sending either again leaves the same single record with the same fields,
        so the retry that ``idempotency_key`` guards against is harmless without it."""
        if command.kind not in self.writes:
            raise self._refuse(command.kind, "write")
        if command.action == "upsert":
            return await self._upsert(command.payload)
        if command.action == "update_health":
            return await self._update_health(command.payload)
        raise UpstreamRejected(f"crm cannot {command.action} an account", system="crm")

    async def _upsert(self, payload: Mapping[str, Any]) -> WriteResult:
        ref = payload.get("ref")
        if not isinstance(ref, str) or not ref:
            raise UpstreamRejected("crm: an account upsert needs its ref", system="crm")
        fields = account_fields(payload)
        # Salesforce always has an owner: an account created without one is the API user's.
        if payload.get("owner") is not None:
            fields["OwnerId"] = await self._user_id(payload["owner"])
        url = f"{API}/sobjects/Account/Opsgraph_Id__c/{quote(ref, safe='')}"
        response = await self._http.request("PATCH", url, json=fields)
        if response.status_code in (300, 404):
            raise self._http.error_for(response)
        if response.status_code == 204:  # an update, as API versions before 46.0 answer it
            return self._written(await self._id_for_ref(ref), created=False)
        body = response.json()
        return self._written(body["id"], created=body.get("created", response.status_code == 201))

    async def _update_health(self, payload: Mapping[str, Any]) -> WriteResult:
        id_ = payload.get("id")
        if not isinstance(id_, str) or not is_record_id(id_) or "health_score" not in payload:
            raise UpstreamRejected(
                "crm: update_health needs an account id and a score", system="crm"
            )
        fields = account_fields({"health_score": payload["health_score"]})
        response = await self._http.request("PATCH", f"{API}/sobjects/Account/{id_}", json=fields)
        if response.status_code == 404:
            raise self._http.error_for(response)
        return self._written(id_, created=False)

    def _written(self, id_: str, *, created: bool) -> WriteResult:
        return WriteResult(system=self.system, kind=ObjectKind.ACCOUNT, id=id_, created=created)

    async def _user_id(self, name: Any) -> str:
        if not isinstance(name, str):
            raise UpstreamRejected("crm: an account owner is a user's name", system="crm")
        where = f"Name = {soql_literal(name)} AND IsActive = true"
        users = await self._query_all(select(("Id",), where, sobject="User", limit=2))
        if not users:
            raise UpstreamRejected(f"crm has no active user named {name!r}", system="crm")
        if len(users) > 1:
            raise UpstreamConflict(f"crm has several users named {name!r}", system="crm")
        return str(users[0]["Id"])

    async def _id_for_ref(self, ref: str) -> str:
        rows = await self._query_all(select(("Id",), f"Opsgraph_Id__c = {soql_literal(ref)}"))
        if len(rows) != 1:
            raise UpstreamConflict(f"crm: {len(rows)} accounts carry ref {ref!r}", system="crm")
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
            raise UpstreamRejected("crm: that is not a CRM change cursor", system="crm") from None
        if sf_datetime(now) <= sf_datetime(start):  # an empty window; Salesforce refuses it
            return ChangeBatch(events=[], cursor=since or sf_datetime(start), has_more=False)
        body = await self._http.json(
            "GET",
            f"{API}/sobjects/Account/updated/",
            params={"start": sf_datetime(start), "end": sf_datetime(now)},
        )
        events: builtins.list[ChangeEvent] = []
        for chunk in _chunks(body["ids"], self.batch_limit):
            where = f"Id IN {soql_in(chunk)}"
            for row in await self._query_all(
                select(("Id", "CreatedDate", "LastModifiedDate"), where)
            ):
                created = parse_sf_datetime(row["CreatedDate"]) > start
                events.append(
                    ChangeEvent(
                        system=self.system,
                        kind=ObjectKind.ACCOUNT,
                        id=row["Id"],
                        occurred_at=parse_sf_datetime(row["LastModifiedDate"]),
                        type=ChangeType.CREATED if created else ChangeType.UPDATED,
                    )
                )
        events.sort(key=lambda e: (e.occurred_at, e.id))
        return ChangeBatch(events=events, cursor=body["latestDateCovered"], has_more=False)

    async def health(self) -> Health:
        """``limits`` is Salesforce's cheapest authenticated call, and it says how much of
        the org's daily API allowance is left: none left is unhealthy."""
        started = time.monotonic()
        try:
            body = await self._http.json("GET", f"{API}/limits")
        except UpstreamError as exc:
            return Health(
                system=self.system, healthy=False, latency_ms=_ms(started), detail=exc.message
            )
        daily = body.get("DailyApiRequests", {})
        remaining, maximum = daily.get("Remaining", 0), daily.get("Max", 0)
        return Health(
            system=self.system,
            healthy=remaining > 0,
            latency_ms=_ms(started),
            detail=f"{remaining} of {maximum} daily API requests left",
        )


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _where(filters: Mapping[str, str]) -> str | None:
    """The WHERE clause for list filters; None when no account can match."""
    clauses = []
    for key, value in filters.items():
        field = FILTERS.get(key)
        if field is None:
            raise UpstreamRejected(f"crm cannot filter accounts by {key!r}", system="crm")
        if field == "Id" and not is_record_id(value):
            return None
        clauses.append(f"{field} = {soql_literal(value)}")
    return " AND ".join(clauses)
