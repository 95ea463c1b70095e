"""The refusals of the abuse limits::

    GatewayError
    └── LimitExceeded           the request asks more than a limit allows; nothing ran
        ├── RequestTooLarge     the body is over ``max_body_bytes``             (413)
        ├── TokenLimit          the document has more tokens than ``max_tokens``
        ├── AliasLimit          more aliases than ``max_aliases``
        ├── DirectiveLimit      more directives than allowed, on a field or in all
        ├── DuplicateFieldLimit one field selected too often in one selection set
        ├── DepthLimit          fields nested deeper than ``max_depth``
        ├── EntitiesLimit       more ``_entities`` representations than ``max_entities``
        ├── CostLimit           the operation's estimated cost is over ``max_cost``
        └── RateLimited         the principal's requests or cost budget for the window are
                                spent; ``retry_after`` seconds                   (429)

A document-level refusal is answered like a document that does not validate: no ``data``,
200 for ``application/json``, 400 for ``application/graphql-response+json``. Catch
``LimitExceeded`` to tell a refusal from a failure; ``status`` is set where the refusal has
an HTTP status of its own.
"""

from __future__ import annotations

import math

from connectors.errors import GatewayError


class LimitExceeded(GatewayError):
    code = "LIMIT_EXCEEDED"
    status: int | None = None  # None: the status of a document that does not validate

    def headers(self) -> dict[str, str]:
        """What the answer's HTTP headers say besides the error."""
        return {}


class RequestTooLarge(LimitExceeded):
    code = "REQUEST_TOO_LARGE"
    status = 413


class TokenLimit(LimitExceeded):
    code = "TOKEN_LIMIT"


class AliasLimit(LimitExceeded):
    code = "ALIAS_LIMIT"


class DirectiveLimit(LimitExceeded):
    code = "DIRECTIVE_LIMIT"


class DuplicateFieldLimit(LimitExceeded):
    code = "DUPLICATE_FIELD_LIMIT"


class DepthLimit(LimitExceeded):
    code = "DEPTH_LIMIT"


class EntitiesLimit(LimitExceeded):
    code = "ENTITIES_LIMIT"


class CostLimit(LimitExceeded):
    code = "COST_LIMIT"


class RateLimited(LimitExceeded):
    code = "RATE_LIMITED"
    status = 429

    def __init__(self, message: str, *, retry_after: float) -> None:
        # Whole seconds, at least one: what a Retry-After header can say.
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(f"{message}; retry after {self.retry_after}s.")

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class SubscriptionLimit(LimitExceeded):
    code = "SUBSCRIPTION_LIMIT"
