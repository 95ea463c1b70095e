"""The GraphQL-over-HTTP view: strawberry's ASGI app with opsgraph's context and error codes.

Every answer is JSON; an error is ``{"errors": [{"message", "extensions": {"code"}}]}``.
Statuses follow the GraphQL-over-HTTP spec for ``application/json``: a request that is not a
well-formed GraphQL request gets a 4xx; a well-formed one gets 200 whatever GraphQL says
about it, except an operation that cannot be picked, which gets 400 as in Apollo Server.

  request                                                     status code
  POST body not application/json (or no Content-Type)         415    BAD_REQUEST
  body empty, not JSON, not an object; a batch (an array)     400    BAD_REQUEST
  query missing or empty; a field of the wrong JSON type;     400    BAD_REQUEST
    GET variables or extensions that are not JSON
  a mutation over GET                                         405    BAD_REQUEST, Allow
  variables or extensions nested deeper than 64 levels        400    BAD_USER_INPUT
  several operations and no operationName, or an unknown one  400    OPERATION_RESOLUTION_FAILURE
  the document does not parse                                 200    GRAPHQL_PARSE_FAILED
  the document is not valid against the schema                200    GRAPHQL_VALIDATION_FAILED
  variables that do not fit their types                       200    BAD_USER_INPUT
  an _entities representation that does not fit (that item)   200    BAD_USER_INPUT
  an unexpected exception                                     500    INTERNAL

A request error (nothing was executed) has no ``data`` entry, as the GraphQL spec asks.
"""

from __future__ import annotations

from collections.abc import Mapping

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult

from connectors.errors import GatewayError
from gateway import request_scope
from gateway.extensions.error_codes import INTERNAL_MESSAGE, coded, report
from resolvers.context import Context

MAX_NESTING = 64
TOO_DEEP = f"The request nests JSON deeper than {MAX_NESTING} levels."

# Request errors the schema reports that are not answered with 200. The spec recommends
# 200 (a SHOULD) when no operation can be picked; Apollo Server, whose code this is, says 400.
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


class GraphQLView(GraphQL[Context, None]):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Strawberry answers its refusals (HTTPException) as text/plain, and anything it
        # does not expect (a body of ``"hello"``) as a bare 500.
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope, receive=receive))
        except RequestRefused as refused:
            response = self._refusal(refused)
        except HTTPException as error:
            response = self._refusal(_in_our_words(error))
        except Exception as error:
            internal = GraphQLError(INTERNAL_MESSAGE, original_error=error)
            report(internal)
            response = self._errors(internal, status=500)
        await response(scope, receive, send)

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
        # No HTTP streaming transport (SSE, multipart) and no batching are enabled, so a
        # request is one plain operation.
        if request.method == "GET":
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
        return _request_data(fields)

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        if result.errors:
            result.errors = [coded(error) for error in result.errors]
        response = await super().process_result(request, result)
        if result.data is None and result.errors and all(e.path is None for e in result.errors):
            del response["data"]  # a request error: nothing was executed
        return response

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        if isinstance(response_data, dict) and "data" not in response_data:
            first = (response_data.get("errors") or [None])[0]
            code = first.get("extensions", {}).get("code") if isinstance(first, dict) else None
            response.status_code = STATUS_BY_CODE.get(str(code), response.status_code)
        return response

    def _json_param(self, text: str | None, name: str) -> object:
        return None if not text else self._json(text, name)

    def _json(self, data: str | bytes, what: str) -> object:
        try:
            return self.decode_json(data)
        except RecursionError:
            raise RequestRefused(TOO_DEEP, code="BAD_USER_INPUT") from None
        except ValueError:
            raise RequestRefused(f"{what} is not valid JSON.") from None

    def _refusal(self, refused: RequestRefused) -> Response:
        error = GraphQLError(refused.message, original_error=refused)
        report(error)
        return self._errors(error, status=refused.status, headers=refused.headers)

    def _errors(
        self, error: GraphQLError, *, status: int, headers: Mapping[str, str] | None = None
    ) -> Response:
        return Response(
            self.encode_json({"errors": [coded(error).formatted]}),
            status_code=status,
            media_type="application/json",
            headers=headers,
        )


def _request_data(fields: object) -> GraphQLRequestData:
    if isinstance(fields, list):
        raise RequestRefused("Batches are not supported: send one operation per request.")
    if not isinstance(fields, dict):
        raise RequestRefused("The request body must be a JSON object.")
    query = fields.get("query")
    if query is None or query == "":
        raise RequestRefused("The request has no query.")
    if not isinstance(query, str):
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
    """Strawberry's refusals, with the status and headers the spec asks for."""
    # Strawberry raises its HTTPException from the schema's exception.
    cause = error.__cause__
    if isinstance(cause, InvalidOperationTypeError):
        operation = cause.operation_type.value
        return RequestRefused(
            f"A {operation} is only accepted over POST.", status=405, headers={"Allow": "POST"}
        )
    if error.status_code == 405:
        return RequestRefused(
            "Only GET and POST are accepted.", status=405, headers={"Allow": "GET, POST"}
        )
    return RequestRefused(error.reason, status=error.status_code)
