"""The GraphQL-over-HTTP view: strawberry's ASGI app with opsgraph's context and error codes.

Every answer is JSON; an error is ``{"errors": [{"message", "extensions": {"code"}}]}``.
The media type follows the request's ``Accept`` (``gateway.http.media``):
``application/graphql-response+json`` when the client accepts it, else ``application/json``.
Statuses follow the GraphQL-over-HTTP spec for each: a request that is not a well-formed
GraphQL request gets a 4xx; a well-formed one that runs nothing (it does not parse, does not
validate, its variables do not fit, a limit refuses it) gets 200 with ``application/json``
and 400 with ``application/graphql-response+json``; one that runs gets 200.

  request                                                     status code
  POST body not application/json (or no Content-Type)         415    BAD_REQUEST
  a GET without a non-simple header (gateway.http.csrf)       400    CSRF_PREVENTED
  body empty, not JSON, not an object                         400    BAD_REQUEST
  a batch (an array)                                          400    BATCHING_NOT_ENABLED
  query missing or empty; a field of the wrong JSON type;     400    BAD_REQUEST
    GET variables or extensions that are not JSON
  a mutation over GET                                         405    BAD_REQUEST, Allow
  variables or extensions nested deeper than 64 levels        400    BAD_USER_INPUT
  a persisted query hash nobody registered (yet)              200    PERSISTED_QUERY_NOT_FOUND
  the hash of something else than the query sent             400    PERSISTED_QUERY_HASH_MISMATCH
  safelist: an unregistered hash, or unregistered text        400    PERSISTED_QUERY_NOT_IN_LIST,
                                                                     QUERY_NOT_IN_SAFELIST
  several operations and no operationName, or an unknown one  400    OPERATION_RESOLUTION_FAILURE
  the principal's cost budget for the window is spent         429    RATE_LIMITED, Retry-After
  the document does not parse                                 200/400 GRAPHQL_PARSE_FAILED
  a limit refuses the document (gateway.limits)               200/400 TOKEN_LIMIT, DEPTH_LIMIT, ...
  introspection without schema:read (production)              200/400 INTROSPECTION_DISABLED
  the document is not valid against the schema                200/400 GRAPHQL_VALIDATION_FAILED
  variables that do not fit their types                       200/400 BAD_USER_INPUT
  an _entities representation that does not fit (that item)   200    BAD_USER_INPUT
  an unexpected exception                                     500    INTERNAL

(200/400: ``application/json`` / ``application/graphql-response+json``.) A request error
(nothing was executed) has no ``data`` entry, as the GraphQL spec asks.

Subscriptions run over a WebSocket (``graphql-transport-ws``) and over HTTP as a stream: a
POST that accepts ``text/event-stream`` gets Server-Sent Events (the graphql-sse protocol's
distinct-connections mode: ``event: next`` per message, ``event: complete`` at the end), one
that accepts ``multipart/mixed;subscriptionSpec="1.0"`` gets Apollo's multipart
subscriptions. Both are sent a keep-alive every ``http.keep_alive_s`` while nothing
happens. Only subscriptions stream: a query or mutation sent that way is answered with one
error message, and runs only as JSON, within its deadline.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.streaming import (
    MultipartSubscriptionTransport,
    SSETransport,
)
from strawberry.schema.base import BaseSchema
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UnsetType

from connectors import inputs
from connectors.errors import GatewayError
from dashboards.web import GRAPHIQL_PAGE
from gateway import request_scope
from gateway.data.audit import Operation
from gateway.data.responses import Answer, Key, Responses, Turn
from gateway.extensions.error_codes import INTERNAL_MESSAGE, coded, report
from gateway.extensions.operation_limits import spend
from gateway.http import csrf
from gateway.http.media import Media, negotiate
from gateway.http.ws_keepalive import KeepAliveHandler
from gateway.limits.errors import LimitExceeded, RateLimited
from gateway.limits.windows import Windows
from gateway.persisted.errors import PersistedQueryError
from gateway.persisted.queries import PersistedQueries
from gateway.settings import LimitSettings
from gateway.telemetry.metrics import NO_TYPE, OTHER, Metrics, operation_label
from resolvers.context import Context

log = logging.getLogger("opsgraph.graphql")
QUERY = OperationType.QUERY.value
MAX_NESTING = 64
TOO_DEEP = f"The request nests JSON deeper than {MAX_NESTING} levels."
# JSON may escape half a UTF-16 surrogate pair (``"\\ud800"``), which is no character:
# nothing downstream (SQLite, the systems, the logs) can encode it.
NOT_TEXT = "The request holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text."
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")

# Request errors the schema reports that are not answered as the media type says. The
# spec recommends 200 (a SHOULD) when no operation can be picked; Apollo Server, whose
# code this is, says 400.
STATUS_BY_CODE = {"OPERATION_RESOLUTION_FAILURE": 400}


class RequestRefused(GatewayError):
    """The HTTP request cannot be taken as a GraphQL request: answered with ``status``."""

    code = "BAD_REQUEST"

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.headers = dict(headers or {})


class _SubscriptionsOverSSE(SSETransport):
    """Server-Sent Events for subscriptions only: a query or a mutation is answered as
    JSON, where its deadline bounds it (a stream has none)."""

    def allowed_operation_types(self, allowed: set[OperationType]) -> tuple[OperationType, ...]:
        return (OperationType.SUBSCRIPTION,)


_STREAMS = (_SubscriptionsOverSSE(), MultipartSubscriptionTransport())


def streams(scope: Scope) -> bool:
    """Whether an HTTP request asks ``/graphql`` for a subscription's stream (SSE or
    multipart): what the request scope serves without the whole-request deadline. Asked of
    every request: the header is parsed only when it names one of the two media types, and
    one that cannot be parsed asks for no stream."""
    if scope.get("path") != "/graphql" or scope.get("method") not in ("GET", "POST"):
        return False
    for name, value in scope.get("headers", ()):
        if name == b"accept":
            lowered = value.lower()
            if b"event-stream" not in lowered and b"multipart/mixed" not in lowered:
                return False
            accept = lowered.decode("latin-1")
            try:
                return any(transport.accepts(accept) for transport in _STREAMS)
            except Exception:  # noqa: BLE001 - a header strawberry cannot read: no stream
                return False
    return False


class GraphQLView(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = KeepAliveHandler
    stream_transport_classes_by_protocol = {
        GRAPHQL_SSE_PROTOCOL: _SubscriptionsOverSSE,
        MULTIPART_SUBSCRIPTION_PROTOCOL: MultipartSubscriptionTransport,
    }

    def __init__(
        self,
        schema: BaseSchema,
        *,
        persisted: PersistedQueries | None = None,
        graphiql: bool = False,
        hide_suggestions: bool = False,
        keep_alive_s: float = 15.0,
        metrics: Metrics | None = None,
        windows: Windows | None = None,
        limits: LimitSettings | None = None,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if graphiql else None,
            allow_queries_via_get=True,
            subscription_protocols=(
                GRAPHQL_TRANSPORT_WS_PROTOCOL,
                GRAPHQL_SSE_PROTOCOL,
                MULTIPART_SUBSCRIPTION_PROTOCOL,
            ),
        )
        self.persisted = persisted
        self.hide_suggestions = hide_suggestions
        # Counts the requests refused before the schema reads them (the schema's
        # ``OperationMetrics`` counts the rest).
        self.metrics = metrics
        # An answer served from the response cache spends the cost budget as executing it
        # would (``gateway.extensions.operation_limits``).
        self.windows = windows
        self.limits = limits
        self.ws_keep_alive_s = keep_alive_s  # read by KeepAliveHandler
        for transport in self._stream_transport_map.values():
            transport.heartbeat_interval = keep_alive_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Strawberry answers its refusals (HTTPException) as text/plain, and anything it
        # does not expect (a body of ``"hello"``) as a bare 500.
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive=receive)
        media = negotiate(request.headers.get("accept"))
        started = time.perf_counter()
        refused_with: str | None = None
        try:
            response = await self._answer(request)
        except _Served as served:
            response = Response(served.answer.body, media_type=media.value)
            if self.metrics is not None:
                seconds = time.perf_counter() - started
                self.metrics.graphql_request(served.answer.label, QUERY, seconds, [])
        except RequestRefused as refused:
            response = self._refusal(refused, media)
            refused_with = refused.code
        except HTTPException as error:
            worded = _in_our_words(error)
            response, refused_with = self._refusal(worded, media), worded.code
        except Exception as error:
            internal = GraphQLError(INTERNAL_MESSAGE, original_error=error)
            report(internal)
            response = self._errors(internal, media, status=500)
            refused_with = "INTERNAL"
        else:
            answer: tuple[int, dict[str, str]] | None = getattr(request.state, "answer", None)
            if answer is not None:  # a GraphQL answer (not GraphiQL's page)
                response.status_code, headers = answer
                response.headers.update({**headers, "content-type": media.value})
        if refused_with is not None and self.metrics is not None:
            seconds = time.perf_counter() - started
            self.metrics.graphql_request(OTHER, NO_TYPE, seconds, [refused_with])
        await response(scope, receive, send)

    async def _answer(self, request: Request) -> Response:
        """strawberry's answer; what the response cache may keep of it is kept, and a turn
        the cache gave this request (``Responses.get``) ended, whatever happens."""
        try:
            response = await self.run(request)
            keeping: _Keeping | None = getattr(request.state, "keeping", None)
            if keeping is not None and _status(request) == 200:
                keeping.responses.keep(
                    keeping.key, bytes(response.body), keeping.label, keeping.cost, keeping.inputs
                )
            return response
        finally:
            turn: Turn | None = getattr(request.state, "turn", None)
            if turn is not None:
                turn.done()

    @property
    def graphql_ide_html(self) -> str:
        # The gateway's own GraphiQL page: its assets come from the dashboards' pinned
        # packages, not from a CDN, so it works with no internet.
        return _graphiql_page()

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # Without GraphiQL (production), a GET without a query is a request without one.
        return self.graphql_ide is not None and super().should_render_graphql_ide(request)

    async def on_ws_connect(self, context: Context) -> UnsetType:
        """A WebSocket (``graphql-transport-ws``) names its principal once, in the payload of
        its ``connection_init``: ``{"authorization": "Bearer <token>"}`` or
        ``{"x-api-key": "<key>"}``, checked as the HTTP headers are. Anything else closes
        it with 4403; every subscription on it then runs as that principal."""
        given = context.connection_params
        headers = {}
        if isinstance(given, Mapping):
            headers = {
                name: value
                for name, value in ((k.lower(), v) for k, v in given.items())
                if name in ("authorization", "x-api-key") and isinstance(value, str)
            }
        try:
            principal = await context.services.authenticate(Headers(headers))
        except GatewayError as refused:
            log.info("WebSocket connection refused: %s", refused.message)
            attempted = Operation(None, "subscription")
            context.services.audit.denied(None, attempted, refused.code, reason=refused.message)
            raise ConnectionRejectionError() from None
        context.authenticated(principal)
        return UnsetType()  # a bare connection_ack (UNSET, typed)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | None
    ) -> Context:
        scope = request_scope.current()
        return Context(
            services=request.app.state.services,
            principal=None if scope is None else scope.principal,
            request=request,
            response=response,
        )

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData:
        # No batching is enabled, so a request is one operation; its protocol is plain
        # HTTP, or the stream its Accept asks for (SSE, multipart).
        transport = self._get_stream_transport_from_headers(request.headers)
        protocol = "http" if transport is None else transport.protocol
        if request.method == "GET":
            if not csrf.preflighted(request.headers):
                raise RequestRefused(csrf.MESSAGE, code="CSRF_PREVENTED")
            params = request.query_params
            fields: object = {
                "query": params.get("query"),
                "operationName": params.get("operationName"),
                "variables": self._json_param(params.get("variables"), "variables"),
                "extensions": self._json_param(params.get("extensions"), "extensions"),
            }
        else:
            media_type = (request.content_type or "").split(";")[0].strip().lower()
            if media_type != "application/json":
                raise RequestRefused("A POST body must be application/json.", status=415)
            body = await request.get_body()
            if not body.strip():
                raise RequestRefused("The request body is empty.")
            fields = self._json(body, "The request body")
        data = replace(_request_data(fields), protocol=protocol)
        return await self._persisted(data)

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        # Replaces strawberry's whole (which also drops queries over GET when they are not
        # allowed; they are, here), less subscriptions: over HTTP they stream (SSE,
        # multipart: ``execute_operation`` sends them to ``schema.stream``, not here), and
        # without a stream one would run as a query.
        allowed = OperationType.from_http(request_adapter.method) - {OperationType.SUBSCRIPTION}
        responses = context.services.responses
        key = responses.key(
            request_data.query,
            request_data.operation_name,
            request_data.variables,
            context.principal,
        )
        if key is not None:
            if _no_cache(request.headers):
                responses.bypassed(key)
            else:
                kept = await responses.get(key)
                if isinstance(kept, Answer):
                    return await self._served(kept, context)
                request.state.turn = kept  # ended by the view once the answer is kept
        recording = inputs.Inputs()
        token = inputs.begin(recording)
        try:
            result = await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except InvalidOperationTypeError as wrong:
            raise _wrong_type(wrong) from None
        except CannotGetOperationTypeError as unknown:
            raise HTTPException(400, unknown.as_http_error_reason()) from unknown
        except MissingQueryError as missing:
            raise HTTPException(400, "No GraphQL query found in the request") from missing
        finally:
            inputs.end(token)
        if self.persisted is not None and not _request_error(result):
            await self.persisted.keep(request_data.query, request_data.extensions)
        scope = request_scope.current()
        if key is not None and not result.errors and not (scope and scope.warnings):
            label = operation_label(
                request_data.query, key.name or None, responses.metrics.registered
            )
            request.state.keeping = _Keeping(responses, key, label, context.cost, recording)
        return result

    async def _served(self, kept: Answer, context: Context) -> ExecutionResult:
        """A kept answer, once the principal's cost budget has room for it; the view
        sends its bytes (``_Served``)."""
        try:
            if self.limits is not None:
                await spend(self.windows, self.limits, context.principal, kept.cost)
        except RateLimited as refused:
            error = GraphQLError(refused.message, original_error=refused)
            if self.metrics is not None:
                self.metrics.graphql_request(kept.label, QUERY, None, [refused.code])
            return ExecutionResult(data=None, errors=[error])
        raise _Served(kept)

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        errors = result.errors or []
        request_error = _request_error(result)
        if errors:
            result.errors = [coded(e, hide_suggestions=self.hide_suggestions) for e in errors]
        response = await super().process_result(request, result)
        answer: tuple[int, dict[str, str]] = (200, {})
        if request_error:
            del response["data"]  # nothing was executed
            media = negotiate(request.headers.get("accept"))
            answer = _request_error_status(errors, result.errors or [], media)
        request.state.answer = answer
        return response

    async def _persisted(self, data: GraphQLRequestData) -> GraphQLRequestData:
        """``data`` with the text it runs: its own, or the persisted one its hash names."""
        query = data.query
        if self.persisted is not None:
            scope = request_scope.current()
            try:
                query = await self.persisted.query(
                    data.query, data.extensions, None if scope is None else scope.principal
                )
            except PersistedQueryError as refused:
                raise RequestRefused(
                    refused.message,
                    status=refused.status,
                    code=refused.code,
                    headers=refused.headers(),
                ) from None
        if not query:
            raise RequestRefused("The request has no query.")
        if query == data.query:
            return data
        # The hash has served: nothing is registered again when the operation has run.
        extensions = {k: v for k, v in (data.extensions or {}).items() if k != "persistedQuery"}
        return replace(data, query=query, extensions=extensions)

    def _json_param(self, text: str | None, name: str) -> object:
        return None if not text else self._json(text, name)

    def _json(self, data: str | bytes, what: str) -> object:
        try:
            value = self.decode_json(data)
        except RecursionError:
            raise RequestRefused(TOO_DEEP, code="BAD_USER_INPUT") from None
        except ValueError:
            raise RequestRefused(f"{what} is not valid JSON.") from None
        if _lone_surrogate(data, value):
            raise RequestRefused(NOT_TEXT, code="BAD_USER_INPUT")
        return value

    def _refusal(self, refused: RequestRefused, media: Media) -> Response:
        error = GraphQLError(refused.message, original_error=refused)
        report(error)
        return self._errors(error, media, status=refused.status, headers=refused.headers)

    def _errors(
        self,
        error: GraphQLError,
        media: Media,
        *,
        status: int,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        return Response(
            self.encode_json({"errors": [coded(error).formatted]}),
            status_code=status,
            media_type=media.value,
            headers=headers,
        )


class _Served(Exception):  # noqa: N818 - not an error: how a kept answer reaches the view
    """A kept answer, sent as its bytes without execution (``gateway.data.responses``)."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer


@dataclass(frozen=True, slots=True)
class _Keeping:
    """What the view keeps once it has the bytes of an answer execution gave."""

    responses: Responses
    key: Key
    label: str
    cost: int
    inputs: inputs.Inputs


def _status(request: Request) -> int:
    """The status the view gives a GraphQL answer (``process_result`` says)."""
    answer: tuple[int, dict[str, str]] | None = getattr(request.state, "answer", None)
    return 200 if answer is None else answer[0]


def _no_cache(headers: Headers) -> bool:
    """Whether the request's ``Cache-Control`` asks for an answer executed now."""
    value = headers.get("cache-control")
    return value is not None and "no-cache" in value.lower()


def _request_error(result: ExecutionResult) -> bool:
    """Whether nothing was executed: no data, and no error that names a field."""
    errors = result.errors or []
    return result.data is None and bool(errors) and all(e.path is None for e in errors)


def _request_error_status(
    raised: list[GraphQLError], leaving: list[GraphQLError], media: Media
) -> tuple[int, dict[str, str]]:
    """The status (and headers) of an answer that ran nothing: the one a limit that refused
    it asks for, else the one its code has, else the media type's."""
    for error in raised:
        refused = error.original_error
        if isinstance(refused, LimitExceeded) and refused.status is not None:
            return refused.status, refused.headers()
    code = str((leaving[0].extensions or {}).get("code")) if leaving else ""
    return STATUS_BY_CODE.get(code, 400 if media is Media.GRAPHQL_RESPONSE else 200), {}


def _request_data(fields: object) -> GraphQLRequestData:
    if isinstance(fields, list):
        raise RequestRefused(
            "Batches are not supported: send one operation per request.",
            code="BATCHING_NOT_ENABLED",
        )
    if not isinstance(fields, dict):
        raise RequestRefused("The request body must be a JSON object.")
    query = fields.get("query")
    if query is not None and not isinstance(query, str):
        raise RequestRefused("query must be a string.")
    operation_name = fields.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise RequestRefused("operationName must be a string.")
    variables, extensions = fields.get("variables"), fields.get("extensions")
    for name, value in (("variables", variables), ("extensions", extensions)):
        if value is not None and not isinstance(value, dict):
            raise RequestRefused(f"{name} must be a JSON object.")
        if _deeper_than(value, MAX_NESTING):
            raise RequestRefused(TOO_DEEP, code="BAD_USER_INPUT")
    return GraphQLRequestData(
        query=query, variables=variables, operation_name=operation_name, extensions=extensions
    )


def _lone_surrogate(data: str | bytes, value: object) -> bool:
    """Whether a JSON text decoded to ``value`` holds half a surrogate pair. Only a text
    that escapes one at all is encoded again to find out."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if not SURROGATE_ESCAPE.search(raw):
        return False
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _deeper_than(value: object, limit: int) -> bool:
    """Whether ``value`` nests more than ``limit`` levels (``{}`` is one), found without
    recursion. graphql-core bounds only the nesting its input types follow; a custom scalar
    (federation's ``_Any``) takes any depth into the resolvers."""
    level = [value]
    for _ in range(limit):
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return False
    return any(isinstance(item, dict | list) for item in level)


def _in_our_words(error: HTTPException) -> RequestRefused:
    """Strawberry's refusals, with the status and headers the spec asks for (an operation
    of the wrong type is refused by ``execute_single`` itself: ``_wrong_type``)."""
    if error.status_code == 405:
        return RequestRefused(
            "Only GET and POST are accepted.", status=405, headers={"Allow": "GET, POST"}
        )
    return RequestRefused(error.reason, status=error.status_code)


def _wrong_type(error: InvalidOperationTypeError) -> RequestRefused:
    """An operation of a type the HTTP method does not take: a mutation over GET, or a
    subscription over HTTP at all."""
    if error.operation_type is OperationType.SUBSCRIPTION:
        return RequestRefused(
            "A subscription is accepted over a WebSocket to /graphql (graphql-transport-ws), "
            "or over HTTP as a stream: Accept: text/event-stream (graphql-sse) or "
            'multipart/mixed;subscriptionSpec="1.0".',
            code="SUBSCRIPTION_OVER_HTTP",
        )
    operation = error.operation_type.value
    return RequestRefused(
        f"A {operation} is only accepted over POST.", status=405, headers={"Allow": "POST"}
    )


@functools.cache
def _graphiql_page() -> str:
    return GRAPHIQL_PAGE.read_text()
