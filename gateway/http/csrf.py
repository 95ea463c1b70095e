"""CSRF prevention as Apollo Router does it. A browser sends a "simple" request (no CORS
preflight) to any site: a GET, or a POST whose ``Content-Type`` is
``application/x-www-form-urlencoded``, ``multipart/form-data`` or ``text/plain``, without
custom headers. Such a request must not run an operation, or a page on any origin could
run one with a visitor's credentials.

A POST is covered already: the view accepts only ``application/json`` bodies, which a
browser sends across origins only after a preflight, and refuses the simple content
types (and none) with 415 before anything runs. A GET must show it was preflighted: a
``Content-Type`` that is not simple (Apollo Client sends ``application/json`` even on GET)
or a non-empty ``apollo-require-preflight`` or ``x-apollo-operation-name`` header (Apollo
iOS and Kotlin send the latter). ``Authorization`` does not count: a future cookie session
would not carry it.
"""

from __future__ import annotations

from collections.abc import Mapping

SIMPLE_CONTENT_TYPES = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
)
PREFLIGHT_HEADERS = ("apollo-require-preflight", "x-apollo-operation-name")
MESSAGE = (
    "This GET was blocked as a potential cross-site request forgery: send a Content-Type "
    "that is not application/x-www-form-urlencoded, multipart/form-data or text/plain, or "
    "a non-empty apollo-require-preflight or x-apollo-operation-name header."
)


def preflighted(headers: Mapping[str, str]) -> bool:
    """Whether a browser would have asked (CORS preflight) before sending these headers."""
    content_type = headers.get("content-type")
    if content_type is not None:
        media_type = content_type.split(";")[0].strip().lower()
        if media_type and media_type not in SIMPLE_CONTENT_TYPES:
            return True
    return any(headers.get(name, "").strip() for name in PREFLIGHT_HEADERS)
