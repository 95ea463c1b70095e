"""How NetSuite phrases failures. Its statuses mean what the kit's mapping says
(``connectors.http``); only the words are NetSuite's own.

NetSuite answers errors as RFC 9457 problem details with its own detail list::

    {"type": "...", "title": "Unauthorized", "status": 401,
     "o:errorDetails": [{"detail": "Invalid login attempt. ...", "o:errorCode": "INVALID_LOGIN"}]}

    401 INVALID_LOGIN                        -> UpstreamAuthError
    400 INVALID_PARAMETER, INVALID_HEADER... -> UpstreamRejected   (a SuiteQL statement or a
                                                record body NetSuite refuses)
    404 NONEXISTENT_ID                       -> UpstreamNotFound
    429 CONCURRENCY_LIMIT_EXCEEDED           -> UpstreamRateLimited (Retry-After, if sent)
    5xx                                      -> UpstreamUnavailable
"""

from __future__ import annotations

import httpx

from connectors.errors import UpstreamError


def describe(response: httpx.Response) -> str:
    """NetSuite's title, first detail and code: ``Unauthorized: Invalid login (INVALID_LOGIN)``."""
    try:
        body = response.json()
        title = str(body.get("title") or f"HTTP {response.status_code}")
        first = (body.get("o:errorDetails") or [{}])[0]
        detail, code = first.get("detail"), first.get("o:errorCode")
    except (ValueError, AttributeError, IndexError, TypeError):
        return f"HTTP {response.status_code}"
    text = f"{title}: {str(detail)[:300]}" if detail else title
    return f"{text} ({code})" if code else text


def override(response: httpx.Response) -> UpstreamError | None:
    """NetSuite's statuses mean what the kit's mapping says."""
    return None
