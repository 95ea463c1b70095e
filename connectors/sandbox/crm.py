"""A Salesforce org stand-in: REST API v61.0 over Accounts and the Users who own them.

    GET   /services/data/v61.0/limits                          DailyApiRequests left
    GET   /services/data/v61.0/query?q=<SOQL>                  first batch + nextRecordsUrl
    GET   /services/data/v61.0/query/<locator>-<offset>        the next batch
    GET   /services/data/v61.0/sobjects/Account/updated/?start=&end=   ids changed in between
    GET   /services/data/v61.0/sobjects/{Account|User}/<Id>    one record, every field
    PATCH /services/data/v61.0/sobjects/Account/<Id>           update: 204
    PATCH /services/data/v61.0/sobjects/Account/Opsgraph_Id__c/<value>
                                                               upsert: 201 / 200 / 300
    POST  /services/data/v61.0/composite/batch                 up to 25 GET subrequests

Errors are Salesforce's JSON array ``[{"message", "errorCode"}]``; the SOQL subset is in
``crm_soql``. Each request spends one of the org's daily API requests; when none are left
the answer is 403 REQUEST_LIMIT_EXCEEDED.

No webhooks (``config.webhook_url`` is ignored): Outbound Messages are unsigned SOAP and
Change Data Capture needs a streaming client, so the gateway polls ``updated`` instead.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.models import Account, Record
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.crm_soql import (
    API,
    CANNED,
    ID,
    TYPES,
    SfError,
    attributes,
    check_fields,
    error_body,
    ms,
    not_found,
    parse_soql,
    sf_datetime,
    soql_equal,
    utc,
)
from connectors.sandbox.faults import SandboxMiddleware
from connectors.sandbox.store import Store

DAILY_API_LIMIT = 15_000  # a Developer Edition org's allowance
MAX_CURSORS = 10  # open query cursors per user; Salesforce drops the oldest beyond that
DEFAULT_BATCH = 2000
INTEGRATION_USER = "Integration User"  # owns what the API creates without an OwnerId


class Org:
    """The org's state and operations; each answers a wire body or raises ``SfError``."""

    def __init__(self, store: Store, daily_limit: int) -> None:
        self.store, self.daily_limit, self.used = store, daily_limit, 0
        self._cursors: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._locators = 0
        # id -> (collection, CreatedDate, LastModifiedDate), read from the store's change
        # log up to change number _seen: the log is the one clock every write goes through.
        self._times: dict[str, tuple[str, datetime, datetime]] = {}
        self._seen = 0
        if not self._users(INTEGRATION_USER):
            self._add_user(INTEGRATION_USER)

    def _refresh(self) -> None:
        while rows := self.store.changes(self._seen, limit=1000):
            for _seq, collection, id_, _type, at in rows:
                when = ms(datetime.fromisoformat(at))
                self._times[id_] = (collection, self._times.get(id_, ("", when))[1], when)
            self._seen = rows[-1][0]

    def _users(self, name: str | None = None) -> list[dict[str, Any]]:
        return self.store.all("User", lambda u: name is None or u["Name"] == name)

    def _add_user(self, name: str) -> str:
        id_ = f"005{self.store.next_number('User'):012d}AAA"
        login = name.lower().replace(" ", ".") + "@opsgraph.sandbox"
        self.store.put("User", id_, {"Id": id_, "Name": name, "Username": login, "IsActive": True})
        return id_

    def seed(self, records: list[Record]) -> None:
        accounts = [r for r in records if isinstance(r, Account)]
        if len(accounts) != len(records):
            raise ValueError("the CRM sandbox holds accounts only")
        for a in accounts:
            owner = None
            if a.owner is not None:
                known = self._users(a.owner)
                owner = known[0]["Id"] if known else self._add_user(a.owner)
            # Salesforce never leaves OwnerId empty; the sandbox does when the seed has no
            # owner, so that every canonical field survives the round trip.
            renewal = a.renewal_date.isoformat() if a.renewal_date else None
            score = None if a.health_score is None else float(a.health_score)
            doc = {"Id": a.id, "Name": a.name, "Opsgraph_Id__c": a.ref, "Segment__c": a.segment,
                   "OwnerId": owner, "Strategic__c": a.strategic, "Renewal_Date__c": renewal,
                   "Health_Score__c": score}  # fmt: skip
            self.store.put("Account", a.id, doc)

    # -- reads

    def _value(self, doc: dict[str, Any], field: str, users: dict[str, Any]) -> Any:
        if field == "Owner.Name":
            owner = users.get(doc.get("OwnerId") or "")
            return owner["Name"] if owner else None
        if field in ("CreatedDate", "LastModifiedDate"):
            return self._times[doc["Id"]][1 if field == "CreatedDate" else 2]
        return doc.get(field)

    def _row(self, sobject: str, doc: dict[str, Any], fields: list[str], users: Any) -> Any:
        row: dict[str, Any] = {"attributes": attributes(sobject, doc["Id"])}
        for field in fields:
            if field == "Owner.Name":
                owner = users.get(doc.get("OwnerId") or "")
                row["Owner"] = (
                    {"attributes": attributes("User", owner["Id"]), "Name": owner["Name"]}
                    if owner
                    else None
                )
            else:
                value = self._value(doc, field, users)
                row[field] = sf_datetime(value) if isinstance(value, datetime) else value
        return row

    def select(self, soql: str) -> list[dict[str, Any]]:
        query = parse_soql(soql)
        self._refresh()
        users = {u["Id"]: u for u in self._users()}
        types = TYPES[query.sobject]

        def matches(doc: dict[str, Any]) -> bool:
            return all(
                any(soql_equal(types[f], self._value(doc, f, users), v) for v in values)
                for f, values in query.where
            )

        docs = self.store.all(query.sobject, matches)
        if query.order:
            field, descending = query.order

            def key(doc: dict[str, Any]) -> tuple[bool, Any]:
                value = self._value(doc, field, users)
                if value is None:  # nulls first ascending, last descending, as in SOQL
                    return (False, "")
                return (True, value.casefold() if isinstance(value, str) else value)

            docs.sort(key=key, reverse=descending)
        if query.limit is not None:
            docs = docs[: query.limit]
        return [self._row(query.sobject, d, query.fields, users) for d in docs]

    def query(self, soql: str, size: int) -> dict[str, Any]:
        return self._batch(None, self.select(soql), 0, size)

    def query_more(self, token: str, size: int) -> dict[str, Any]:
        locator, _, offset = token.rpartition("-")
        rows = self._cursors.get(locator)
        if rows is None or not offset.isdigit():
            raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._batch(locator, rows, int(offset), size)

    def _batch(
        self, locator: str | None, rows: list[dict[str, Any]], offset: int, size: int
    ) -> dict[str, Any]:
        end = offset + size
        body: dict[str, Any] = {"totalSize": len(rows), "done": end >= len(rows)}
        if not body["done"]:
            if locator is None:  # a cursor is a snapshot of the result, as in Salesforce
                self._locators += 1
                locator = f"01g{self._locators:012d}AAA"
                self._cursors[locator] = rows
                while len(self._cursors) > MAX_CURSORS:
                    self._cursors.popitem(last=False)
            body["nextRecordsUrl"] = f"{API}/query/{locator}-{end}"
        body["records"] = rows[offset:end]
        return body

    def get(self, sobject: str, id_: str) -> dict[str, Any]:
        if sobject not in TYPES:
            raise not_found()
        if not ID.fullmatch(id_):  # Salesforce reads a non-id here as an external id field
            raise not_found(external_id_field=id_)
        doc = self.store.get(sobject, id_)
        if doc is None:
            raise not_found()
        self._refresh()
        _, created, modified = self._times[id_]
        return {"attributes": attributes(sobject, id_), **doc, "IsDeleted": False,
                "CreatedDate": sf_datetime(created), "LastModifiedDate": sf_datetime(modified),
                "SystemModstamp": sf_datetime(modified)}  # fmt: skip

    async def updated(self, start_text: str | None, end_text: str | None) -> dict[str, Any]:
        try:
            start, end = utc(start_text or ""), utc(end_text or "")
        except ValueError:
            raise SfError(
                400, "INVALID_REPLICATION_DATE", "start and end must be dateTimes"
            ) from None
        now = datetime.now(UTC)
        if start >= end:
            raise SfError(400, "INVALID_REPLICATION_DATE", "start must precede end")
        if start.date() < (now - timedelta(days=30)).date():
            raise SfError(400, "INVALID_REPLICATION_DATE", "start is more than 30 days ago")
        # Exact to the millisecond where Salesforce drops the seconds, so that tests need
        # not wait a minute between a write and the poll that sees it.
        covered = min(ms(end), ms(now))
        # Let the covered millisecond end first: no write answered after this response may
        # carry a time inside the window it reports as covered.
        wait = covered + timedelta(milliseconds=1) - datetime.now(UTC)
        if wait > timedelta(0):
            await asyncio.sleep(wait.total_seconds() + 0.0002)
        self._refresh()
        # (start, covered]: a poller's start is the previous latestDateCovered, whose
        # answer already held the changes at that instant.
        changed = sorted(
            (modified, id_)
            for id_, (collection, _, modified) in self._times.items()
            if collection == "Account" and ms(start) < modified <= covered
        )
        return {"ids": [id_ for _, id_ in changed], "latestDateCovered": sf_datetime(covered)}

    def limits(self) -> dict[str, Any]:
        left = max(0, self.daily_limit - self.used)
        return {"DailyApiRequests": {"Max": self.daily_limit, "Remaining": left}}

    # -- writes

    def _fields(self, body: Any, *, upsert: bool) -> dict[str, Any]:
        fields = check_fields(body, upsert=upsert)
        if "OwnerId" in fields and self.store.get("User", fields["OwnerId"]) is None:
            raise SfError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        return fields

    def update(self, id_: str, body: Any) -> None:
        doc = self.store.get("Account", id_) if ID.fullmatch(id_) else None
        if doc is None:
            raise not_found()
        self.store.put("Account", id_, {**doc, **self._fields(body, upsert=False)})

    def upsert(self, field: str, value: str, body: Any) -> tuple[int, Any]:
        if field != "Opsgraph_Id__c":
            raise not_found(external_id_field=field)
        fields = self._fields(body, upsert=True)
        # External ids match case-insensitively unless the field is marked case-sensitive.
        matches = self.store.all(
            "Account", lambda d: (d.get("Opsgraph_Id__c") or "").casefold() == value.casefold()
        )
        if len(matches) > 1:
            return 300, [attributes("Account", d["Id"])["url"] for d in matches]
        if matches:
            self.store.put("Account", matches[0]["Id"], {**matches[0], **fields})
            # 200 with a body since API version 46.0; earlier versions answered 204.
            return 200, {"id": matches[0]["Id"], "success": True, "errors": [], "created": False}
        if not fields.get("Name"):
            raise SfError(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]")
        id_ = f"001{self.store.next_number('Account'):012d}AAA"
        while self.store.get("Account", id_) is not None:
            id_ = f"001{self.store.next_number('Account'):012d}AAA"
        owner = self._users(INTEGRATION_USER)[0]["Id"]
        doc = {"Id": id_, "Name": fields["Name"], "Opsgraph_Id__c": value, "Segment__c": None,
               "OwnerId": owner, "Strategic__c": False, "Renewal_Date__c": None,
               "Health_Score__c": None, **fields}  # fmt: skip
        self.store.put("Account", id_, doc)
        return 201, {"id": id_, "success": True, "errors": [], "created": True}

    def composite(self, body: Any) -> dict[str, Any]:
        requests = body.get("batchRequests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise SfError(400, "JSON_PARSER_ERROR", "batchRequests must list the subrequests")
        if len(requests) > 25:
            raise SfError(400, "INVALID_BATCH_REQUEST", "A batch holds at most 25 subrequests")
        self.used += len(requests) - 1  # every subrequest counts against the allowance
        results = [self._subrequest(r if isinstance(r, dict) else {}) for r in requests]
        return {"hasErrors": any(r["statusCode"] >= 400 for r in results), "results": results}

    def _subrequest(self, request: dict[str, Any]) -> dict[str, Any]:
        path, _, query = str(request.get("url", "")).partition("?")
        parts = path.removeprefix("/services/data/").removeprefix("/").split("/")
        try:
            if request.get("method") != "GET":
                raise SfError(405, "METHOD_NOT_ALLOWED", "The sandbox batches GET subrequests only")
            if len(parts) == 4 and parts[:2] == ["v61.0", "sobjects"]:
                return {"statusCode": 200, "result": self.get(parts[2], parts[3])}
            if parts in (["v61.0", "query"], ["v61.0", "query", ""]):
                soql = parse_qs(query).get("q", [""])[0]
                return {"statusCode": 200, "result": self.query(soql, DEFAULT_BATCH)}
            raise not_found()
        except SfError as exc:
            return {"statusCode": exc.status, "result": exc.body()}


# -- HTTP -------------------------------------------------------------------------------

Handler = Callable[[Request], Awaitable[tuple[int, Any]]]


def _error(exc: SfError, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def _batch_size(request: Request) -> int:
    """``Sforce-Query-Options: batchSize=N``. Salesforce clamps N to 200..2000; the sandbox
    honours smaller sizes so that a test can page eight accounts five at a time."""
    for option in request.headers.get("sforce-query-options", "").split(","):
        key, _, value = option.strip().partition("=")
        if key == "batchSize" and value.isdigit() and int(value) > 0:
            return min(int(value), DEFAULT_BATCH)
    return DEFAULT_BATCH


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except ValueError:
        raise SfError(400, "JSON_PARSER_ERROR", "The request body is not valid JSON") from None


def create_app(
    config: SandboxConfig, *, daily_api_limit: int = DAILY_API_LIMIT
) -> SandboxMiddleware:
    org = Org(Store(config.db_path), daily_api_limit)
    expected = f"Bearer {config.secret}".encode()

    def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            given = request.headers.get("authorization", "").encode()
            if not secrets.compare_digest(given, expected):
                return _error(SfError(401, *CANNED[401]), {"WWW-Authenticate": "Token"})
            if org.used >= org.daily_limit:
                return _error(SfError(403, *CANNED[403]))
            org.used += 1
            try:
                status, body = await handler(request)
            except SfError as exc:
                return _error(exc)
            if status == 204:
                return Response(status_code=204)
            return JSONResponse(body, status_code=status)

        return run

    async def limits(request: Request) -> tuple[int, Any]:
        return 200, org.limits()

    async def query(request: Request) -> tuple[int, Any]:
        soql = request.query_params.get("q")
        if not soql:
            raise SfError(400, "MALFORMED_QUERY", "A query string has to be specified")
        return 200, org.query(soql, _batch_size(request))

    async def query_more(request: Request) -> tuple[int, Any]:
        return 200, org.query_more(request.path_params["token"], _batch_size(request))

    async def updated(request: Request) -> tuple[int, Any]:
        params = request.query_params
        return 200, await org.updated(params.get("start"), params.get("end"))

    async def record(request: Request) -> tuple[int, Any]:
        sobject, id_ = request.path_params["sobject"], request.path_params["id"]
        if request.method == "GET":
            return 200, org.get(sobject, id_)
        if sobject != "Account":
            raise SfError(405, "METHOD_NOT_ALLOWED", f"The sandbox cannot update {sobject}")
        org.update(id_, await _json_body(request))
        return 204, None

    async def upsert(request: Request) -> tuple[int, Any]:
        field, value = request.path_params["field"], request.path_params["value"]
        return org.upsert(field, value, await _json_body(request))

    async def composite(request: Request) -> tuple[int, Any]:
        return 200, org.composite(await _json_body(request))

    async def unrouted(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 405:
            message = f"HTTP Method '{request.method}' not allowed"
            return _error(SfError(405, "METHOD_NOT_ALLOWED", message))
        return _error(SfError(status, *CANNED[404]))

    sobjects = f"{API}/sobjects"
    routes = [
        Route(f"{API}/limits", endpoint(limits)),
        Route(f"{API}/query", endpoint(query)),
        Route(f"{API}/query/", endpoint(query)),
        Route(f"{API}/query/{{token}}", endpoint(query_more)),
        Route(f"{sobjects}/Account/updated/", endpoint(updated)),
        Route(f"{sobjects}/{{sobject}}/{{id}}", endpoint(record), methods=["GET", "PATCH"]),
        Route(f"{sobjects}/Account/{{field}}/{{value:path}}", endpoint(upsert), methods=["PATCH"]),
        Route(f"{API}/composite/batch", endpoint(composite), methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: unrouted})
    return SandboxMiddleware(app, seeder=org.seed, error_body=error_body)
