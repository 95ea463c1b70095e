"""The refusals a sandbox answers with, each in its vendor's own words::

    VendorError          status, the vendor's JSON error body and headers
    ├── StripeError      billing/errors.py   {"error": {"type", "message", "code"?, "param"?}}
    ├── NetSuiteError    erp/errors.py       {"type", "title", "status", "o:errorDetails": [...]}
    ├── SalesforceError  crm/errors.py       [{"message", "errorCode"}]
    └── ZendeskError     support/errors.py   {"error", "description"?, "details"?}

A handler raises one; the app (``routing.app``) answers it with ``response()``, and the
fault injection of ``faults.SandboxMiddleware`` phrases its failures through each system's
``errors.fault(status, message)``. Nothing outside a sandbox catches these.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response


class VendorError(Exception):
    media_type = "application/json"

    def __init__(
        self, status: int, document: Any, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.document = document
        self.headers = dict(headers or {})

    def encode(self) -> bytes:
        return json.dumps(self.document).encode()

    def response(self, headers: Mapping[str, str] | None = None) -> Response:
        """The answer, with ``headers`` added to the error's own."""
        merged = {**self.headers, **(headers or {})}
        return Response(self.encode(), self.status, merged, self.media_type)
