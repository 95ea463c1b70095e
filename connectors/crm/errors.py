"""How Salesforce phrases failures, and the one place its status codes mean something other
than the kit's mapping (``connectors.http``).

Salesforce answers errors as a JSON array, ``[{"message": "...", "errorCode": "..."}]``::

    401 INVALID_SESSION_ID               -> UpstreamAuthError
    403 REQUEST_LIMIT_EXCEEDED           -> UpstreamRateLimited  (the org's API allowance is
                                            spent; our credentials are fine): ``override``
    403 anything else                    -> UpstreamAuthError
    300 [record urls]                    -> UpstreamConflict     (an external id matches
                                            several records)
    404 NOT_FOUND                        -> UpstreamNotFound
    400 MALFORMED_QUERY, INVALID_FIELD.. -> UpstreamRejected
    429 REQUEST_LIMIT_EXCEEDED           -> UpstreamRateLimited  (from proxies, and the
                                            sandbox's fault injection)
    5xx                                  -> UpstreamUnavailable
"""

from __future__ import annotations

from typing import Any

import httpx

from connectors.errors import UpstreamError, UpstreamRateLimited
from connectors.http import retry_after_seconds
from connectors.models import SystemName

SYSTEM = SystemName.CRM.value


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def error_code(response: httpx.Response) -> str | None:
    body = _body(response)
    if isinstance(body, list) and body and isinstance(body[0], dict):
        code = body[0].get("errorCode")
        return code if isinstance(code, str) else None
    return None


def describe(response: httpx.Response) -> str:
    """The first error's code and message; the body itself stays in ``internal``."""
    body = _body(response)
    if response.status_code == 300 and isinstance(body, list):
        return f"{len(body)} records share that external id"
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return f"{body[0].get('errorCode', 'UNKNOWN')}: {body[0].get('message', '')}"
    return f"HTTP {response.status_code}"


def override(response: httpx.Response) -> UpstreamError | None:
    """A 403 REQUEST_LIMIT_EXCEEDED is the org's daily allowance running out, not a
    refusal of our credentials."""
    if response.status_code == 403 and error_code(response) == "REQUEST_LIMIT_EXCEEDED":
        return UpstreamRateLimited(
            f"{SYSTEM} API request limit exceeded: {describe(response)}",
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            system=SYSTEM,
            internal=response.text[:2000],
        )
    return None
