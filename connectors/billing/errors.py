"""How the stripe SDK's exceptions land on the shared error tree (``connectors.errors``)::

    stripe.RateLimitError                        -> UpstreamRateLimited (Retry-After, if sent)
    stripe.AuthenticationError, PermissionError  -> UpstreamAuthError
    stripe.APIConnectionError                    -> UpstreamTimeout when httpx timed out,
                                                    else UpstreamUnavailable
    stripe.InvalidRequestError, HTTP 404         -> UpstreamNotFound (fetch_many answers None)
    stripe.InvalidRequestError, other            -> UpstreamRejected
    stripe.CardError                             -> UpstreamRejected
    stripe.IdempotencyError                      -> UpstreamConflict (same key, other params)
    stripe.APIError 5xx (and anything unknown)   -> UpstreamUnavailable
    stripe.SignatureVerificationError            -> WebhookSignatureInvalid

Stripe's own ``message`` can echo request values, so it only goes to ``internal``; the
user-facing message names the error type, code and parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import orjson
import stripe

from connectors.errors import (
    UpstreamAuthError,
    UpstreamBusy,
    UpstreamConflict,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
    WebhookRejected,
)
from connectors.http import retry_after_seconds
from connectors.models import SystemName

SYSTEM = SystemName.BILLING.value


class WebhookSignatureInvalid(WebhookRejected):
    """A webhook whose ``Stripe-Signature`` does not prove it came from Stripe (wrong
    secret, altered body, no ``v1`` signature). Answer the sender 400 and drop the event."""

    code = "WEBHOOK_SIGNATURE_INVALID"


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A response header, whatever case the transport kept it in."""
    wanted = name.lower()
    for key, value in (headers or {}).items():
        if key.lower() == wanted:
            return value
    return None


def answer_error(body: bytes, status: int, headers: Mapping[str, str]) -> stripe.StripeError:
    """The SDK's exception for a Stripe answer that is not a success, chosen as the SDK
    chooses it (``_APIRequestor.specific_v1_api_error``, which is not public): for an
    answer read with the SDK's HTTP client but decoded by the connector (``_get``)."""
    try:
        decoded = orjson.loads(body)
        error = decoded["error"]
        if not isinstance(error, dict):
            raise TypeError(error)
    except (orjson.JSONDecodeError, KeyError, TypeError):
        text = body.decode("utf-8", "replace")
        return stripe.APIError(
            f"not Stripe's error JSON (HTTP {status})", http_body=text, http_status=status
        )
    message, code, param = error.get("message"), error.get("code"), error.get("param")
    kw: dict[str, Any] = {
        "http_body": body.decode("utf-8", "replace"), "http_status": status,
        "json_body": decoded, "headers": dict(headers),
    }  # fmt: skip
    if status == 429 or (status == 400 and code == "rate_limit"):
        return stripe.RateLimitError(message, **kw)
    if status in (400, 404) and error.get("type") == "idempotency_error":
        return stripe.IdempotencyError(message, **kw)
    if status in (400, 404):
        return stripe.InvalidRequestError(message, param, code, **kw)  # type: ignore[no-untyped-call]
    if status == 401:
        return stripe.AuthenticationError(message, **kw)
    if status == 402:
        return stripe.CardError(message, param, code, **kw)  # type: ignore[no-untyped-call]
    if status == 403:
        return stripe.PermissionError(message, **kw)
    return stripe.APIError(message, **kw)


def translate(exc: stripe.StripeError) -> UpstreamError:
    kw = {"system": SYSTEM, "internal": f"{exc!r} body={(exc.http_body or '')[:2000]}"}
    status = exc.http_status
    if isinstance(exc, stripe.RateLimitError):
        wait = retry_after_seconds(header(exc.headers, "Retry-After"))
        return UpstreamRateLimited(f"{SYSTEM} is rate limiting us", retry_after=wait, **kw)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return UpstreamAuthError(f"{SYSTEM} refused our credentials (HTTP {status})", **kw)
    if isinstance(exc, stripe.APIConnectionError):
        if isinstance(exc.__cause__, httpx.TimeoutException):
            return UpstreamTimeout(f"{SYSTEM} did not answer in time", **kw)
        return UpstreamUnavailable(f"{SYSTEM} is unreachable", **kw)
    if isinstance(exc, stripe.IdempotencyError) and status == 409:
        return UpstreamBusy(f"{SYSTEM} is still applying a request with this key", **kw)
    if isinstance(exc, stripe.IdempotencyError):
        return UpstreamConflict(
            f"{SYSTEM} saw this idempotency key with different parameters", **kw
        )
    if isinstance(exc, stripe.InvalidRequestError | stripe.CardError):
        what = ", ".join(
            f"{label} {value}"
            for label, value in (("code", exc.code), ("param", getattr(exc, "param", None)))
            if value
        )
        if status == 404:
            return UpstreamNotFound(f"{SYSTEM}: no such object ({what or 'HTTP 404'})", **kw)
        return UpstreamRejected(f"{SYSTEM} rejected the request ({what or status})", **kw)
    if status is not None and 400 <= status < 500:
        # An answer that is not Stripe's error JSON (a wrong base URL, a stand-in that
        # lacks the endpoint): retrying cannot help.
        return UpstreamRejected(f"{SYSTEM} rejected the request (HTTP {status})", **kw)
    return UpstreamUnavailable(f"{SYSTEM} failed (HTTP {status})", **kw)
