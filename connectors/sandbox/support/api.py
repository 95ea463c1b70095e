"""The support sandbox's HTTP surface: Zendesk's Support API (``/api/v2``, every path with or
without ``.json``) over the store, behind Basic auth ``{email}/token:{api_token}``. Each route
names the query parameters it applies; any other is refused (``query.accepting``)."""

from __future__ import annotations

import base64
import hmac
import json
import uuid
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connectors.models import Case, CustomerRecord, Record, SlaBreach
from connectors.sandbox.auth import Guard, basic
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.idempotency import Replays, fingerprint
from connectors.sandbox.store import Store
from connectors.sandbox.support import documents as d
from connectors.sandbox.support import errors, search
from connectors.sandbox.support import query as q
from connectors.sandbox.support.errors import bad_request, not_found, unapplied
from connectors.sandbox.support.writes import (
    AUDITS,
    COMMENTS,
    EVENTS,
    ORGS,
    TICKETS,
    USERS,
    TicketWrites,
)
from connectors.sandbox.types import Endpoint
from connectors.sandbox.webhooks import Webhooks

SEARCH = frozenset({"query", "page", "per_page", "sort_by", "sort_order", "filter[type]"})
EXPORT = frozenset({"start_time", "cursor", "per_page", "include"})


def _token(request: Request) -> str | None:
    """The API token of ``{email}/token:{api_token}``; any email is accepted."""
    credentials = basic(request)
    if credentials is None or not credentials[0].endswith("/token"):
        return None
    return credentials[1]


def _signed(secret: str, body: bytes) -> dict[str, str]:
    """A Zendesk webhook's headers: base64(HMAC-SHA256(secret, timestamp + body))."""
    timestamp = d.now()
    mac = hmac.new(secret.encode(), timestamp.encode() + body, "sha256")
    return {
        "Content-Type": "application/json",
        "User-Agent": "Zendesk Webhook",
        "X-Zendesk-Webhook-Id": "01SANDBOXWEBHOOK0000000000",
        "X-Zendesk-Webhook-Signature": base64.b64encode(mac.digest()).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
    }


def _ticket_object(raw: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(raw or b"{}")
    except ValueError:
        raise bad_request("InvalidValue", "request body is not JSON") from None
    ticket = payload.get("ticket") if isinstance(payload, dict) else None
    if not isinstance(ticket, dict) or len(payload) > 1:
        raise bad_request("InvalidValue", "request body needs a ticket object, and only that")
    return ticket


class ZendeskApi:
    def __init__(self, config: SandboxConfig) -> None:
        self.store = Store(config.db_path)
        self.guard = Guard(config.secret, _token, errors.unauthorized)
        self.replays = Replays(self.store, errors.key_reused)
        self.writes = TicketWrites(self.store)
        self.webhooks = Webhooks(
            config.webhook_url, partial(_signed, config.webhook_secret), timeout_s=5
        )
        self.store.put(USERS, str(d.AGENT_ID), d.agent())

    def routes(self) -> list[BaseRoute]:
        one, many = frozenset({"include"}), frozenset({"ids", "include"})
        table: list[tuple[str, Endpoint, str, Collection[str]]] = [
            ("/api/v2/organizations", self.list_orgs, "GET", q.PAGED),
            ("/api/v2/organizations/show_many", self.show_many_orgs, "GET", many),
            ("/api/v2/organizations/{id:int}", self.show_org, "GET", one),
            ("/api/v2/organizations/{id:int}/tickets", self.org_tickets, "GET", q.PAGED),
            ("/api/v2/users", self.list_users, "GET", q.PAGED),
            ("/api/v2/users/show_many", self.show_many_users, "GET", many),
            ("/api/v2/users/me", self.me, "GET", one),
            ("/api/v2/users/{id:int}", self.show_user, "GET", one),
            ("/api/v2/tickets", self.list_tickets, "GET", q.PAGED),
            ("/api/v2/tickets", self.create_ticket, "POST", ()),
            ("/api/v2/tickets/show_many", self.show_many_tickets, "GET", many),
            ("/api/v2/tickets/count", self.count_tickets, "GET", ()),
            ("/api/v2/tickets/{id:int}", self.show_ticket, "GET", one),
            ("/api/v2/tickets/{id:int}", self.update_ticket, "PUT", ()),
            ("/api/v2/tickets/{id:int}/audits", self.list_audits, "GET", q.PAGED),
            ("/api/v2/tickets/{id:int}/comments", self.list_comments, "GET",
             q.PAGED | {"include_inline_images"}),
            ("/api/v2/search", self.search, "GET", SEARCH),
            ("/api/v2/incremental/tickets/cursor", self.export_tickets, "GET", EXPORT),
            ("/api/v2/incremental/ticket_metric_events", self.export_metric_events, "GET",
             {"start_time"}),
            ("/api/v2/slas/policies", self.sla_policies, "GET", ()),
            ("/api/v2/slas/policies/{id:int}", self.sla_policy, "GET", ()),
        ]  # fmt: skip
        # Zendesk answers every path with or without ".json".
        return [
            Route(path + suffix, self.guard.protect(q.accepting(params, handler)), methods=[method])
            for path, handler, method, params in table
            for suffix in ("", ".json")
        ]

    async def unrouted(self, request: Request, status: int) -> Response:
        return errors.unrouted(status).response()

    def _url(self, request: Request, collection: str, doc: d.Doc) -> d.Doc:
        base = str(request.base_url).rstrip("/")
        return {"url": f"{base}/api/v2/{collection}/{doc['id']}.json"} | doc

    def _one(self, request: Request, collection: str) -> d.Doc:
        doc = self.store.get(collection, str(request.path_params["id"]))
        if doc is None:
            raise not_found()
        return doc

    def _named(self, request: Request, collection: str, keys: tuple[str, ...]) -> q.Sideload:
        """The sideload of the records of ``collection`` that ``keys`` of the records name."""

        def load(docs: list[d.Doc]) -> tuple[str, list[d.Doc]]:
            ids = sorted({doc[k] for doc in docs for k in keys if doc.get(k) is not None})
            found = self.store.get_many(collection, [str(i) for i in ids])
            return collection, [self._url(request, collection, found[str(i)]) for i in ids
                                if str(i) in found]  # fmt: skip

        return load

    def _answer(self, request: Request, body: d.Doc, docs: list[d.Doc], kind: str) -> Response:
        """``body`` with the sideloads asked for: a ticket's users and organization, a
        comment's or audit's author, a user's organization."""
        people = {TICKETS: ("requester_id", "submitter_id", "assignee_id")}.get(
            kind, ("author_id",)
        )
        served = {
            TICKETS: {"users": self._named(request, USERS, people),
                      "organizations": self._named(request, ORGS, ("organization_id",))},
            COMMENTS: {"users": self._named(request, USERS, people)},
            AUDITS: {"users": self._named(request, USERS, people)},
            USERS: {"organizations": self._named(request, ORGS, ("organization_id",))},
        }.get(kind, {})  # fmt: skip
        return JSONResponse(q.sideloaded(request, body, docs, served))

    def _list(self, request: Request, collection: str, docs: list[d.Doc]) -> Response:
        docs = [self._url(request, collection, doc) for doc in docs]
        return self._answer(request, q.paged(request, docs, collection), docs, collection)

    def _show_many(self, request: Request, collection: str) -> Response:
        found = self.store.get_many(collection, q.ids_param(request)).values()
        docs = [self._url(request, collection, doc) for doc in found]
        return self._answer(request, q.listed(collection, docs), docs, collection)

    def _show(self, request: Request, collection: str, doc: d.Doc) -> Response:
        doc = self._url(request, collection, doc)
        return self._answer(request, {collection.removesuffix("s"): doc}, [doc], collection)

    # seeding

    def seed(self, records: list[Record]) -> None:
        breached: set[int] = set()
        for record in records:
            if isinstance(record, CustomerRecord):
                org = d.organization(record)
                self.store.put(ORGS, record.id, org)
                self.store.put(USERS, str(d.contact_id(org["id"])), d.contact(org))
            elif isinstance(record, Case):
                ticket = d.seeded_ticket(record)
                self.store.put(TICKETS, record.id, ticket)
                self.writes.activate(ticket["id"], ticket["created_at"])
                self.writes.first_comment(ticket)
                if record.sla_breached:
                    breached.add(int(record.id))
            elif isinstance(record, SlaBreach):
                self.store.put(EVENTS, record.id, d.breach(record))
                breached.add(int(record.case_id))
            else:
                raise ValueError(f"the support sandbox holds no {type(record).__name__}")
        for ticket_id in sorted(breached):  # the automation that tags breached tickets
            doc = self.store.get(TICKETS, str(ticket_id))
            if doc is not None and d.BREACH_TAG not in doc["tags"]:
                tags = [*doc["tags"], d.BREACH_TAG]
                self.store.put(TICKETS, str(ticket_id), doc | {"tags": tags})

    # organizations and users

    async def list_orgs(self, request: Request) -> Response:
        return self._list(request, ORGS, self.store.all(ORGS))

    async def show_many_orgs(self, request: Request) -> Response:
        return self._show_many(request, ORGS)

    async def show_org(self, request: Request) -> Response:
        return self._show(request, ORGS, self._one(request, ORGS))

    async def org_tickets(self, request: Request) -> Response:
        org = self._one(request, ORGS)["id"]
        return self._list(
            request, TICKETS, self.store.all(TICKETS, lambda t: t["organization_id"] == org)
        )

    async def list_users(self, request: Request) -> Response:
        return self._list(request, USERS, self.store.all(USERS))

    async def show_many_users(self, request: Request) -> Response:
        return self._show_many(request, USERS)

    async def me(self, request: Request) -> Response:
        return self._show(request, USERS, d.agent())

    async def show_user(self, request: Request) -> Response:
        return self._show(request, USERS, self._one(request, USERS))

    # tickets

    async def list_tickets(self, request: Request) -> Response:
        return self._list(request, TICKETS, self.store.all(TICKETS))

    async def show_many_tickets(self, request: Request) -> Response:
        return self._show_many(request, TICKETS)

    async def count_tickets(self, request: Request) -> Response:
        return JSONResponse(
            {"count": {"value": len(self.store.all(TICKETS)), "refreshed_at": d.now()}}
        )

    async def show_ticket(self, request: Request) -> Response:
        return self._show(request, TICKETS, self._one(request, TICKETS))

    async def create_ticket(self, request: Request) -> Response:
        ticket = _ticket_object(await request.body())
        key = request.headers.get("idempotency-key")
        outcome = self.replays.once(
            key, fingerprint({"ticket": ticket}), lambda: (201, self._create(request, ticket))
        )
        body = outcome.answer
        if outcome.replayed:
            return JSONResponse(body, outcome.status, {"x-idempotency-lookup": "hit"})
        headers = {"Location": body["ticket"]["url"]}
        if key:
            headers["x-idempotency-lookup"] = "miss"
        self._deliver("ticket.created", {}, body["ticket"])
        return JSONResponse(body, 201, headers)

    def _create(self, request: Request, ticket: Mapping[str, Any]) -> d.Doc:
        doc, audit = self.writes.create(ticket)
        return {"ticket": self._url(request, TICKETS, doc), "audit": audit}

    async def update_ticket(self, request: Request) -> Response:
        ticket = _ticket_object(await request.body())
        doc, audit, changes = self.writes.update(request.path_params["id"], ticket)
        for event in audit["events"]:
            if event["type"] == "Comment":
                self._deliver("ticket.comment_added", {"comment": event}, doc)
        for field, value, previous in changes:
            self._deliver(*d.changed(field, value, previous), doc)
        return JSONResponse({"ticket": self._url(request, TICKETS, doc), "audit": audit})

    async def list_audits(self, request: Request) -> Response:
        ticket_id = self._one(request, TICKETS)["id"]
        audits = self.store.all(AUDITS, lambda a: a["ticket_id"] == ticket_id)
        return self._answer(request, q.paged(request, audits, AUDITS), audits, AUDITS)

    async def list_comments(self, request: Request) -> Response:
        """The sandbox holds no attachments, so ``include_inline_images`` adds none."""
        if request.query_params.get("include_inline_images", "false") not in ("true", "false"):
            raise unapplied("include_inline_images", "It is true or false")
        ticket_id = self._one(request, TICKETS)["id"]
        held = self.store.all(COMMENTS, lambda c: c["ticket_id"] == ticket_id)
        comments = [c["comment"] for c in held]
        return self._answer(request, q.paged(request, comments, COMMENTS), comments, COMMENTS)

    # search and exports

    async def search(self, request: Request) -> Response:
        params = request.query_params
        page, per_page = q.search_page(request)
        if (page - 1) * per_page >= q.SEARCH_CAP:
            raise errors.ZendeskError(422, "Insufficient Resource Error",
                                      f"Search returns at most {q.SEARCH_CAP} results")  # fmt: skip
        only = params.get("filter[type]")
        if only is not None and only not in search.TYPES:
            raise unapplied("filter[type]", "The sandbox holds tickets, users and organizations")
        records = search.Records(
            partial(self.store.all, USERS), partial(self.store.all, ORGS), self._bodies
        )
        sort = (params.get("sort_by"), params.get("sort_order"))
        plan = search.plan(params.get("query", ""), records, sort, only, datetime.now(UTC))
        held = {"ticket": TICKETS, "user": USERS, "organization": ORGS}
        found = search.ordered(
            [(kind, doc) for kind in plan.kinds
             for doc in self.store.all(held[kind], partial(plan.match, kind))],
            plan.sort_by, plan.sort_order,
        )  # fmt: skip
        window = found[(page - 1) * per_page : page * per_page]
        more = page * per_page < min(len(found), q.SEARCH_CAP)
        return JSONResponse({
            "results": [self._url(request, held[kind], doc) | {"result_type": kind}
                        for kind, doc in window],
            "facets": None,
            "next_page": q.link(request, page=page + 1) if more else None,
            "previous_page": q.link(request, page=page - 1) if page > 1 else None,
            "count": len(found),
        })  # fmt: skip

    def _bodies(self) -> dict[int, list[str]]:
        """Each ticket's comment bodies."""
        bodies: dict[int, list[str]] = {}
        for held in self.store.all(COMMENTS):
            bodies.setdefault(held["ticket_id"], []).append(held["comment"]["body"])
        return bodies

    async def export_tickets(self, request: Request) -> Response:
        """Each ticket changed after the cursor once, in its current state, oldest change
        first; the cursor is a position in the store's change sequence."""
        params = request.query_params
        if ("cursor" in params) == ("start_time" in params):
            raise bad_request("InvalidValue", "give start_time (unix seconds) or cursor")
        try:
            per_page = int(params.get("per_page", q.EXPORT_PAGE))
            since = None if "cursor" in params else int(params["start_time"])
        except ValueError:
            raise bad_request("InvalidValue", "start_time and per_page are integers") from None
        if not 1 <= per_page <= q.EXPORT_PAGE:
            raise bad_request("InvalidValue", f"per_page must be 1 to {q.EXPORT_PAGE}")
        after = q.uncursor(params["cursor"]) if "cursor" in params else 0
        changes = [c for c in self.store.changes(after, limit=1 << 30) if c[1] == TICKETS]
        picked: dict[str, int] = {}
        position = after
        for seq, _, ticket_id, _, _ in changes:
            if ticket_id not in picked and len(picked) == per_page:
                break
            picked[ticket_id], position = seq, seq
        docs = self.store.get_many(TICKETS, picked)
        tickets = [self._url(request, TICKETS, docs[i]) for i in picked if i in docs
                   and (since is None or d.unix(docs[i]["updated_at"]) >= since)]  # fmt: skip
        next_cursor = q.cursor(position)
        body = {
            "tickets": tickets,
            "after_url": q.link(request, ("start_time",), cursor=next_cursor),
            "after_cursor": next_cursor,
            "before_url": None,
            "before_cursor": None,
            "end_of_stream": not any(seq > position for seq, *_ in changes),
        }
        return self._answer(request, body, tickets, TICKETS)

    async def export_metric_events(self, request: Request) -> Response:
        try:
            start = int(request.query_params["start_time"])
        except (KeyError, ValueError):
            raise bad_request("InvalidValue", "start_time (unix seconds) is required") from None
        events = sorted(
            (e for e in self.store.all(EVENTS) if d.unix(e["time"]) >= start),
            key=lambda e: (e["time"], str(e["id"])),
        )
        page = events[: q.EXPORT_PAGE]
        end_time = d.unix(page[-1]["time"]) if page else start
        more = len(events) > len(page)
        return JSONResponse({
            "ticket_metric_events": page,
            "next_page": q.link(request, start_time=end_time) if more else None,
            "count": len(page),
            "end_time": end_time,
        })  # fmt: skip

    async def sla_policies(self, request: Request) -> Response:
        policies = d.sla_policies(str(request.base_url).rstrip("/"))
        return JSONResponse(
            {"sla_policies": policies, "next_page": None, "previous_page": None,
             "count": len(policies)}
        )  # fmt: skip

    async def sla_policy(self, request: Request) -> Response:
        policies = d.sla_policies(str(request.base_url).rstrip("/"))
        found = [p for p in policies if p["id"] == request.path_params["id"]]
        if not found:
            raise not_found()
        return JSONResponse({"sla_policy": found[0]})

    # webhooks

    def _deliver(self, type_: str, change: Mapping[str, Any], doc: Mapping[str, Any]) -> None:
        if self.webhooks.enabled:
            event = d.event(str(uuid.uuid4()), type_, doc, change)
            self.webhooks.deliver(json.dumps(event).encode())
