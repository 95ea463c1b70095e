"""How the Zendesk stand-in is asked for lists: cursor pagination (``page[size]``,
``page[after]``, ``page[before]``), ``show_many`` ids, offset-paged search results, and the
search language itself.

Search understands ``type:ticket`` (required), ``organization:`` (or ``organization_id:``)
and ``status:``; repeated terms on one field match any of their values, different fields
must all match. Anything else is refused with a 400: a stand-in that guessed would hide a
bug. Unlike Zendesk, it sorts by id and indexes new tickets at once.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connectors.sandbox.support.errors import bad_request

PAGE_MAX, SHOW_MANY_MAX, SEARCH_CAP, EXPORT_PAGE = 100, 100, 1000, 1000
Doc = dict[str, Any]


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


def link(request: Request, **params: Any) -> str:
    query = {**request.query_params, **params}
    return f"{str(request.url.replace(query='')).rstrip('?')}?{urlencode(query, safe='[]')}"


def cursor_page(request: Request, docs: list[Doc], key: str) -> Response:
    """Zendesk cursor pagination over ``docs`` ordered by id."""
    q = request.query_params
    try:
        size = int(q.get("page[size]", PAGE_MAX))
    except ValueError:
        size = 0
    if not 1 <= size <= PAGE_MAX:
        raise bad_request("InvalidPaginationParameter", f"page[size] must be 1 to {PAGE_MAX}")
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


def ids_param(request: Request) -> list[str]:
    ids = [i for i in request.query_params.get("ids", "").split(",") if i]
    if not ids:
        raise bad_request("InvalidValue", "ids is required")
    if len(ids) > SHOW_MANY_MAX:
        raise bad_request("TooManyIds", f"Too many ids (maximum {SHOW_MANY_MAX})")
    if not all(i.isascii() and i.isdigit() for i in ids):
        raise bad_request("InvalidValue", "ids must be integers")
    return ids


def offset_list(key: str, docs: list[Doc]) -> Response:
    docs = sorted(docs, key=lambda d: int(d["id"]))
    return JSONResponse({key: docs, "next_page": None, "previous_page": None, "count": len(docs)})


def search_filter(query: str) -> Callable[[Doc], bool]:
    terms: dict[str, set[str]] = {}
    for token in query.split():
        field, sep, value = token.partition(":")
        if not sep or field not in ("type", "organization", "organization_id", "status"):
            raise bad_request("InvalidValue", f"the sandbox search does not understand {token!r}")
        terms.setdefault("organization" if field == "organization_id" else field, set()).add(value)
    if terms.get("type") != {"ticket"}:
        raise bad_request("InvalidValue", "the sandbox search needs exactly type:ticket")
    orgs, statuses = terms.get("organization"), terms.get("status")
    return lambda d: (
        (orgs is None or str(d["organization_id"]) in orgs)
        and (statuses is None or d["status"] in statuses)
    )


def search_page(request: Request) -> tuple[int, int]:
    """The search's ``page`` (from 1) and ``per_page``, within the result cap."""
    q = request.query_params
    try:
        page, per_page = int(q.get("page", 1)), int(q.get("per_page", PAGE_MAX))
    except ValueError:
        raise bad_request("InvalidValue", "page and per_page must be integers") from None
    if page < 1 or not 1 <= per_page <= PAGE_MAX:
        raise bad_request("InvalidValue", f"page must be positive and per_page 1 to {PAGE_MAX}")
    return page, per_page
