"""How the Zendesk stand-in is asked for lists: which query parameters an endpoint takes,
cursor pagination (``page[size]``, ``page[after]``, ``page[before]``) or, without it, offset
pagination (``page``, ``per_page``), ``show_many`` ids, and sideloads (``include``).

A parameter an endpoint does not apply is refused with a 400, never ignored: a stand-in that
ignored ``sort_by`` would answer in another order than asked, silently. The search language
lives in ``search``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from connectors.sandbox.support.errors import bad_request, unapplied
from connectors.sandbox.types import Endpoint

PAGE_MAX, SHOW_MANY_MAX, SEARCH_CAP, EXPORT_PAGE = 100, 100, 1000, 1000
CURSOR = frozenset({"page[size]", "page[after]", "page[before]"})
OFFSET = frozenset({"page", "per_page"})
PAGED = CURSOR | OFFSET | {"include"}
# Zendesk's sideloads (tickets, users, organizations, audits, comments). One an endpoint does
# not serve is refused; a name that is no sideload at all is ignored, as Zendesk ignores it
# (zenpy sends ``include=None`` when it asks for none).
SIDELOADS = frozenset({
    "users", "groups", "organizations", "last_audits", "metric_sets", "metric_events", "dates",
    "sharing_agreements", "comment_count", "incident_counts", "ticket_forms", "slas", "brands",
    "custom_statuses", "abilities", "identities", "roles", "open_ticket_count", "tickets",
})  # fmt: skip
Doc = dict[str, Any]


def accepting(params: Collection[str], endpoint: Endpoint) -> Endpoint:
    """``endpoint``, refusing any query parameter but ``params``."""

    async def checked(request: Request) -> Response:
        for name in request.query_params:
            if name not in params:
                raise unapplied(name, "The sandbox does not apply it on this endpoint")
        return await endpoint(request)

    return checked


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
    raise bad_request("InvalidPaginationParameter", "page cursor is invalid")


def link(request: Request, drop: Collection[str] = (), **params: Any) -> str:
    query = {k: v for k, v in request.query_params.items() if k not in drop} | params
    return f"{str(request.url.replace(query='')).rstrip('?')}?{urlencode(query, safe='[]')}"


def _size(request: Request, name: str, default: int, most: int, code: str) -> int:
    try:
        size = int(request.query_params.get(name, default))
    except ValueError:
        size = 0
    if not 1 <= size <= most:
        raise bad_request(code, f"{name} must be 1 to {most}")
    return size


def paged(request: Request, docs: list[Doc], key: str) -> Doc:
    """One page of ``docs`` ordered by id: by cursor when a ``page[...]`` parameter is
    given, else by offset (``page``, ``per_page``), as Zendesk pages a list."""
    q = request.query_params
    if CURSOR & q.keys():
        if OFFSET & q.keys():
            raise bad_request("InvalidPaginationParameter", "use cursor or offset paging, not both")
        return _cursor_page(request, docs, key)
    per_page = _size(request, "per_page", PAGE_MAX, PAGE_MAX, "InvalidValue")
    page = _size(request, "page", 1, 1 << 31, "InvalidValue")
    docs = sorted(docs, key=lambda d: int(d["id"]))
    more = page * per_page < len(docs)
    return {
        key: docs[(page - 1) * per_page : page * per_page],
        "next_page": link(request, page=page + 1, per_page=per_page) if more else None,
        "previous_page": link(request, page=page - 1, per_page=per_page) if page > 1 else None,
        "count": len(docs),
    }


def _cursor_page(request: Request, docs: list[Doc], key: str) -> Doc:
    q = request.query_params
    size = _size(request, "page[size]", PAGE_MAX, PAGE_MAX, "InvalidPaginationParameter")
    if "page[after]" in q and "page[before]" in q:
        raise bad_request("InvalidPaginationParameter", "page[after] or page[before], not both")
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
    turn = ("page[after]", "page[before]")
    return {
        key: page,
        "meta": {"has_more": has_more, "after_cursor": last, "before_cursor": first},
        "links": {
            "prev": link(request, turn, **{"page[before]": first}) if first else None,
            "next": link(request, turn, **{"page[after]": last}) if last else None,
        },
    }


def ids_param(request: Request) -> list[str]:
    ids = [i for i in request.query_params.get("ids", "").split(",") if i]
    if not ids:
        raise bad_request("InvalidValue", "ids is required")
    if len(ids) > SHOW_MANY_MAX:
        raise bad_request("TooManyIds", f"Too many ids (maximum {SHOW_MANY_MAX})")
    if not all(i.isascii() and i.isdigit() for i in ids):
        raise bad_request("InvalidValue", "ids must be integers")
    return ids


def listed(key: str, docs: list[Doc]) -> Doc:
    """A whole list on one page, as ``show_many`` answers."""
    docs = sorted(docs, key=lambda d: int(d["id"]))
    return {key: docs, "next_page": None, "previous_page": None, "count": len(docs)}


Sideload = Callable[[list[Doc]], tuple[str, list[Doc]]]  # the records -> (key, sideloaded)


def sideloaded(request: Request, body: Doc, docs: list[Doc], served: dict[str, Sideload]) -> Doc:
    """``body`` with the sideloads ``include`` asks for among those ``served``."""
    for name in request.query_params.get("include", "").split(","):
        if name in served:
            key, loaded = served[name](docs)
            body[key] = loaded
        elif name in SIDELOADS:
            raise unapplied("include", f"The sandbox does not sideload {name} here")
    return body


def search_page(request: Request) -> tuple[int, int]:
    """The search's ``page`` (from 1) and ``per_page``; search pages by offset only."""
    q = request.query_params
    try:
        page, per_page = int(q.get("page", 1)), int(q.get("per_page", PAGE_MAX))
    except ValueError:
        raise bad_request("InvalidValue", "page and per_page must be integers") from None
    if page < 1 or not 1 <= per_page <= PAGE_MAX:
        raise bad_request("InvalidValue", f"page must be positive and per_page 1 to {PAGE_MAX}")
    return page, per_page
