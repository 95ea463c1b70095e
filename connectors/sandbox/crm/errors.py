"""Salesforce's errors: a JSON array ``[{"message", "errorCode", "fields"?}]`` (``fields``
where a write names the fields at fault).

SalesforceError(status, code, message, fields=...)
    300 (an upsert or read by external id matching several records answers a list of
        their URLs instead)
    400 MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE, INVALID_QUERY_FILTER_OPERATOR,
        INVALID_QUERY_LOCATOR, INVALID_REPLICATION_DATE, JSON_PARSER_ERROR, INVALID_INPUT,
        MALFORMED_ID, FIELD_INTEGRITY_EXCEPTION, INVALID_CROSS_REFERENCE_KEY (a reference
        field's value: not an id, the id of another sObject, no record of the org),
        REQUIRED_FIELD_MISSING, INVALID_FIELD_FOR_INSERT_UPDATE, STRING_TOO_LONG,
        NUMBER_OUTSIDE_VALID_RANGE, INVALID_BATCH_REQUEST, PROCESSING_HALTED (a composite
        subrequest not run)
    401 INVALID_SESSION_ID
    403 REQUEST_LIMIT_EXCEEDED (the org's daily API requests are spent)
    404 NOT_FOUND (a record, an external id field, an API version not served, or a path
        no route takes), ENTITY_IS_DELETED
    405 METHOD_NOT_ALLOWED
    412 BATCH_PROCESSING_HALTED (a batch subrequest after a failure, with haltOnError)
    429 REQUEST_LIMIT_EXCEEDED, 5xx SERVER_ERROR (injected)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from connectors.sandbox.errors import VendorError

CANNED = {
    401: ("INVALID_SESSION_ID", "Session expired or invalid"),
    403: ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
    404: ("NOT_FOUND", "The requested resource does not exist"),
    429: ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
}


class SalesforceError(VendorError):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        *,
        fields: Sequence[str] | None = None,
    ) -> None:
        error: dict[str, object] = {"message": message, "errorCode": code}
        if fields is not None:
            error["fields"] = list(fields)
        super().__init__(status, [error], message, headers)
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


def deleted() -> SalesforceError:
    return SalesforceError(404, "ENTITY_IS_DELETED", "entity is deleted", fields=[])


def malformed_query(message: str) -> SalesforceError:
    return SalesforceError(400, "MALFORMED_QUERY", message)


def json_parser(message: str) -> SalesforceError:
    return SalesforceError(400, "JSON_PARSER_ERROR", message)


def no_such_column(name: str, sobject: str) -> SalesforceError:
    return SalesforceError(400, "INVALID_FIELD", f"No such column '{name}' on entity '{sobject}'")


def unrouted(method: str, status: int) -> SalesforceError:
    if status == 405:
        return SalesforceError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed")
    return SalesforceError(status, *CANNED[404])
