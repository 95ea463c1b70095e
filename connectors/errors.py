"""The error tree shared by connectors and the gateway.

The root lives here, not in ``gateway``, because connectors may not import the gateway and
both raise errors of one family::

    GatewayError                    code, message (safe for users), retryable, system
    └── UpstreamError               a system of record failed or refused a call
        ├── UpstreamTimeout         no answer within the call's deadline       (retryable)
        │   └── DeadlineExceeded    the request's own deadline came first      (not retried)
        ├── UpstreamUnavailable     connection refused/dropped, 5xx            (retryable)
        ├── UpstreamRateLimited     429; ``retry_after`` seconds, if given     (retryable)
        ├── CircuitOpen             the breaker refuses calls for now          (not retried)
        ├── UpstreamAuthError       401/403: our credentials are wrong
        ├── UpstreamNotFound        the record does not exist there
        ├── UpstreamConflict        409 or an ambiguous match (Salesforce 300)
        ├── UpstreamBusy            the same idempotency key is still in flight there (retryable)
        └── UpstreamRejected        4xx validation: the system said no
    └── WebhookRejected             an inbound webhook failed verification (bad signature,
                                    stale timestamp): drop it, never act on it

Catch ``UpstreamError`` to handle "that system did not give us an answer"; check
``retryable`` to decide whether trying again could help. ``message`` is what may leave the
gateway; ``internal`` is for logs only and may carry upstream bodies.
"""

from __future__ import annotations


class GatewayError(Exception):
    code: str = "INTERNAL"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        system: str | None = None,
        internal: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.system = system
        self.internal = internal
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class UpstreamError(GatewayError):
    code = "UPSTREAM_ERROR"


class UpstreamTimeout(UpstreamError):
    code = "UPSTREAM_TIMEOUT"
    retryable = True


class DeadlineExceeded(UpstreamTimeout):
    """The request's deadline ended the wait, not the system's own timeout: no retry, and
    no mark against the system's breaker."""

    retryable = False


class UpstreamUnavailable(UpstreamError):
    code = "UPSTREAM_UNAVAILABLE"
    retryable = True


class UpstreamRateLimited(UpstreamError):
    code = "UPSTREAM_RATE_LIMITED"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: str | None):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class CircuitOpen(UpstreamError):
    code = "CIRCUIT_OPEN"


class UpstreamAuthError(UpstreamError):
    code = "UPSTREAM_AUTH"


class UpstreamNotFound(UpstreamError):
    code = "UPSTREAM_NOT_FOUND"


class UpstreamConflict(UpstreamError):
    code = "UPSTREAM_CONFLICT"


class UpstreamBusy(UpstreamError):
    """The system is still applying an earlier request under the same idempotency key (a
    retry after a crash can arrive while the first attempt runs): ask again later."""

    code = "UPSTREAM_BUSY"
    retryable = True


class UpstreamRejected(UpstreamError):
    code = "UPSTREAM_REJECTED"


class WebhookRejected(GatewayError):
    code = "WEBHOOK_REJECTED"
