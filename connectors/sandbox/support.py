"""A Zendesk Support stand-in speaking the Support API's wire shapes (``/api/v2``).

Serves organizations and tickets (cursor pagination ``page[size]``/``page[after]``, at most
100 a page; ``show_many`` with at most 100 ids), ticket creation with ``Idempotency-Key``
(a replay answers the stored response with ``x-idempotency-lookup: hit``; the same key with
another payload is a 400 ``IdempotentRequestError``), ticket updates with comments and
audits, search (``type:ticket``, ``organization:``, ``status:``; repeated terms on one field
match any of them; offset pages, 1,000 results at most), the cursor-based incremental ticket
export, the incremental ticket metric event export, SLA policies and the ticket count.
Basic auth ``{email}/token:{api_token}``; any email with the right token is accepted.

Not like Zendesk: search sorts by id and indexes new tickets at once; ticket metric events
are only ``activate`` (on creation) and the seeded ``breach`` events, whose ids are kept as
seeded; breached tickets carry the ``sla_breached`` tag that a Zendesk automation would add.
Ticket events are delivered to ``config.webhook_url`` as Zendesk event webhooks, signed with
HMAC-SHA256 over ``timestamp + body``. The shapes themselves live in ``support_wire``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from connectors.models import Case, CustomerRecord, Record, SlaBreach
from connectors.sandbox import support_wire as w
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.faults import SandboxMiddleware
from connectors.sandbox.store import Store

log = logging.getLogger(__name__)

ORGS, TICKETS, EVENTS, AUDITS = "organizations", "tickets", "metric_events", "audits"
BREACH_TAG = "sla_breached"
ACCOUNT_ID = 9000001
_KEY_REUSED = "Request parameters don't match the original request for this idempotency key"

Handler = Callable[[Request], Awaitable[Response]]


class ZendeskSandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.store = Store(config.db_path)
        self._writing = asyncio.Lock()
        self._deliveries: set[asyncio.Task[None]] = set()

    # auth, routing, rendering

    def _authorized(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, token = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        expected = self.config.secret.encode()
        return user.endswith("/token") and hmac.compare_digest(token.encode(), expected)

    def _guard(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            if not self._authorized(request):
                response = w.error(401, "Couldn't authenticate you")
                response.headers["WWW-Authenticate"] = 'Basic realm="Web Password"'
                return response
            try:
                return await handler(request)
            except w.BadRequest as bad:
                return bad.response

        return guarded

    def routes(self) -> list[Route]:
        table: list[tuple[str, Handler, str]] = [
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
            Route(path + suffix, self._guard(handler), methods=[method])
            for path, handler, method in table
            for suffix in ("", ".json")
        ]

    def _ticket(self, request: Request, doc: dict[str, Any]) -> dict[str, Any]:
        return {"url": f"{str(request.base_url).rstrip('/')}/api/v2/tickets/{doc['id']}.json"} | doc

    def _org(self, request: Request, doc: dict[str, Any]) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        return {"url": f"{base}/api/v2/organizations/{doc['id']}.json"} | doc

    # seeding

    def seed(self, records: list[Record]) -> None:
        breached: set[int] = set()
        for record in records:
            if isinstance(record, CustomerRecord):
                self.store.put(ORGS, record.id, w.org_doc(record))
            elif isinstance(record, Case):
                self.store.put(TICKETS, record.id, w.ticket_doc(record))
                self._activate(int(record.id), w.ts(record.created_at))
                if record.sla_breached:
                    breached.add(int(record.id))
            elif isinstance(record, SlaBreach):
                self.store.put(EVENTS, record.id, w.breach_doc(record))
                breached.add(int(record.case_id))
            else:
                raise ValueError(f"the support sandbox holds no {type(record).__name__}")
        for ticket_id in sorted(breached):  # the automation that tags breached tickets
            doc = self.store.get(TICKETS, str(ticket_id))
            if doc is not None and BREACH_TAG not in doc["tags"]:
                self.store.put(TICKETS, str(ticket_id), doc | {"tags": [*doc["tags"], BREACH_TAG]})

    def _activate(self, ticket_id: int, at: str) -> None:
        event_id = self.store.next_number("metric_event_id", start=7000000001)
        doc = {"id": event_id, "ticket_id": ticket_id, "metric": "reply_time",
               "instance_id": 1, "type": "activate", "time": at}  # fmt: skip
        self.store.put(EVENTS, str(event_id), doc)

    # organizations

    async def list_orgs(self, request: Request) -> Response:
        return w.cursor_page(request, [self._org(request, d) for d in self.store.all(ORGS)], ORGS)

    async def show_many_orgs(self, request: Request) -> Response:
        docs = self.store.get_many(ORGS, w.ids_param(request))
        return w.offset_list(ORGS, [self._org(request, d) for d in docs.values()])

    async def org_tickets(self, request: Request) -> Response:
        org = request.path_params["id"]
        if self.store.get(ORGS, str(org)) is None:
            return w.not_found()
        docs = self.store.all(TICKETS, lambda d: d["organization_id"] == org)
        return w.cursor_page(request, [self._ticket(request, d) for d in docs], TICKETS)

    # tickets

    async def list_tickets(self, request: Request) -> Response:
        docs = [self._ticket(request, d) for d in self.store.all(TICKETS)]
        return w.cursor_page(request, docs, TICKETS)

    async def show_many_tickets(self, request: Request) -> Response:
        docs = self.store.get_many(TICKETS, w.ids_param(request))
        return w.offset_list(TICKETS, [self._ticket(request, d) for d in docs.values()])

    async def count_tickets(self, request: Request) -> Response:
        return JSONResponse(
            {"count": {"value": len(self.store.all(TICKETS)), "refreshed_at": w.now()}}
        )

    async def show_ticket(self, request: Request) -> Response:
        doc = self.store.get(TICKETS, str(request.path_params["id"]))
        return (
            w.not_found() if doc is None else JSONResponse({"ticket": self._ticket(request, doc)})
        )

    async def create_ticket(self, request: Request) -> Response:
        raw = await request.body()
        payload = w.json_object(raw)
        ticket = payload.get("ticket")
        if not isinstance(ticket, dict):
            raise w.BadRequest("InvalidValue", "request body needs a ticket object")
        key = request.headers.get("idempotency-key")
        fingerprint = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        async with self._writing:  # one writer at a time, so a key is claimed once
            if key:
                seen = self.store.remembered(f"tickets:{key}")
                if seen is not None:
                    status, saved = seen
                    if saved["fingerprint"] != fingerprint:
                        return w.error(400, "IdempotentRequestError", _KEY_REUSED)
                    return JSONResponse(saved["response"], status, {"x-idempotency-lookup": "hit"})
            refused = self._refuse_ticket(ticket)
            if refused is not None:
                return refused
            doc = self._new_ticket(ticket)
            self.store.put(TICKETS, str(doc["id"]), doc)
            self._activate(doc["id"], doc["created_at"])
            audit = self._audit(doc["id"], ticket["comment"], {}, doc["created_at"])
            body = {"ticket": self._ticket(request, doc), "audit": audit}
            headers = {"Location": body["ticket"]["url"]}
            if key:
                self.store.remember(f"tickets:{key}", 201, {"fingerprint": fingerprint,
                                                            "response": body})  # fmt: skip
                headers["x-idempotency-lookup"] = "miss"
        self._deliver("ticket.created", doc, {})
        return JSONResponse(body, 201, headers)

    def _refuse_ticket(self, ticket: Mapping[str, Any]) -> Response | None:
        comment = ticket.get("comment")
        if not isinstance(comment, dict) or not comment.get("body"):
            return w.invalid("description", "Description: cannot be blank")
        if ticket.get("priority", "normal") not in w.PRIORITIES:
            return w.invalid("priority", "Priority: is not valid")
        org = ticket.get("organization_id")
        if org is not None and self.store.get(ORGS, str(org)) is None:
            return w.invalid("organization_id", "Organization: is invalid")
        return None

    def _new_ticket(self, ticket: Mapping[str, Any]) -> dict[str, Any]:
        ids = [int(d["id"]) for d in self.store.all(TICKETS)]
        now = w.now()
        body = str(ticket["comment"]["body"])
        subject = str(ticket.get("subject") or body[:80])
        return {
            "id": max(ids, default=0) + 1, "external_id": ticket.get("external_id"),
            "via": {"channel": "api"}, "created_at": now, "updated_at": now, "type": None,
            "subject": subject, "raw_subject": subject, "description": body,
            "priority": ticket.get("priority", "normal"), "status": ticket.get("status", "new"),
            "requester_id": w.AGENT_ID, "submitter_id": w.AGENT_ID, "assignee_id": None,
            "organization_id": ticket.get("organization_id"), "group_id": None,
            "tags": list(ticket.get("tags") or []), "custom_fields": [], "is_public": True,
        }  # fmt: skip

    async def update_ticket(self, request: Request) -> Response:
        ticket = w.json_object(await request.body()).get("ticket")
        if not isinstance(ticket, dict):
            raise w.BadRequest("InvalidValue", "request body needs a ticket object")
        async with self._writing:
            doc = self.store.get(TICKETS, str(request.path_params["id"]))
            if doc is None:
                return w.not_found()
            if ticket.get("priority", doc["priority"]) not in w.PRIORITIES:
                return w.invalid("priority", "Priority: is not valid")
            if ticket.get("status", doc["status"]) not in w.STATUSES:
                return w.invalid("status", "Status: is not valid")
            changed = [f for f in ("priority", "status") if f in ticket and ticket[f] != doc[f]]
            comment = ticket.get("comment")
            doc |= {f: ticket[f] for f in changed} | {"updated_at": w.now()}
            self.store.put(TICKETS, str(doc["id"]), doc)
            metadata = ticket.get("metadata")
            custom = metadata if isinstance(metadata, dict) else {}
            audit = self._audit(doc["id"], comment, custom, doc["updated_at"])
        if isinstance(comment, dict) and comment.get("body"):
            self._deliver("ticket.comment_added", doc, {"comment": audit["events"][0]})
        for f in changed:
            self._deliver(f"ticket.{f}_changed", doc, {"current": doc[f]})
        return JSONResponse({"ticket": self._ticket(request, doc), "audit": audit})

    def _audit(
        self, ticket_id: int, comment: Any, custom: Mapping[str, Any], at: str
    ) -> dict[str, Any]:
        audit_id = self.store.next_number("audit_id", start=8000000001)
        events = []
        if isinstance(comment, dict) and comment.get("body"):
            events.append({"id": audit_id + 1, "type": "Comment", "author_id": w.AGENT_ID,
                           "body": str(comment["body"]),
                           "public": bool(comment.get("public", True))})  # fmt: skip
            self.store.next_number("audit_id")  # the comment's id is taken too
        doc = {"id": audit_id, "ticket_id": ticket_id, "created_at": at, "author_id": w.AGENT_ID,
               "metadata": {"system": {"client": "opsgraph sandbox"}, "custom": dict(custom)},
               "events": events}  # fmt: skip
        self.store.put(AUDITS, str(audit_id), doc)
        return doc

    async def list_audits(self, request: Request) -> Response:
        ticket_id = request.path_params["id"]
        if self.store.get(TICKETS, str(ticket_id)) is None:
            return w.not_found()
        return w.cursor_page(
            request, self.store.all(AUDITS, lambda d: d["ticket_id"] == ticket_id), AUDITS
        )

    # search and exports

    async def search(self, request: Request) -> Response:
        match = w.search_filter(request.query_params.get("query", ""))
        q = request.query_params
        try:
            page, per_page = int(q.get("page", 1)), int(q.get("per_page", w.PAGE_MAX))
        except ValueError:
            raise w.BadRequest("InvalidValue", "page and per_page must be integers") from None
        if page < 1 or not 1 <= per_page <= w.PAGE_MAX:
            raise w.BadRequest(
                "InvalidValue", f"page must be positive and per_page 1 to {w.PAGE_MAX}"
            )
        if (page - 1) * per_page >= w.SEARCH_CAP:
            return w.error(422, "Insufficient Resource Error",
                          f"Search returns at most {w.SEARCH_CAP} results")  # fmt: skip
        docs = sorted(self.store.all(TICKETS, match), key=lambda d: int(d["id"]))
        window = docs[(page - 1) * per_page : page * per_page]
        more = page * per_page < min(len(docs), w.SEARCH_CAP)
        return JSONResponse({
            "results": [self._ticket(request, d) | {"result_type": "ticket"} for d in window],
            "facets": None,
            "next_page": w.link(request, page=page + 1) if more else None,
            "previous_page": w.link(request, page=page - 1) if page > 1 else None,
            "count": len(docs),
        })  # fmt: skip

    async def export_tickets(self, request: Request) -> Response:
        """Each ticket changed after the cursor once, in its current state, oldest change
        first; the cursor is a position in the store's change sequence."""
        q = request.query_params
        try:
            per_page = int(q.get("per_page", w.EXPORT_PAGE))
            since = None if "cursor" in q else int(q["start_time"])
        except (KeyError, ValueError):
            raise w.BadRequest(
                "InvalidValue", "start_time (unix seconds) or cursor is required"
            ) from None
        if not 1 <= per_page <= w.EXPORT_PAGE:
            raise w.BadRequest("InvalidValue", f"per_page must be 1 to {w.EXPORT_PAGE}")
        after = w.uncursor(q["cursor"]) if "cursor" in q else 0
        changes = [c for c in self.store.changes(after, limit=1 << 30) if c[1] == TICKETS]
        picked: dict[str, int] = {}
        position = after
        for seq, _, ticket_id, _, _ in changes:
            if ticket_id not in picked and len(picked) == per_page:
                break
            picked[ticket_id], position = seq, seq
        docs = self.store.get_many(TICKETS, picked)
        tickets = [self._ticket(request, docs[i]) for i in picked if i in docs
                   and (since is None or w.unix(docs[i]["updated_at"]) >= since)]  # fmt: skip
        return JSONResponse({
            "tickets": tickets,
            "after_url": w.link(request, cursor=w.cursor(position)),
            "after_cursor": w.cursor(position),
            "before_url": None,
            "before_cursor": None,
            "end_of_stream": not any(seq > position for seq, *_ in changes),
        })  # fmt: skip

    async def export_metric_events(self, request: Request) -> Response:
        try:
            start = int(request.query_params["start_time"])
        except (KeyError, ValueError):
            raise w.BadRequest("InvalidValue", "start_time (unix seconds) is required") from None
        events = sorted(
            (e for e in self.store.all(EVENTS) if w.unix(e["time"]) >= start),
            key=lambda e: (e["time"], str(e["id"])),
        )
        page = events[: w.EXPORT_PAGE]
        end_time = w.unix(page[-1]["time"]) if page else start
        more = len(events) > len(page)
        return JSONResponse({
            "ticket_metric_events": page,
            "next_page": w.link(request, start_time=end_time) if more else None,
            "count": len(page),
            "end_time": end_time,
        })  # fmt: skip

    async def sla_policies(self, request: Request) -> Response:
        policies = w.sla_policy_docs(str(request.base_url).rstrip("/"))
        return JSONResponse(
            {"sla_policies": policies, "next_page": None, "previous_page": None,
             "count": len(policies)}
        )  # fmt: skip

    # webhooks

    def _deliver(self, event: str, doc: Mapping[str, Any], change: Mapping[str, Any]) -> None:
        if not self.config.webhook_url:
            return
        payload = {
            "type": f"zen:event-type:{event}", "account_id": ACCOUNT_ID,
            "id": str(uuid.uuid4()), "time": w.now(), "zendesk_event_version": "2022-11-06",
            "subject": f"zen:ticket:{doc['id']}", "detail": w.ticket_detail(doc),
            "event": dict(change),
        }  # fmt: skip
        body = json.dumps(payload).encode()
        task = asyncio.create_task(self._post(self.config.webhook_url, body))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _post(self, url: str, body: bytes) -> None:
        headers = w.webhook_headers(body, self.config.webhook_secret)
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.post(url, content=body, headers=headers)
            if response.status_code >= 300:
                log.warning("webhook to %s answered %s", url, response.status_code)
        except Exception:  # a failed delivery must never take the sandbox down
            log.warning("webhook delivery to %s failed", url, exc_info=True)


async def _no_route(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    return w.error(status, "InvalidEndpoint", "Not found")


def create_app(config: SandboxConfig) -> ASGIApp:
    sandbox = ZendeskSandbox(config)
    app = Starlette(routes=sandbox.routes(), exception_handlers={404: _no_route, 405: _no_route})
    return SandboxMiddleware(app, seeder=sandbox.seed, error_body=w.error_body)
