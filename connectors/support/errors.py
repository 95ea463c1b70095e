"""How Zendesk phrases failures, and the one place its status codes mean something other
than the kit's mapping (``connectors.http``).

Zendesk answers errors as an object: ``error`` (a code, a sentence, or an object with
``title``/``message``), often a ``description`` and, for validation, ``details`` per field::

    401 "Couldn't authenticate you"           -> UpstreamAuthError
    400 IdempotentRequestError                -> UpstreamConflict    (an Idempotency-Key sent
                                                 again with another body): ``override``
    400 TooManyIds, InvalidPagination...      -> UpstreamRejected
    404 RecordNotFound                        -> UpstreamNotFound
    422 RecordInvalid {details: {field: ...}} -> UpstreamRejected    (an update of a closed
                                                 ticket: "Status: closed prevents ticket update")
    429 TooManyRequests                       -> UpstreamRateLimited (Retry-After)
    5xx                                       -> UpstreamUnavailable
"""

from __future__ import annotations

from typing import Any

import httpx

from connectors.errors import UpstreamConflict, UpstreamError
from connectors.models import SystemName

SYSTEM = SystemName.SUPPORT.value


def _body(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def describe(response: httpx.Response) -> str:
    """Zendesk's own words for a failure: ``error`` (a code or a sentence, sometimes an
    object with title/message), ``description`` and the first validation detail."""
    body = _body(response)
    if body is None:
        return f"HTTP {response.status_code}"
    parts: list[str] = []
    error = body.get("error")
    if isinstance(error, dict):
        parts += [str(error[k]) for k in ("title", "message") if error.get(k)]
    elif error:
        parts.append(str(error))
    if body.get("description"):
        parts.append(str(body["description"]))
    details = body.get("details")
    if isinstance(details, dict):
        for field, problems in details.items():
            if isinstance(problems, list) and problems and isinstance(problems[0], dict):
                parts.append(f"{field}: {problems[0].get('description', 'invalid')}")
                break
    return ": ".join(parts)[:300] or f"HTTP {response.status_code}"


def override(response: httpx.Response) -> UpstreamError | None:
    """Zendesk honours ``Idempotency-Key`` on ticket creation; the same key with another
    ticket is a conflict with the earlier write, not a malformed request."""
    body = _body(response)
    if response.status_code == 400 and body and body.get("error") == "IdempotentRequestError":
        return UpstreamConflict(
            f"{SYSTEM}: this idempotency key was used for a different case",
            system=SYSTEM,
            internal=response.text[:2000],
        )
    return None
