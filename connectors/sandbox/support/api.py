"""The support sandbox's HTTP surface: Zendesk's Support API (``/api/v2``, every path with or
without ``.json``) over the store, behind Basic auth ``{email}/token:{api_token}``."""

from __future__ import annotations

import base64
import hmac
import json
import uuid
from collections.abc import Mapping
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
from connectors.sandbox.support import errors
from connectors.sandbox.support import query as q
from connectors.sandbox.support.errors import bad_request, invalid, not_found
from connectors.sandbox.types import Endpoint
from connectors.sandbox.webhooks import Webhooks

ORGS, TICKETS, EVENTS, AUDITS = "organizations", "tickets", "metric_events", "audits"


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


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        raise bad_request("InvalidValue", "request body is not JSON") from None
    if not isinstance(value, dict):
        raise bad_request("InvalidValue", "request body must be a JSON object")
    return value


def _ticket_object(payload: Mapping[str, Any]) -> dict[str, Any]:
    ticket = payload.get("ticket")
    if not isinstance(ticket, dict):
        raise bad_request("InvalidValue", "request body needs a ticket object")
    return ticket


class ZendeskApi:
    def __init__(self, config: SandboxConfig) -> None:
        self.store = Store(config.db_path)
        self.guard = Guard(config.secret, _token, errors.unauthorized)
        self.replays = Replays(self.store, errors.key_reused)
        self.webhooks = Webhooks(
            config.webhook_url, partial(_signed, config.webhook_secret), timeout_s=5
        )

    def routes(self) -> list[BaseRoute]:
        table: list[tuple[str, Endpoint, str]] = [
            ("/api/v2/organizations", self.list_orgs, "GET"),
            ("/api/v2/organizations/show_many", self.show_many_orgs, "GET"),
            ("/api/v2/organizations/{id:int}/tickets", self.org_tickets, "GET"),
            ("/api/v2/tickets", self.list_tickets, "GET"),
            ("/api/v2/tickets", self.create_ticket, "POST"),
            ("/api/v2/tickets/show_many", self.show_many_tickets, "GET"),
            ("/api/v2/tickets/count", self.count_tickets, "GET"),
            ("/api/v2/tickets/{id:int}", self.show_ticket, "GET"),
            ("/api/v2/tickets/{id:int}", self.update_ticket, "PUT"),
            ("/api/v2/tickets/{id:int}/audits", self.list_audits, "GET"),
            ("/api/v2/search", self.search, "GET"),
            ("/api/v2/incremental/tickets/cursor", self.export_tickets, "GET"),
            ("/api/v2/incremental/ticket_metric_events", self.export_metric_events, "GET"),
            ("/api/v2/slas/policies", self.sla_policies, "GET"),
        ]
        # Zendesk answers every path with or without ".json".
        return [
            Route(path + suffix, self.guard.protect(handler), methods=[method])
            for path, handler, method in table
            for suffix in ("", ".json")
        ]

    async def unrouted(self, request: Request, status: int) -> Response:
        return errors.unrouted(status).response()

    def _ticket(self, request: Request, doc: d.Doc) -> d.Doc:
        return {"url": f"{str(request.base_url).rstrip('/')}/api/v2/tickets/{doc['id']}.json"} | doc

    def _org(self, request: Request, doc: d.Doc) -> d.Doc:
        base = str(request.base_url).rstrip("/")
        return {"url": f"{base}/api/v2/organizations/{doc['id']}.json"} | doc

    # seeding

    def seed(self, records: list[Record]) -> None:
        breached: set[int] = set()
        for record in records:
            if isinstance(record, CustomerRecord):
                self.store.put(ORGS, record.id, d.organization(record))
            elif isinstance(record, Case):
                self.store.put(TICKETS, record.id, d.seeded_ticket(record))
                self._activate(int(record.id), d.ts(record.created_at))
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

    def _activate(self, ticket_id: int, at: str) -> None:
        event_id = self.store.next_number("metric_event_id", start=7000000001)
        self.store.put(EVENTS, str(event_id), d.activation(event_id, ticket_id, at))

    # organizations

    async def list_orgs(self, request: Request) -> Response:
        return q.cursor_page(request, [self._org(request, o) for o in self.store.all(ORGS)], ORGS)

    async def show_many_orgs(self, request: Request) -> Response:
        docs = self.store.get_many(ORGS, q.ids_param(request))
        return q.offset_list(ORGS, [self._org(request, o) for o in docs.values()])

    async def org_tickets(self, request: Request) -> Response:
        org = request.path_params["id"]
        if self.store.get(ORGS, str(org)) is None:
            raise not_found()
        docs = self.store.all(TICKETS, lambda t: t["organization_id"] == org)
        return q.cursor_page(request, [self._ticket(request, t) for t in docs], TICKETS)

    # tickets

    async def list_tickets(self, request: Request) -> Response:
        docs = [self._ticket(request, t) for t in self.store.all(TICKETS)]
        return q.cursor_page(request, docs, TICKETS)

    async def show_many_tickets(self, request: Request) -> Response:
        docs = self.store.get_many(TICKETS, q.ids_param(request))
        return q.offset_list(TICKETS, [self._ticket(request, t) for t in docs.values()])

    async def count_tickets(self, request: Request) -> Response:
        return JSONResponse(
            {"count": {"value": len(self.store.all(TICKETS)), "refreshed_at": d.now()}}
        )

    async def show_ticket(self, request: Request) -> Response:
        doc = self.store.get(TICKETS, str(request.path_params["id"]))
        if doc is None:
            raise not_found()
        return JSONResponse({"ticket": self._ticket(request, doc)})

    async def create_ticket(self, request: Request) -> Response:
        payload = _json_object(await request.body())
        ticket = _ticket_object(payload)
        key = request.headers.get("idempotency-key")
        outcome = self.replays.once(
            key, fingerprint(payload), lambda: (201, self._create(request, ticket))
        )
        body = outcome.answer
        if outcome.replayed:
            return JSONResponse(body, outcome.status, {"x-idempotency-lookup": "hit"})
        headers = {"Location": body["ticket"]["url"]}
        if key:
            headers["x-idempotency-lookup"] = "miss"
        self._deliver("ticket.created", body["ticket"], {})
        return JSONResponse(body, 201, headers)

    def _create(self, request: Request, ticket: Mapping[str, Any]) -> d.Doc:
        comment = ticket.get("comment")
        if not isinstance(comment, dict) or not comment.get("body"):
            raise invalid("description", "Description: cannot be blank")
        if ticket.get("priority", "normal") not in d.PRIORITIES:
            raise invalid("priority", "Priority: is not valid")
        org = ticket.get("organization_id")
        if org is not None and self.store.get(ORGS, str(org)) is None:
            raise invalid("organization_id", "Organization: is invalid")
        ids = [int(t["id"]) for t in self.store.all(TICKETS)]
        doc = d.new_ticket(max(ids, default=0) + 1, ticket)
        self.store.put(TICKETS, str(doc["id"]), doc)
        self._activate(doc["id"], doc["created_at"])
        audit = self._audit(doc["id"], comment, {}, doc["created_at"])
        return {"ticket": self._ticket(request, doc), "audit": audit}

    async def update_ticket(self, request: Request) -> Response:
        ticket = _ticket_object(_json_object(await request.body()))
        doc = self.store.get(TICKETS, str(request.path_params["id"]))
        if doc is None:
            raise not_found()
        if ticket.get("priority", doc["priority"]) not in d.PRIORITIES:
            raise invalid("priority", "Priority: is not valid")
        if ticket.get("status", doc["status"]) not in d.STATUSES:
            raise invalid("status", "Status: is not valid")
        changed = [f for f in ("priority", "status") if f in ticket and ticket[f] != doc[f]]
        comment = ticket.get("comment")
        doc |= {f: ticket[f] for f in changed} | {"updated_at": d.now()}
        self.store.put(TICKETS, str(doc["id"]), doc)
        metadata = ticket.get("metadata")
        custom = metadata if isinstance(metadata, dict) else {}
        audit = self._audit(doc["id"], comment, custom, doc["updated_at"])
        if isinstance(comment, dict) and comment.get("body"):
            self._deliver("ticket.comment_added", doc, {"comment": audit["events"][0]})
        for f in changed:
            self._deliver(f"ticket.{f}_changed", doc, {"current": doc[f]})
        return JSONResponse({"ticket": self._ticket(request, doc), "audit": audit})

    def _audit(self, ticket_id: int, comment: Any, custom: Mapping[str, Any], at: str) -> d.Doc:
        audit_id = self.store.next_number("audit_id", start=8000000001)
        doc = d.audit(audit_id, ticket_id, comment, custom, at)
        if doc["events"]:
            self.store.next_number("audit_id")  # the comment's id is taken too
        self.store.put(AUDITS, str(audit_id), doc)
        return doc

    async def list_audits(self, request: Request) -> Response:
        ticket_id = request.path_params["id"]
        if self.store.get(TICKETS, str(ticket_id)) is None:
            raise not_found()
        audits = self.store.all(AUDITS, lambda a: a["ticket_id"] == ticket_id)
        return q.cursor_page(request, audits, AUDITS)

    # search and exports

    async def search(self, request: Request) -> Response:
        match = q.search_filter(request.query_params.get("query", ""))
        page, per_page = q.search_page(request)
        if (page - 1) * per_page >= q.SEARCH_CAP:
            raise errors.ZendeskError(422, "Insufficient Resource Error",
                                      f"Search returns at most {q.SEARCH_CAP} results")  # fmt: skip
        docs = sorted(self.store.all(TICKETS, match), key=lambda t: int(t["id"]))
        window = docs[(page - 1) * per_page : page * per_page]
        more = page * per_page < min(len(docs), q.SEARCH_CAP)
        return JSONResponse({
            "results": [self._ticket(request, t) | {"result_type": "ticket"} for t in window],
            "facets": None,
            "next_page": q.link(request, page=page + 1) if more else None,
            "previous_page": q.link(request, page=page - 1) if page > 1 else None,
            "count": len(docs),
        })  # fmt: skip

    async def export_tickets(self, request: Request) -> Response:
        """Each ticket changed after the cursor once, in its current state, oldest change
        first; the cursor is a position in the store's change sequence."""
        params = request.query_params
        try:
            per_page = int(params.get("per_page", q.EXPORT_PAGE))
            since = None if "cursor" in params else int(params["start_time"])
        except (KeyError, ValueError):
            raise bad_request(
                "InvalidValue", "start_time (unix seconds) or cursor is required"
            ) from None
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
        tickets = [self._ticket(request, docs[i]) for i in picked if i in docs
                   and (since is None or d.unix(docs[i]["updated_at"]) >= since)]  # fmt: skip
        return JSONResponse({
            "tickets": tickets,
            "after_url": q.link(request, cursor=q.cursor(position)),
            "after_cursor": q.cursor(position),
            "before_url": None,
            "before_cursor": None,
            "end_of_stream": not any(seq > position for seq, *_ in changes),
        })  # fmt: skip

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

    # webhooks

    def _deliver(self, type_: str, doc: Mapping[str, Any], change: Mapping[str, Any]) -> None:
        if self.webhooks.enabled:
            event = d.event(str(uuid.uuid4()), type_, doc, change)
            self.webhooks.deliver(json.dumps(event).encode())
