"""The refusals of idempotency keys::

    GatewayError
    ├── BadUserInput
    │   ├── InvalidIdempotencyKey    not 1-255 printable characters: send a valid key
    │   └── IdempotencyKeyReused     the key was used for another operation or other
    │                                input: send a new key
    └── IdempotencyInProgress        a request with the key is still running  (retryable)

    RuntimeError
    └── ClaimLost                    the gateway lost a key it had claimed (reported as
                                     INTERNAL)

Catch ``IdempotencyInProgress`` to tell "not yet" from "never": the same request may
succeed once the first one has finished, and then it is answered with the stored response.
"""

from __future__ import annotations

from connectors.errors import GatewayError
from gateway.errors import BadUserInput


class InvalidIdempotencyKey(BadUserInput):
    def __init__(self) -> None:
        super().__init__("An idempotency key is 1 to 255 printable characters.")


class IdempotencyKeyReused(BadUserInput):
    code = "IDEMPOTENCY_KEY_REUSED"

    def __init__(self) -> None:
        super().__init__(
            "This idempotency key was used for another operation or other input; "
            "send this request with a new key."
        )


class IdempotencyInProgress(GatewayError):
    code = "IDEMPOTENCY_IN_PROGRESS"
    retryable = True

    def __init__(self) -> None:
        super().__init__(
            "A request with this idempotency key is still in progress; try again later."
        )


class ClaimLost(RuntimeError):
    """The record of a claim is gone or no longer in progress when the write that holds it
    reports: it was purged, released or completed already. A bug, not a refusal."""
