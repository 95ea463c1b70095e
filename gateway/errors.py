"""The gateway's errors. The root and the upstream branch live in ``connectors.errors``
(connectors may not import the gateway); this module adds what only the gateway raises::

    GatewayError
    ├── UpstreamError ...           (see connectors.errors)
    ├── BadUserInput                the request itself is wrong: fix it and send it again
    ├── NotFound                    no such customer / record in opsgraph
    ├── Conflict                    the write contradicts what is there already
    ├── OwnershipViolation          a write aimed at a system that does not own the object
    ├── Unauthenticated             no credential, or one that does not verify (401)
    ├── Forbidden                   the principal may not do this
    ├── RequestEnded                the client left before the answer was ready (nobody
    │                               reads it; what the request was waiting for stopped)
    └── ConfigurationError          settings, the ownership file or the credit policy are
                                    invalid (start-up)

GraphQL errors carry ``extensions.code`` (and ``extensions.system`` for upstream failures);
anything that is not a ``GatewayError`` is reported as ``INTERNAL`` with no detail.
"""

from __future__ import annotations

from connectors.errors import (
    CircuitOpen,
    GatewayError,
    UpstreamAuthError,
    UpstreamConflict,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)

__all__ = [
    "BadUserInput",
    "CircuitOpen",
    "ConfigurationError",
    "Conflict",
    "Forbidden",
    "GatewayError",
    "NotFound",
    "OwnershipViolation",
    "RequestEnded",
    "Unauthenticated",
    "UpstreamAuthError",
    "UpstreamConflict",
    "UpstreamError",
    "UpstreamNotFound",
    "UpstreamRateLimited",
    "UpstreamRejected",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]


class BadUserInput(GatewayError):
    code = "BAD_USER_INPUT"


class NotFound(GatewayError):
    code = "NOT_FOUND"


class OwnershipViolation(GatewayError):
    code = "OWNERSHIP_VIOLATION"


class Conflict(GatewayError):
    """The write contradicts what is already there (an id linked to another customer)."""

    code = "CONFLICT"


class Unauthenticated(GatewayError):
    """No credential, or one that does not verify: answered 401 before GraphQL runs."""

    code = "UNAUTHENTICATED"


class Forbidden(GatewayError):
    code = "FORBIDDEN"


class RequestEnded(GatewayError):
    code = "REQUEST_ENDED"


class ConfigurationError(GatewayError):
    code = "CONFIGURATION_ERROR"
