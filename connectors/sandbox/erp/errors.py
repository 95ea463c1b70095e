"""NetSuite's errors, every one the same body (``application/vnd.oracle.resource+json;
type=error``)::

    {"type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.2", "title": "Unauthorized",
     "status": 401, "o:errorDetails": [{"detail": "...", "o:errorCode": "INVALID_LOGIN"}]}

    NetSuiteError(status, detail, code, where)
        400 USER_ERROR, INVALID_HEADER (``o:errorHeader`` names it), INVALID_PARAMETER (a
            SuiteQL statement outside the subset; a query parameter, ``o:errorQueryParam``),
            INVALID_CONTENT (a body field, ``o:errorPath``), INVALID_KEY_OR_REF,
            INVALID_FLD_VALUE
        401 INVALID_LOGIN (a bearer token or a TBA signature refused, alike)
        404 NONEXISTENT_ID (a record, a record type, or a path no route takes)
        405 INVALID_PARAMETER (a method no route takes; a record type it cannot create,
            update or delete)
        429 CONCURRENCY_LIMIT_EXCEEDED, 5xx UNEXPECTED_ERROR (injected)
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

from connectors.sandbox.errors import VendorError

MEDIA = "application/vnd.oracle.resource+json; type="
_SECTIONS = {400: "15.5.1", 401: "15.5.2", 403: "15.5.4", 404: "15.5.5", 405: "15.5.6",
             409: "15.5.10", 500: "15.6.1", 502: "15.6.3", 503: "15.6.4",
             504: "15.6.5"}  # fmt: skip
LOGIN_FAILED = (
    "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at "
    "Setup > Users/Roles > User Management > View Login Audit Trail."
)
QUERY_FAILED = "Invalid search query. Detailed unprocessed description follows. "


class NetSuiteError(VendorError):
    media_type = MEDIA + "error"

    def __init__(
        self,
        status: int,
        detail: str,
        code: str = "USER_ERROR",
        where: Mapping[str, str] | None = None,  # o:errorHeader, o:errorQueryParam, o:errorPath
    ) -> None:
        if status == 429:
            kind = "https://www.rfc-editor.org/rfc/rfc6585.html#section-4"
        else:
            section = _SECTIONS.get(status, "15.6.1" if status >= 500 else "15.5.1")
            kind = f"https://www.rfc-editor.org/rfc/rfc9110.html#section-{section}"
        try:
            title = HTTPStatus(status).phrase
        except ValueError:
            title = "Error"
        document = {
            "type": kind,
            "title": title,
            "status": status,
            "o:errorDetails": [{"detail": detail, "o:errorCode": code, **(where or {})}],
        }
        super().__init__(status, document, detail)
        self.detail, self.code = detail, code


def fault(status: int, message: str) -> NetSuiteError:
    """Injected faults, phrased as NetSuite phrases them."""
    if status == 429:
        return NetSuiteError(status, message, "CONCURRENCY_LIMIT_EXCEEDED")
    return NetSuiteError(status, message, "UNEXPECTED_ERROR" if status >= 500 else "USER_ERROR")


def unauthorized(token: str | None) -> NetSuiteError:
    return NetSuiteError(401, LOGIN_FAILED, "INVALID_LOGIN")


def unrouted(method: str, path: str, status: int) -> NetSuiteError:
    if status == 404:
        return NetSuiteError(404, f"Unknown path {path}.", "NONEXISTENT_ID")
    return NetSuiteError(status, f"{method} is not allowed here.", "INVALID_PARAMETER")


def bad_header(name: str, detail: str) -> NetSuiteError:
    return NetSuiteError(400, detail, "INVALID_HEADER", {"o:errorHeader": name})


def bad_parameter(name: str, detail: str) -> NetSuiteError:
    return NetSuiteError(400, detail, "INVALID_PARAMETER", {"o:errorQueryParam": name})


def bad_field(path: str, detail: str, code: str = "INVALID_CONTENT") -> NetSuiteError:
    """A body field the sandbox does not keep (``INVALID_CONTENT``), or whose value it
    refuses (``INVALID_FLD_VALUE``); ``path`` is its JSON path (``item.items[0].rate``)."""
    return NetSuiteError(400, detail, code, {"o:errorPath": path})


def no_such_type(kind: str) -> NetSuiteError:
    return NetSuiteError(404, f"Record type '{kind}' does not exist.", "NONEXISTENT_ID")


def not_allowed(action: str, kind: str) -> NetSuiteError:
    return NetSuiteError(405, f"The sandbox cannot {action} {kind} records.", "INVALID_PARAMETER")
