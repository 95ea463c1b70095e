"""The CRM sandbox's HTTP surface: the org's REST API v61.0 over Accounts and the Users who
own them, behind a Bearer session id. Each request that passes the session check spends one
of the org's daily API requests (a composite batch one per subrequest); when none are left
the answer is 403 REQUEST_LIMIT_EXCEEDED."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connectors.models import Account, Record
from connectors.sandbox.auth import Guard, bearer
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.crm import documents, errors
from connectors.sandbox.crm.documents import (
    API,
    ID,
    TYPES,
    Clock,
    Doc,
    attributes,
    check_fields,
    ms,
    sf_datetime,
    utc,
)
from connectors.sandbox.crm.errors import CANNED, SalesforceError, not_found
from connectors.sandbox.crm.query import Cursors, parse_soql, select
from connectors.sandbox.store import Store
from connectors.sandbox.types import Endpoint

DAILY_API_LIMIT = 15_000  # a Developer Edition org's allowance
DEFAULT_BATCH = 2000
INTEGRATION_USER = "Integration User"  # owns what the API creates without an OwnerId

Handler = Callable[[Request], Awaitable[tuple[int, Any]]]


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
        raise SalesforceError(
            400, "JSON_PARSER_ERROR", "The request body is not valid JSON"
        ) from None


class SalesforceApi:
    def __init__(self, config: SandboxConfig, daily_limit: int = DAILY_API_LIMIT) -> None:
        # No webhooks (``webhook_url`` is not read): see the package.
        self.store, self.daily_limit, self.used = Store(config.db_path), daily_limit, 0
        self.guard = Guard(config.secret, bearer, errors.unauthorized)
        self.clock = Clock(self.store)
        self.cursors = Cursors()
        if not self._users(INTEGRATION_USER):
            self._add_user(INTEGRATION_USER)

    # -- routing

    def routes(self) -> list[BaseRoute]:
        sobjects = f"{API}/sobjects"
        return [
            Route(f"{API}/limits", self._endpoint(self.limits)),
            Route(f"{API}/query", self._endpoint(self.query)),
            Route(f"{API}/query/", self._endpoint(self.query)),
            Route(f"{API}/query/{{token}}", self._endpoint(self.query_more)),
            Route(f"{sobjects}/Account/updated/", self._endpoint(self.updated)),
            Route(f"{sobjects}/{{sobject}}/{{id}}", self._endpoint(self.record),
                  methods=["GET", "PATCH"]),
            Route(f"{sobjects}/Account/{{field}}/{{value:path}}", self._endpoint(self.upsert),
                  methods=["PATCH"]),
            Route(f"{API}/composite/batch", self._endpoint(self.composite), methods=["POST"]),
        ]  # fmt: skip

    async def unrouted(self, request: Request, status: int) -> Response:
        return errors.unrouted(request.method, status).response()

    def _endpoint(self, handler: Handler) -> Endpoint:
        async def spend(request: Request) -> Response:
            if self.used >= self.daily_limit:
                raise SalesforceError(403, *CANNED[403])
            self.used += 1
            status, body = await handler(request)
            if status == 204:
                return Response(status_code=204)
            return JSONResponse(body, status_code=status)

        return self.guard.protect(spend)

    # -- records

    def _users(self, name: str | None = None) -> list[Doc]:
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
            self.store.put("Account", a.id, documents.account(a, owner))

    def _value(self, doc: Doc, field: str, users: dict[str, Doc]) -> Any:
        if field == "Owner.Name":
            owner = users.get(doc.get("OwnerId") or "")
            return owner["Name"] if owner else None
        if field == "CreatedDate":
            return self.clock.created(doc["Id"])
        if field == "LastModifiedDate":
            return self.clock.modified(doc["Id"])
        return doc.get(field)

    def _row(self, sobject: str, doc: Doc, fields: list[str], users: dict[str, Doc]) -> Doc:
        row: Doc = {"attributes": attributes(sobject, doc["Id"])}
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

    def _select(self, soql: str) -> list[Doc]:
        query = parse_soql(soql)
        self.clock.refresh()
        users = {u["Id"]: u for u in self._users()}
        docs = select(
            query,
            lambda where: self.store.all(query.sobject, where),
            lambda doc, field: self._value(doc, field, users),
        )
        return [self._row(query.sobject, d, query.fields, users) for d in docs]

    def _get(self, sobject: str, id_: str) -> Doc:
        if sobject not in TYPES:
            raise not_found()
        if not ID.fullmatch(id_):  # Salesforce reads a non-id here as an external id field
            raise not_found(external_id_field=id_)
        doc = self.store.get(sobject, id_)
        if doc is None:
            raise not_found()
        self.clock.refresh()
        created, modified = self.clock.created(id_), self.clock.modified(id_)
        return {"attributes": attributes(sobject, id_), **doc, "IsDeleted": False,
                "CreatedDate": sf_datetime(created), "LastModifiedDate": sf_datetime(modified),
                "SystemModstamp": sf_datetime(modified)}  # fmt: skip

    def _fields(self, body: Any, *, upsert: bool) -> dict[str, Any]:
        fields = check_fields(body, upsert=upsert)
        if "OwnerId" in fields and self.store.get("User", fields["OwnerId"]) is None:
            raise SalesforceError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        return fields

    # -- handlers: (status, body)

    async def limits(self, request: Request) -> tuple[int, Any]:
        left = max(0, self.daily_limit - self.used)
        return 200, {"DailyApiRequests": {"Max": self.daily_limit, "Remaining": left}}

    async def query(self, request: Request) -> tuple[int, Any]:
        soql = request.query_params.get("q")
        if not soql:
            raise SalesforceError(400, "MALFORMED_QUERY", "A query string has to be specified")
        return 200, self.cursors.first(self._select(soql), _batch_size(request))

    async def query_more(self, request: Request) -> tuple[int, Any]:
        return 200, self.cursors.more(request.path_params["token"], _batch_size(request))

    async def updated(self, request: Request) -> tuple[int, Any]:
        try:
            start = utc(request.query_params.get("start") or "")
            end = utc(request.query_params.get("end") or "")
        except ValueError:
            raise SalesforceError(
                400, "INVALID_REPLICATION_DATE", "start and end must be dateTimes"
            ) from None
        now = datetime.now(UTC)
        if start >= end:
            raise SalesforceError(400, "INVALID_REPLICATION_DATE", "start must precede end")
        if start.date() < (now - timedelta(days=30)).date():
            raise SalesforceError(400, "INVALID_REPLICATION_DATE", "start is more than 30 days ago")
        # Exact to the millisecond where Salesforce drops the seconds, so that tests need
        # not wait a minute between a write and the poll that sees it.
        covered = min(ms(end), ms(now))
        # Let the covered millisecond end first: no write answered after this response may
        # carry a time inside the window it reports as covered.
        wait = covered + timedelta(milliseconds=1) - datetime.now(UTC)
        if wait > timedelta(0):
            await asyncio.sleep(wait.total_seconds() + 0.0002)
        self.clock.refresh()
        # (start, covered]: a poller's start is the previous latestDateCovered, whose
        # answer already held the changes at that instant.
        changed = sorted(
            (modified, id_)
            for id_, (collection, _, modified) in self.clock.times.items()
            if collection == "Account" and ms(start) < modified <= covered
        )
        return 200, {"ids": [id_ for _, id_ in changed], "latestDateCovered": sf_datetime(covered)}

    async def record(self, request: Request) -> tuple[int, Any]:
        sobject, id_ = request.path_params["sobject"], request.path_params["id"]
        if request.method == "GET":
            return 200, self._get(sobject, id_)
        if sobject != "Account":
            raise SalesforceError(405, "METHOD_NOT_ALLOWED", f"The sandbox cannot update {sobject}")
        body = await _json_body(request)
        doc = self.store.get("Account", id_) if ID.fullmatch(id_) else None
        if doc is None:
            raise not_found()
        self.store.put("Account", id_, {**doc, **self._fields(body, upsert=False)})
        return 204, None

    async def upsert(self, request: Request) -> tuple[int, Any]:
        field, value = request.path_params["field"], request.path_params["value"]
        body = await _json_body(request)
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
            raise SalesforceError(
                400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]"
            )
        id_ = f"001{self.store.next_number('Account'):012d}AAA"
        while self.store.get("Account", id_) is not None:
            id_ = f"001{self.store.next_number('Account'):012d}AAA"
        owner = self._users(INTEGRATION_USER)[0]["Id"]
        self.store.put("Account", id_, documents.new_account(id_, value, owner, fields))
        return 201, {"id": id_, "success": True, "errors": [], "created": True}

    async def composite(self, request: Request) -> tuple[int, Any]:
        body = await _json_body(request)
        requests = body.get("batchRequests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise SalesforceError(
                400, "JSON_PARSER_ERROR", "batchRequests must list the subrequests"
            )
        if len(requests) > 25:
            raise SalesforceError(
                400, "INVALID_BATCH_REQUEST", "A batch holds at most 25 subrequests"
            )
        self.used += len(requests) - 1  # every subrequest counts against the allowance
        results = [self._subrequest(r if isinstance(r, dict) else {}) for r in requests]
        return 200, {"hasErrors": any(r["statusCode"] >= 400 for r in results), "results": results}

    def _subrequest(self, request: dict[str, Any]) -> dict[str, Any]:
        path, _, query = str(request.get("url", "")).partition("?")
        parts = path.removeprefix("/services/data/").removeprefix("/").split("/")
        try:
            if request.get("method") != "GET":
                raise SalesforceError(
                    405, "METHOD_NOT_ALLOWED", "The sandbox batches GET subrequests only"
                )
            if len(parts) == 4 and parts[:2] == ["v61.0", "sobjects"]:
                return {"statusCode": 200, "result": self._get(parts[2], parts[3])}
            if parts in (["v61.0", "query"], ["v61.0", "query", ""]):
                rows = self._select(parse_qs(query).get("q", [""])[0])
                return {"statusCode": 200, "result": self.cursors.first(rows, DEFAULT_BATCH)}
            raise not_found()
        except SalesforceError as exc:
            return {"statusCode": exc.status, "result": exc.document}
