"""Zendesk's errors: ``{"error": code, "description"?: text, "details"?: {...}}``.

ZendeskError(status, code, description)
    400 InvalidValue, InvalidPaginationParameter, TooManyIds, IdempotentRequestError
    401 "Couldn't authenticate you" (the code is the whole message)
    404 RecordNotFound, InvalidEndpoint (a path or method no route takes)
    422 RecordInvalid (with ``details`` per field), Insufficient Resource Error
    429 TooManyRequests, 503 ServiceUnavailable, 5xx InternalError (injected)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.sandbox.errors import VendorError

_KEY_REUSED = "Request parameters don't match the original request for this idempotency key"


class ZendeskError(VendorError):
    def __init__(
        self,
        status: int,
        code: str,
        description: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        body: dict[str, Any] = {"error": code}
        if description is not None:
            body["description"] = description
        super().__init__(status, {**body, **extra}, description or code, headers)


def bad_request(code: str, description: str) -> ZendeskError:
    return ZendeskError(400, code, description)


def not_found() -> ZendeskError:
    return ZendeskError(404, "RecordNotFound", "Not found")


def invalid(field: str, description: str) -> ZendeskError:
    details = {field: [{"description": description, "error": "InvalidValue"}]}
    return ZendeskError(422, "RecordInvalid", "Record validation errors", details=details)


def unauthorized(token: str | None) -> ZendeskError:
    return ZendeskError(
        401, "Couldn't authenticate you", headers={"WWW-Authenticate": 'Basic realm="Web Password"'}
    )


def unrouted(status: int) -> ZendeskError:
    return ZendeskError(status, "InvalidEndpoint", "Not found")


def key_reused(key: str) -> ZendeskError:
    return ZendeskError(400, "IdempotentRequestError", _KEY_REUSED)


def fault(status: int, message: str) -> ZendeskError:
    """Zendesk's own error bodies, for faults injected by ``SandboxMiddleware``."""
    if status == 401:
        return ZendeskError(401, "Couldn't authenticate you")
    if status == 404:
        return not_found()
    if status == 429:
        return ZendeskError(429, "TooManyRequests", f"Rate limit exceeded: {message}")
    if status == 503:
        return ZendeskError(503, "ServiceUnavailable", message)
    if status >= 500:
        return ZendeskError(status, "InternalError", message)
    return ZendeskError(status, "InvalidValue", message)
