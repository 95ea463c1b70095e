"""Every GraphQL error leaves with ``extensions.code`` and nothing it should not carry.

A ``GatewayError`` keeps its user message and gains ``code`` (and ``system`` for upstream
failures). A parse or validation error keeps its message with a GraphQL code; errors coded
where they arise (operation resolution, variables that do not fit) keep theirs. Anything
else is a bug: it leaves as ``INTERNAL`` with a fixed message. Every message is capped at
``MESSAGE_LIMIT`` characters on the way out.

An ``UpstreamError`` (a system of record failed or refused a call) does not pass on what
the system said: its message names the system and the kind of failure, one fixed sentence
per kind (``UPSTREAM_MESSAGES``: "billing did not answer in time", "erp refused the
gateway's credentials"), beside ``code`` and ``system``. The system's own words (an error
body, which may echo data or name internals) go to the log only.

With ``hide_suggestions`` (the production profile) graphql-core's "Did you mean ...?" is
cut from every message, so that misspelt names do not map the schema for a stranger.

``report`` writes each error down once (see ``gateway.logs``): a client mistake as one INFO
line, an ``INTERNAL`` error at ERROR with its traceback.
"""

from __future__ import annotations

import re

from graphql.error import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import MaskErrors
from strawberry.schema.exceptions import InvalidOperationTypeError

from connectors.errors import (
    CircuitOpen,
    DeadlineExceeded,
    GatewayError,
    UpstreamAuthError,
    UpstreamBusy,
    UpstreamConflict,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.logs import MESSAGE_LIMIT, cut, error_line, log

INTERNAL_MESSAGE = "Internal error."
# graphql-core ends a message with its suggestions: " Did you mean 'customer'?"
SUGGESTION = re.compile(r"\s*Did you mean .*\?\Z", re.DOTALL)
# By kind of failure, most specific first; ``{system}`` is the system's name.
UPSTREAM_MESSAGES: dict[type[UpstreamError], str] = {
    DeadlineExceeded: "{system} did not answer before the request's deadline",
    UpstreamTimeout: "{system} did not answer in time",
    UpstreamUnavailable: "{system} is unavailable",
    UpstreamRateLimited: "{system} is rate limiting the gateway",
    CircuitOpen: "{system} is failing: calls to it are paused",
    UpstreamAuthError: "{system} refused the gateway's credentials",
    UpstreamBusy: "{system} is still applying a request with this key: try again",
    UpstreamNotFound: "{system} has no such record",
    UpstreamConflict: "{system} reported a conflict",
    UpstreamRejected: "{system} rejected the request",
    UpstreamError: "{system} failed",
}


def coded(error: GraphQLError, *, hide_suggestions: bool = False) -> GraphQLError:
    """The error as it may leave the gateway. Idempotent: a coded error passes unchanged."""
    message = error.message
    if hide_suggestions:
        message = SUGGESTION.sub("", message)
    if error.extensions and "code" in error.extensions:
        if message == error.message and len(message) <= MESSAGE_LIMIT:
            return error
        return _rebuild(error, message, dict(error.extensions))
    original = error.original_error
    if isinstance(original, GatewayError):
        extensions: dict[str, object] = {"code": original.code}
        if original.system:
            extensions["system"] = original.system
        return _rebuild(error, leaving_message(original), extensions)
    if isinstance(error, GraphQLSyntaxError):
        return _rebuild(error, message, {"code": "GRAPHQL_PARSE_FAILED"})
    if isinstance(original, InvalidOperationTypeError):  # only subscriptions stream
        operation = original.operation_type.value
        said = f"Only a subscription is streamed: send a {operation} with Accept: "
        return _rebuild(error, said + "application/json.", {"code": "BAD_REQUEST"})
    if original is None or isinstance(original, GraphQLError):
        return _rebuild(error, message, {"code": "GRAPHQL_VALIDATION_FAILED"})
    return _rebuild(error, INTERNAL_MESSAGE, {"code": "INTERNAL"})


def leaving_message(error: GatewayError) -> str:
    """What the client is told of ``error``."""
    if not isinstance(error, UpstreamError):
        return error.message
    kind = next(k for k in type(error).__mro__ if k in UPSTREAM_MESSAGES)
    return UPSTREAM_MESSAGES[kind].format(system=error.system or "a system of record")


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
            leaving.message if gateway_error is None else gateway_error.message,
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

    def __init__(self, hide_suggestions: bool = False) -> None:
        super().__init__(error_message=INTERNAL_MESSAGE)
        self.hide_suggestions = hide_suggestions

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [coded(error, hide_suggestions=self.hide_suggestions) for error in errors]
