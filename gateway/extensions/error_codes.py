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


class ErrorCodes(MaskErrors):
    def __init__(self) -> None:
        super().__init__(error_message="Internal error.")

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [self._coded(error) for error in errors]

    def _coded(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if isinstance(original, GatewayError):
            extensions: dict[str, object] = {"code": original.code}
            if original.system:
                extensions["system"] = original.system
            return self._rebuild(error, original.message, extensions)
        if original is None:
            code = "GRAPHQL_VALIDATION_FAILED" if error.nodes else "GRAPHQL_PARSE_FAILED"
            return self._rebuild(error, error.message, {"code": code})
        log.error("unexpected error at %s", error.path, exc_info=original)
        return self._rebuild(error, self.error_message, {"code": "INTERNAL"})

    @staticmethod
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
