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
    400 INVALID_CROSS_REFERENCE_KEY      -> UpstreamNotFound     (a record the write refers
                                            to, a Task's account, is not in the org):
                                            ``override``
    400 INVALID_FIELD_FOR_INSERT_UPDATE  -> FieldNotWritable     (an UpstreamRejected naming
                                            the fields: one settable only on create, sent
                                            in an upsert that updated): ``override``
    400 MALFORMED_QUERY, INVALID_FIELD,
        FIELD_INTEGRITY_EXCEPTION (an id
        of the wrong sObject) ..         -> UpstreamRejected
    429 REQUEST_LIMIT_EXCEEDED           -> UpstreamRateLimited  (from proxies, and the
                                            sandbox's fault injection)
    5xx                                  -> UpstreamUnavailable
"""

from __future__ import annotations

from typing import Any

import httpx

from connectors.errors import UpstreamError, UpstreamNotFound, UpstreamRateLimited, UpstreamRejected
from connectors.http import retry_after_seconds
from connectors.models import SystemName

SYSTEM = SystemName.CRM.value


class FieldNotWritable(UpstreamRejected):
    """Salesforce refused to set ``fields`` in this write (INVALID_FIELD_FOR_INSERT_UPDATE).
    Catch it where a write sends a field that only a create may set: the record exists."""

    def __init__(self, message: str, *, fields: list[str], **kw: str | None) -> None:
        super().__init__(message, **kw)
        self.fields = fields


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _first(response: httpx.Response) -> dict[str, Any]:
    body = _body(response)
    return body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else {}


def error_code(response: httpx.Response) -> str | None:
    code = _first(response).get("errorCode")
    return code if isinstance(code, str) else None


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
    refusal of our credentials; a 400 INVALID_CROSS_REFERENCE_KEY is a record the write
    refers to that the org does not have; a 400 INVALID_FIELD_FOR_INSERT_UPDATE names the
    fields it would not set."""
    code, internal = error_code(response), response.text[:2000]
    if response.status_code == 403 and code == "REQUEST_LIMIT_EXCEEDED":
        return UpstreamRateLimited(
            f"{SYSTEM} API request limit exceeded: {describe(response)}",
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            system=SYSTEM,
            internal=internal,
        )
    if response.status_code == 400 and code == "INVALID_CROSS_REFERENCE_KEY":
        return UpstreamNotFound(f"{SYSTEM}: {describe(response)}", system=SYSTEM, internal=internal)
    if response.status_code == 400 and code == "INVALID_FIELD_FOR_INSERT_UPDATE":
        fields = _first(response).get("fields")
        return FieldNotWritable(
            f"{SYSTEM} rejected the request: {describe(response)}",
            fields=[f for f in fields if isinstance(f, str)] if isinstance(fields, list) else [],
            system=SYSTEM,
            internal=internal,
        )
    return None
