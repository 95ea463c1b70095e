"""The Zendesk Support wire shapes the support sandbox speaks: documents built from
canonical records, cursor and offset pages, error bodies, the search filter and webhook
signatures. ``connectors.sandbox.support`` serves them."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connectors.models import Case, CustomerRecord, SlaBreach
from connectors.sandbox.seed import PLANS

AGENT_ID = 1000001  # the API token's user: requester and author of what the API writes
PAGE_MAX, SHOW_MANY_MAX, SEARCH_CAP, EXPORT_PAGE = 100, 100, 1000, 1000
PRIORITIES = ("urgent", "high", "normal", "low")
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def unix(value: str) -> int:
    return int(datetime.fromisoformat(value).timestamp())


def error(status: int, code: str, description: str | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"error": code}
    if description is not None:
        body["description"] = description
    return JSONResponse({**body, **extra}, status_code=status)


def not_found() -> Response:
    return error(404, "RecordNotFound", "Not found")


def invalid(field: str, description: str) -> Response:
    details = {field: [{"description": description, "error": "InvalidValue"}]}
    return error(422, "RecordInvalid", "Record validation errors", details=details)


class BadRequest(Exception):
    """A request the sandbox answers with a 400, as Zendesk does."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.response: Response = error(400, code, description)


def error_body(status: int, message: str) -> tuple[bytes, str]:
    """Zendesk's own error bodies, for faults injected by ``SandboxMiddleware``."""
    if status == 401:
        body: dict[str, Any] = {"error": "Couldn't authenticate you"}
    elif status == 404:
        body = {"error": "RecordNotFound", "description": "Not found"}
    elif status == 429:
        body = {"error": "TooManyRequests", "description": f"Rate limit exceeded: {message}"}
    elif status == 503:
        body = {"error": "ServiceUnavailable", "description": message}
    elif status >= 500:
        body = {"error": "InternalError", "description": message}
    else:
        body = {"error": "InvalidValue", "description": message}
    return json.dumps(body).encode(), "application/json; charset=utf-8"


def cursor(value: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{value}".encode()).decode().rstrip("=")


def uncursor(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, value = raw.split(":")
        if prefix == "v1":
            return int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise BadRequest("InvalidPaginationParameter", "page cursor is invalid")


def link(request: Request, **params: Any) -> str:
    query = {**request.query_params, **params}
    return f"{str(request.url.replace(query='')).rstrip('?')}?{urlencode(query, safe='[]')}"


def cursor_page(request: Request, docs: list[dict[str, Any]], key: str) -> Response:
    """Zendesk cursor pagination over ``docs`` ordered by id."""
    q = request.query_params
    try:
        size = int(q.get("page[size]", PAGE_MAX))
    except ValueError:
        size = 0
    if not 1 <= size <= PAGE_MAX:
        raise BadRequest("InvalidPaginationParameter", f"page[size] must be 1 to {PAGE_MAX}")
    docs = sorted(docs, key=lambda d: int(d["id"]))
    if "page[after]" in q:
        after = uncursor(q["page[after]"])
        rest = [d for d in docs if d["id"] > after]
        page, has_more = rest[:size], len(rest) > size
    elif "page[before]" in q:
        before = uncursor(q["page[before]"])
        rest = [d for d in docs if d["id"] < before]
        page, has_more = rest[-size:], len(rest) > size
    else:
        page, has_more = docs[:size], len(docs) > size
    first, last = (cursor(page[0]["id"]), cursor(page[-1]["id"])) if page else (None, None)
    return JSONResponse(
        {
            key: page,
            "meta": {"has_more": has_more, "after_cursor": last, "before_cursor": first},
            "links": {
                "prev": link(request, **{"page[before]": first}) if first else None,
                "next": link(request, **{"page[after]": last}) if last else None,
            },
        }
    )


def org_doc(record: CustomerRecord) -> dict[str, Any]:
    fields: dict[str, Any] = dict(record.metadata)
    for name, value in (("billing_email", record.email), ("currency", record.currency),
                        ("legal_entity", record.legal_entity)):  # fmt: skip
        if value is not None:
            fields[name] = value
    at = now()
    return {
        "id": int(record.id), "name": record.name, "external_id": record.ref,
        "details": "", "notes": "", "domain_names": [], "group_id": None,
        "shared_tickets": False, "shared_comments": False, "tags": [],
        "organization_fields": fields, "created_at": at, "updated_at": at,
    }  # fmt: skip


def ticket_doc(case: Case) -> dict[str, Any]:
    return {
        "id": int(case.id), "external_id": None, "via": {"channel": "web"},
        "created_at": ts(case.created_at), "updated_at": ts(case.updated_at), "type": None,
        "subject": case.subject, "raw_subject": case.subject, "description": case.subject,
        "priority": case.priority, "status": case.status, "requester_id": AGENT_ID,
        "submitter_id": AGENT_ID, "assignee_id": None,
        "organization_id": int(case.organization_id) if case.organization_id else None,
        "group_id": None, "tags": [], "custom_fields": [], "is_public": True,
    }  # fmt: skip


def breach_doc(breach: SlaBreach) -> dict[str, Any]:
    return {"id": breach.id, "ticket_id": int(breach.case_id), "metric": breach.metric,
            "instance_id": 1, "type": "breach", "time": ts(breach.breached_at),
            "deleted": False}  # fmt: skip


def ticket_detail(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A ticket as Zendesk's event webhooks phrase it: ids as strings."""
    org = doc.get("organization_id")
    return {
        "id": str(doc["id"]), "subject": doc["subject"], "description": doc["description"],
        "status": str(doc["status"]).upper(), "priority": str(doc["priority"]).upper(),
        "organization_id": "0" if org is None else str(org), "tags": doc["tags"],
        "requester_id": str(doc["requester_id"]), "external_id": doc["external_id"] or "",
        "created_at": doc["created_at"], "updated_at": doc["updated_at"],
        "via": {"channel": doc["via"]["channel"]}, "is_public": doc["is_public"],
    }  # fmt: skip


def json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        raise BadRequest("InvalidValue", "request body is not JSON") from None
    if not isinstance(value, dict):
        raise BadRequest("InvalidValue", "request body must be a JSON object")
    return value


def ids_param(request: Request) -> list[str]:
    ids = [i for i in request.query_params.get("ids", "").split(",") if i]
    if not ids:
        raise BadRequest("InvalidValue", "ids is required")
    if len(ids) > SHOW_MANY_MAX:
        raise BadRequest("TooManyIds", f"Too many ids (maximum {SHOW_MANY_MAX})")
    if not all(i.isascii() and i.isdigit() for i in ids):
        raise BadRequest("InvalidValue", "ids must be integers")
    return ids


def offset_list(key: str, docs: list[dict[str, Any]]) -> Response:
    docs = sorted(docs, key=lambda d: int(d["id"]))
    return JSONResponse({key: docs, "next_page": None, "previous_page": None, "count": len(docs)})


def search_filter(query: str) -> Callable[[dict[str, Any]], bool]:
    """Repeated terms on one field match any of their values; different fields must all
    match. Anything else is refused: a stand-in that guessed would hide a bug."""
    terms: dict[str, set[str]] = {}
    for token in query.split():
        field, sep, value = token.partition(":")
        if not sep or field not in ("type", "organization", "organization_id", "status"):
            raise BadRequest("InvalidValue", f"the sandbox search does not understand {token!r}")
        terms.setdefault("organization" if field == "organization_id" else field, set()).add(value)
    if terms.get("type") != {"ticket"}:
        raise BadRequest("InvalidValue", "the sandbox search needs exactly type:ticket")
    orgs, statuses = terms.get("organization"), terms.get("status")
    return lambda d: (
        (orgs is None or str(d["organization_id"]) in orgs)
        and (statuses is None or d["status"] in statuses)
    )


def sla_policy_docs(base_url: str) -> list[dict[str, Any]]:
    """One policy per support tier of the plan catalog: first reply within the tier's
    SLA hours for urgent, high and normal tickets."""
    tiers = sorted(PLANS.values(), key=lambda plan: plan[3])
    return [
        {"url": f"{base_url}/api/v2/slas/policies/{360000100 + n}.json", "id": 360000100 + n,
         "title": f"{tier.title()} support",
         "description": f"{name} plan: first reply within {hours} hours", "position": n,
         "filter": {"all": [{"field": "current_tags", "operator": "includes",
                             "value": f"support_{tier}"}], "any": []},
         "policy_metrics": [{"priority": p, "metric": "first_reply_time", "target": hours * 60,
                             "business_hours": False} for p in PRIORITIES[:3]],
         "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
        for n, (name, _, tier, hours, _) in enumerate(tiers, start=1)
    ]  # fmt: skip


def webhook_headers(body: bytes, secret: str) -> dict[str, str]:
    """Headers of a Zendesk webhook request: base64(HMAC-SHA256(secret, timestamp + body))."""
    timestamp = now()
    mac = hmac.new(secret.encode(), timestamp.encode() + body, "sha256")
    return {
        "Content-Type": "application/json",
        "User-Agent": "Zendesk Webhook",
        "X-Zendesk-Webhook-Id": "01SANDBOXWEBHOOK0000000000",
        "X-Zendesk-Webhook-Signature": base64.b64encode(mac.digest()).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
    }
