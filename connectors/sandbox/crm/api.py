"""The CRM sandbox's HTTP surface: the org's REST API over Accounts, their Tasks and the
Users who own them, at every served version (``/services/data/v31.0`` to ``v61.0``), behind
a Bearer session id.

Each request that passes the session check spends one of the org's daily API requests (a
composite request one, a composite batch one per subrequest); when none are left the answer
is 403 REQUEST_LIMIT_EXCEEDED. Every answer past the session check says how many are spent
(``Sforce-Limit-Info: api-usage=N/M``).

A handler takes a ``Call`` (the request: method, version, path and query parameters,
headers, JSON body) and gives an ``Answer``; the same handlers, found by the same paths
(``resources``), serve HTTP requests and composite subrequests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connectors.models import Record
from connectors.sandbox.auth import Guard, bearer
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.crm import composite, errors, schema
from connectors.sandbox.crm.composite import Subrequest
from connectors.sandbox.crm.documents import (
    FIRST_VERSION,
    ID,
    LATEST_VERSION,
    Doc,
    Records,
    api_path,
    api_version,
    attributes,
    ms,
    release,
    sf_datetime,
    utc,
)
from connectors.sandbox.crm.errors import CANNED, SalesforceError, not_found
from connectors.sandbox.crm.query import Cursors, parse_soql, select
from connectors.sandbox.crm.resources import (
    PREFIX,
    Answer,
    Call,
    Handler,
    Resource,
    Resources,
    paths,
    served,
)
from connectors.sandbox.store import Store
from connectors.sandbox.types import Endpoint

DAILY_API_LIMIT = 15_000  # a Developer Edition org's allowance
DEFAULT_BATCH = 2000
UPSERT_ANSWERS_200 = 46  # an upsert that updates answers 200 with a body from 46.0, 204 before


def _batch_size(call: Call) -> int:
    """``Sforce-Query-Options: batchSize=N``. Salesforce clamps N to 200..2000; the sandbox
    honours smaller sizes so that a test can page eight accounts five at a time."""
    for option in call.headers.get("sforce-query-options", "").split(","):
        key, _, value = option.strip().partition("=")
        if key == "batchSize" and value.isdigit() and int(value) > 0:
            return min(int(value), DEFAULT_BATCH)
    return DEFAULT_BATCH


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except ValueError:
        raise errors.json_parser("The request body is not valid JSON") from None


def _response(answer: Answer, headers: Mapping[str, str]) -> Response:
    merged = {**answer.headers, **headers}
    if answer.status == 204:
        return Response(status_code=204, headers=merged)
    return JSONResponse(answer.body, status_code=answer.status, headers=merged)


def _writable(sobject: schema.SObject, method: str) -> None:
    if not sobject.writable:
        raise errors.unrouted(method, 405)


def _urls(sobject: schema.SObject, version: int) -> dict[str, str]:
    base = f"{api_path(version)}/sobjects/{sobject.name}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


class SalesforceApi:
    def __init__(self, config: SandboxConfig, daily_limit: int = DAILY_API_LIMIT) -> None:
        # No webhooks (``webhook_url`` is not read): see the package.
        self.store, self.daily_limit, self.used = Store(config.db_path), daily_limit, 0
        self.guard = Guard(config.secret, bearer, errors.unauthorized)
        self.records = Records(self.store)
        self.cursors = Cursors()
        self.resources = Resources([
            Resource("/limits", self.limits, in_composite=False),
            Resource("/query", self.query),
            Resource("/query/{token}", self.query_more),
            Resource("/sobjects", self.describe_global),
            Resource("/sobjects/{sobject}", self.sobject, ("GET", "POST")),
            Resource("/sobjects/{sobject}/describe", self.describe),
            Resource("/sobjects/{sobject}/{id}", self.record, ("GET", "PATCH", "DELETE")),
            Resource("/sobjects/{sobject}/{field}/{value:path}", self.by_external_id,
                     ("GET", "PATCH", "DELETE")),
            Resource("/composite", self.composite, ("POST",), in_composite=False,
                     in_batch=False, since=38),
            Resource("/composite/batch", self.batch, ("POST",), in_composite=False,
                     in_batch=False, since=34),
        ])  # fmt: skip

    # -- routing

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [
            Route("/services/data", self.versions),
            Route("/services/data/", self.versions),
            # Not a subrequest: it waits for the millisecond it reports to end.
            Route(f"{PREFIX}/sobjects/{{sobject}}/updated", self._endpoint(self.updated)),
            Route(f"{PREFIX}/sobjects/{{sobject}}/updated/", self._endpoint(self.updated)),
        ]
        for resource in self.resources:
            endpoint = self._endpoint(_at_once(resource.handler), resource)
            routes += [Route(p, endpoint, methods=resource.methods) for p in paths(resource)]
        return routes

    async def unrouted(self, request: Request, status: int) -> Response:
        return errors.unrouted(request.method, status).response()

    def _usage(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.used}/{self.daily_limit}"}

    def _endpoint(
        self, handler: Callable[[Call], Awaitable[Answer]], resource: Resource | None = None
    ) -> Endpoint:
        async def spend(request: Request) -> Response:
            given = request.path_params["version"]
            version = api_version(given) if resource is None else served(resource, given)
            try:
                if self.used >= self.daily_limit:
                    raise SalesforceError(403, *CANNED[403])
                self.used += 1
                body = await _json_body(request) if request.method in ("POST", "PATCH") else None
                params = {k: v for k, v in request.path_params.items() if k != "version"}
                call = Call(request.method, version, params, dict(request.query_params),
                            request.headers, body)  # fmt: skip
                answer = await handler(call)
            except SalesforceError as exc:
                return exc.response(self._usage())
            return _response(answer, self._usage())

        return self.guard.protect(spend)

    def _subrequest(self, *, batch: bool) -> Callable[[Subrequest], Answer]:
        def run(sub: Subrequest) -> Answer:
            return self.resources.run(sub.method, sub.url, sub.body, sub.headers, batch=batch)

        return run

    @contextmanager
    def _atomic(self) -> Iterator[None]:
        try:
            with self.store.transaction():
                yield
        except BaseException:
            self.records.clock.reset()  # the change log it read is rolled back
            raise

    # -- records

    def seed(self, records: list[Record]) -> None:
        self.records.seed(records)

    def _sobject(self, name: str) -> schema.SObject:
        found = schema.sobject(name)
        if found is None:
            raise not_found()
        return found

    def _select(self, soql: str, version: int) -> list[Doc]:
        query = parse_soql(soql)
        sobject = self._sobject(query.sobject)
        self.records.clock.refresh()
        docs = select(
            query,
            lambda where: self.store.all(sobject.name, where),
            lambda doc, name: self.records.value(sobject, doc, name),
        )
        return [self.records.row(sobject, d, query.fields, version) for d in docs]

    def _read(self, sobject: schema.SObject, doc: Doc, call: Call) -> Answer:
        """A record, every field, or those ``?fields=`` names and its Id."""
        names = [f.name for f in sobject.fields]
        if call.query.get("fields"):
            names = []
            for given in call.query["fields"].split(","):
                found = sobject.field(given.strip())
                if found is None:
                    raise errors.no_such_column(given.strip(), sobject.name)
                names.append(found.name)
            names += [] if "Id" in names else ["Id"]
        self.records.clock.refresh()
        return Answer(200, self.records.row(sobject, doc, names, call.version))

    def _ambiguous(self, sobject: schema.SObject, matches: list[Doc], version: int) -> Answer:
        return Answer(300, [attributes(sobject.name, d["Id"], version)["url"] for d in matches])

    # -- handlers

    async def versions(self, request: Request) -> Response:
        """Every version the org serves, oldest first; no session needed."""
        return JSONResponse([{"label": release(v), "url": api_path(v), "version": f"{v}.0"}
                             for v in range(FIRST_VERSION, LATEST_VERSION + 1)])  # fmt: skip

    def limits(self, call: Call) -> Answer:
        left = max(0, self.daily_limit - self.used)
        return Answer(200, {"DailyApiRequests": {"Max": self.daily_limit, "Remaining": left}})

    def query(self, call: Call) -> Answer:
        soql = call.query.get("q")
        if not soql:
            raise errors.malformed_query("A query string has to be specified")
        rows = self._select(soql, call.version)
        return Answer(200, self.cursors.first(rows, _batch_size(call), call.version))

    def query_more(self, call: Call) -> Answer:
        body = self.cursors.more(call.params["token"], _batch_size(call), call.version)
        return Answer(200, body)

    def describe_global(self, call: Call) -> Answer:
        sobjects = [{**s.describe(), "urls": _urls(s, call.version)}
                    for s in schema.SOBJECTS.values()]  # fmt: skip
        return Answer(200, {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects})

    def sobject(self, call: Call) -> Answer:
        """GET: the sObject's basic information. POST: a new record."""
        sobject = self._sobject(call.params["sobject"])
        if call.method == "GET":
            described = {**sobject.describe(), "urls": _urls(sobject, call.version)}
            return Answer(200, {"objectDescribe": described, "recentItems": []})
        _writable(sobject, call.method)
        id_ = self.records.create(sobject, self.records.fields(sobject, call.body, create=True))
        return Answer(
            201, {"id": id_, "success": True, "errors": []}, _location(sobject, id_, call)
        )

    def describe(self, call: Call) -> Answer:
        sobject = self._sobject(call.params["sobject"])
        fields = [f.describe() for f in sobject.fields]
        return Answer(
            200, {**sobject.describe(), "fields": fields, "urls": _urls(sobject, call.version)}
        )

    def record(self, call: Call) -> Answer:
        sobject, id_ = self._sobject(call.params["sobject"]), call.params["id"]
        if call.method == "GET":
            if not ID.fullmatch(id_):  # Salesforce reads a non-id here as an external id field
                raise not_found(external_id_field=id_)
            doc = self.records.find(sobject.name, id_)
            if doc is None:
                raise not_found()
            return self._read(sobject, doc, call)
        _writable(sobject, call.method)
        doc = self.records.existing(sobject, id_)
        if call.method == "DELETE":
            self.store.delete(sobject.name, doc["Id"])
        else:
            self.store.put(
                sobject.name,
                doc["Id"],
                {**doc, **self.records.fields(sobject, call.body, create=False)},
            )
        return Answer(204)

    def by_external_id(self, call: Call) -> Answer:
        """GET reads, PATCH upserts (``?updateOnly=true``: never creates), DELETE deletes the
        one record whose external id is the value: none is 404, several 300."""
        sobject = self._sobject(call.params["sobject"])
        value = call.params["value"]
        field, matches = self.records.matching(sobject, call.params["field"], value)
        if call.method != "GET":
            _writable(sobject, call.method)
        if call.method == "PATCH":
            return self._upsert(sobject, field, value, matches, call)
        if len(matches) > 1:
            return self._ambiguous(sobject, matches, call.version)
        if not matches:
            raise not_found()
        if call.method == "GET":
            return self._read(sobject, matches[0], call)
        self.store.delete(sobject.name, matches[0]["Id"])
        return Answer(204)

    def _upsert(self, sobject: schema.SObject, field: str, value: str, matches: list[Doc],
                call: Call) -> Answer:  # fmt: skip
        fields = self.records.fields(sobject, call.body, create=not matches, external_id=field)
        if len(matches) > 1:
            return self._ambiguous(sobject, matches, call.version)
        modern = call.version >= UPSERT_ANSWERS_200
        if matches:
            self.store.put(sobject.name, matches[0]["Id"], {**matches[0], **fields})
            if not modern:
                return Answer(204)
            return Answer(
                200, {"id": matches[0]["Id"], "success": True, "errors": [], "created": False}
            )
        if call.query.get("updateOnly", "").lower() == "true":
            raise not_found()
        id_ = self.records.create(sobject, {**fields, field: value})
        created = {"id": id_, "success": True, "errors": []}
        return Answer(
            201, {**created, "created": True} if modern else created, _location(sobject, id_, call)
        )

    def composite(self, call: Call) -> Answer:
        return composite.composite(call.body, self._subrequest(batch=False), self._atomic)

    def batch(self, call: Call) -> Answer:
        answer = composite.batch(call.body, self._subrequest(batch=True))
        self.used += len(answer.body["results"]) - 1  # every subrequest counts as a request
        return answer

    async def updated(self, call: Call) -> Answer:
        """The ids of the records changed between ``start`` and ``end``."""
        sobject = self._sobject(call.params["sobject"])
        try:
            start = utc(call.query.get("start") or "")
            end = utc(call.query.get("end") or "")
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
        self.records.clock.refresh()
        # (start, covered]: a poller's start is the previous latestDateCovered, whose
        # answer already held the changes at that instant.
        changed = sorted(
            (modified, id_)
            for id_, (collection, _, modified) in self.records.clock.times.items()
            if collection == sobject.name and ms(start) < modified <= covered
        )
        return Answer(200, {"ids": [id_ for _, id_ in changed],
                            "latestDateCovered": sf_datetime(covered)})  # fmt: skip


def _location(sobject: schema.SObject, id_: str, call: Call) -> dict[str, str]:
    return {"Location": attributes(sobject.name, id_, call.version)["url"]}


def _at_once(handler: Handler) -> Callable[[Call], Awaitable[Answer]]:
    async def run(call: Call) -> Answer:
        return handler(call)

    return run
