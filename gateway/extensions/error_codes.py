"""Every GraphQL error leaves with ``extensions.code`` and nothing it should not carry.

A ``GatewayError`` keeps its user message and gains ``code`` (and ``system`` for upstream
failures). A parse or validation error keeps its message with a GraphQL code. Anything else
is a bug: it is logged with its traceback and leaves as ``INTERNAL`` with a fixed message.
"""

from __future__ import annotations

import logging

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from connectors.errors import GatewayError

log = logging.getLogger("opsgraph.errors")


INTERNAL_MESSAGE = "Internal error."


def coded(error: GraphQLError) -> GraphQLError:
    """The error as it may leave the gateway. Idempotent: a coded error passes unchanged."""
    if error.extensions and "code" in error.extensions:
        return error
    original = error.original_error
    if isinstance(original, GatewayError):
        extensions: dict[str, object] = {"code": original.code}
        if original.system:
            extensions["system"] = original.system
        return _rebuild(error, original.message, extensions)
    if original is None or isinstance(original, GraphQLError):
        parse = error.message.startswith("Syntax Error")
        code = "GRAPHQL_PARSE_FAILED" if parse else "GRAPHQL_VALIDATION_FAILED"
        return _rebuild(error, error.message, {"code": code})
    log.error("unexpected error at %s", error.path, exc_info=original)
    return _rebuild(error, INTERNAL_MESSAGE, {"code": "INTERNAL"})


def _rebuild(error: GraphQLError, message: str, extensions: dict[str, object]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


class ErrorCodes(MaskErrors):
    """Codes errors on every transport; ``GraphQLView.process_result`` catches the ones
    raised before execution (parse, validation), which strawberry returns around it."""

    def __init__(self) -> None:
        super().__init__(error_message=INTERNAL_MESSAGE)

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [coded(error) for error in errors]
