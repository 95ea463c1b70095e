"""Zendesk's errors: ``{"error": code, "description"?: text, "details"?: {...}}``, or for a
parameter it cannot take ``{"error": {"title": ..., "message": ...}}``.

ZendeskError(status, error, description)
    400 InvalidValue, InvalidPaginationParameter, TooManyIds, IdempotentRequestError
    400 {"title": "Invalid attribute", ...}: a query parameter the sandbox does not apply
    401 "Couldn't authenticate you" (the code is the whole message)
    404 RecordNotFound, InvalidEndpoint (a path or method no route takes)
    422 RecordInvalid (with ``details`` per field), Insufficient Resource Error,
        invalid ("Invalid search: ...", a query the search cannot run)
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
        error: str | Mapping[str, str],
        description: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        body: dict[str, Any] = {"error": error if isinstance(error, str) else dict(error)}
        if description is not None:
            body["description"] = description
        message = description or (error if isinstance(error, str) else error["message"])
        super().__init__(status, {**body, **extra}, message, headers)


def bad_request(code: str, description: str) -> ZendeskError:
    return ZendeskError(400, code, description)


def unapplied(name: str, why: str) -> ZendeskError:
    """A query parameter the sandbox would not apply: refused, never ignored."""
    message = f"You passed an invalid value for the {name} attribute. {why}"
    return ZendeskError(400, {"title": "Invalid attribute", "message": message})


def not_found() -> ZendeskError:
    return ZendeskError(404, "RecordNotFound", "Not found")


def invalid(field: str, description: str) -> ZendeskError:
    details = {field: [{"description": description, "error": "InvalidValue"}]}
    return ZendeskError(422, "RecordInvalid", "Record validation errors", details=details)


def invalid_search(why: str) -> ZendeskError:
    return ZendeskError(422, "invalid", f"Invalid search: {why}")


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
