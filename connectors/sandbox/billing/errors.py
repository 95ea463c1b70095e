"""Stripe's errors: ``{"error": {"type", "message", "code"?, "doc_url"?, "param"?}}``.

StripeError(status, message, type=...)
    400 invalid_request_error   parameter_unknown, parameter_missing, resource_missing
                                (on a referenced id), idempotency_error, bad values, a
                                search query outside the language, a write the object's
                                state forbids (finalizing an invoice twice, changing a
                                canceled subscription)
    401 invalid_request_error   no key, or a wrong one (echoed masked)
    404 invalid_request_error   resource_missing, an unrecognized request URL
    429 rate_limit_error        (injected)
    5xx api_error               (injected)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from connectors.sandbox.errors import VendorError

_DOCS = "https://stripe.com/docs/error-codes/"
_SUPPORT = "https://support.stripe.com/"


class StripeError(VendorError):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        body: dict[str, Any] = {"type": type, "message": message}
        if code:
            body["code"] = code
            body["doc_url"] = _DOCS + code.replace("_", "-")
        if param:
            body["param"] = param
        super().__init__(status, {"error": dict(sorted(body.items()))}, message, headers)

    def encode(self) -> bytes:
        return json.dumps(self.document, indent=2).encode()  # Stripe pretty-prints


def fault(status: int, message: str) -> StripeError:
    """Stripe's error JSON for faults the sandbox injects."""
    if status == 429:
        return StripeError(status, f"Request rate limit exceeded: {message}",
                           type="rate_limit_error")  # fmt: skip
    if status >= 500:
        return StripeError(status, f"An unknown error occurred: {message}", type="api_error")
    return StripeError(status, message)


def no_such(object_name: str, id_: str, param: str = "id", status: int = 404) -> StripeError:
    return StripeError(
        status, f"No such {object_name}: '{id_}'", code="resource_missing", param=param
    )


def unknown_parameter(name: str) -> StripeError:
    return StripeError(
        400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name
    )


def unrecognized(method: str, path: str) -> StripeError:
    return StripeError(
        404,
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or "
        f"we can help at {_SUPPORT}.",
    )


def mask(key: str) -> str:
    """How Stripe echoes a bad key: its mode prefix, stars, and the last four characters."""
    head = key[:8] if key[:8] in ("sk_test_", "sk_live_", "rk_test_", "rk_live_") else ""
    tail = key[-4:] if len(key) - len(head) > 8 else ""
    return head + "*" * max(4, len(key) - len(head) - len(tail)) + tail


def unauthorized(key: str | None) -> StripeError:
    if not key:
        message = (
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for "
            f"details, or we can help at {_SUPPORT}."
        )
    else:
        message = f"Invalid API Key provided: {mask(key)}"
    return StripeError(401, message, headers={"WWW-Authenticate": 'Basic realm="Stripe"'})


def key_reused(key: str) -> StripeError:
    return StripeError(
        400,
        "Keys for idempotent requests can only be used with the same parameters they were "
        f"first used with. Try using a key other than '{key}' if you meant to execute a "
        "different request.",
        type="idempotency_error",
    )
