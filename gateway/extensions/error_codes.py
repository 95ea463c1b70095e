"""Every GraphQL error leaves with ``extensions.code`` and nothing it should not carry.

A ``GatewayError`` keeps its user message and gains ``code`` (and ``system`` for upstream
failures). A parse or validation error keeps its message with a GraphQL code; errors coded
where they arise (operation resolution, variables that do not fit) keep theirs. Anything
else is a bug: it leaves as ``INTERNAL`` with a fixed message. Every message is capped at
``MESSAGE_LIMIT`` characters on the way out.

``report`` writes each error down once (see ``gateway.logs``): a client mistake as one INFO
line, an ``INTERNAL`` error at ERROR with its traceback.
"""

from __future__ import annotations

from graphql.error import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import MaskErrors

from connectors.errors import GatewayError
from gateway.logs import MESSAGE_LIMIT, cut, error_line, log

INTERNAL_MESSAGE = "Internal error."


def coded(error: GraphQLError) -> GraphQLError:
    """The error as it may leave the gateway. Idempotent: a coded error passes unchanged."""
    if error.extensions and "code" in error.extensions:
        if len(error.message) <= MESSAGE_LIMIT:
            return error
        return _rebuild(error, error.message, dict(error.extensions))
    original = error.original_error
    if isinstance(original, GatewayError):
        extensions: dict[str, object] = {"code": original.code}
        if original.system:
            extensions["system"] = original.system
        return _rebuild(error, original.message, extensions)
    if isinstance(error, GraphQLSyntaxError):
        return _rebuild(error, error.message, {"code": "GRAPHQL_PARSE_FAILED"})
    if original is None or isinstance(original, GraphQLError):
        return _rebuild(error, error.message, {"code": "GRAPHQL_VALIDATION_FAILED"})
    return _rebuild(error, INTERNAL_MESSAGE, {"code": "INTERNAL"})


def report(error: GraphQLError) -> None:
    """Logs ``error`` (as raised, before ``coded``) once."""
    leaving = coded(error)
    code = str((leaving.extensions or {})["code"])
    original = error.original_error
    if code == "INTERNAL" and original is not None:
        message = f"{type(original).__name__}: {original}"
        log.error(error_line(code, message, path=error.path), exc_info=original)
        return
    gateway_error = original if isinstance(original, GatewayError) else None
    log.info(
        error_line(
            code,
            leaving.message,
            path=error.path,
            system=gateway_error.system if gateway_error else None,
            internal=gateway_error.internal if gateway_error else None,
        )
    )


def _rebuild(error: GraphQLError, message: str, extensions: dict[str, object]) -> GraphQLError:
    return GraphQLError(
        cut(message, MESSAGE_LIMIT),
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
