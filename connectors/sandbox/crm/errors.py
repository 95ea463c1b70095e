"""Salesforce's errors: a JSON array ``[{"message", "errorCode"}]``.

SalesforceError(status, code, message)
    300 (an upsert matching several records answers a list of their URLs instead)
    400 MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE, INVALID_QUERY_FILTER_OPERATOR,
        INVALID_QUERY_LOCATOR, INVALID_REPLICATION_DATE, JSON_PARSER_ERROR,
        INVALID_CROSS_REFERENCE_KEY, REQUIRED_FIELD_MISSING, INVALID_BATCH_REQUEST
    401 INVALID_SESSION_ID
    403 REQUEST_LIMIT_EXCEEDED (the org's daily API requests are spent)
    404 NOT_FOUND (a record, an external id field, or a path no route takes)
    405 METHOD_NOT_ALLOWED
    429 REQUEST_LIMIT_EXCEEDED, 5xx SERVER_ERROR (injected)
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors.sandbox.errors import VendorError

CANNED = {
    401: ("INVALID_SESSION_ID", "Session expired or invalid"),
    403: ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
    404: ("NOT_FOUND", "The requested resource does not exist"),
    429: ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
}


class SalesforceError(VendorError):
    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status, [{"message": message, "errorCode": code}], message, headers)
        self.code = code


def fault(status: int, message: str) -> SalesforceError:
    """Injected faults in Salesforce's words; a 403 or 429 is the API limit being spent."""
    fallback = ("SERVER_ERROR" if status >= 500 else "UNKNOWN_EXCEPTION", message)
    return SalesforceError(status, *CANNED.get(status, fallback))


def unauthorized(token: str | None) -> SalesforceError:
    return SalesforceError(401, *CANNED[401], headers={"WWW-Authenticate": "Token"})


def not_found(*, external_id_field: str | None = None) -> SalesforceError:
    if external_id_field is None:
        return SalesforceError(404, *CANNED[404])
    message = f"Provided external ID field does not exist or is not accessible: {external_id_field}"
    return SalesforceError(404, "NOT_FOUND", message)


def unrouted(method: str, status: int) -> SalesforceError:
    if status == 405:
        return SalesforceError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed")
    return SalesforceError(status, *CANNED[404])
