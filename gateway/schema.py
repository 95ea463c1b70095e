"""The GraphQL schema, assembled from the resolver modules. It is also an Apollo Federation
v2 subgraph, so a company can compose it into an existing supergraph."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Any

import strawberry
from graphql import (
    GraphQLError,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLUnionType,
)
from graphql.execution import Executor
from graphql.execution.collect_fields import CollectedFields, FieldDetailsList, collect_subfields
from graphql.pyutils import Path
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache
from strawberry.federation.schema import FederationAny
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import CustomGraphQLEnumType
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, Info

from gateway.errors import BadUserInput
from gateway.extensions.authorization import Authorization
from gateway.extensions.error_codes import ErrorCodes, report
from gateway.extensions.introspection import Introspection
from gateway.extensions.operation_limits import Checked, LimitedParsing, OperationLimits
from gateway.extensions.operation_metrics import OperationMetrics
from gateway.extensions.operation_resolution import OperationResolution
from gateway.extensions.tracing import Tracing
from gateway.extensions.warnings import Warnings
from gateway.field_plans import Plan, plan_of
from gateway.limits.windows import Windows
from gateway.logs import quoted
from gateway.settings import Profile, Settings
from gateway.telemetry.metrics import Metrics
from resolvers.audit import AuditQuery
from resolvers.credit import CreditQuery
from resolvers.customer import CustomerQuery
from resolvers.entitlement import EntitlementQuery
from resolvers.mutations import Mutation
from resolvers.reconciliation import ReconciliationQuery
from resolvers.subscriptions import Subscription
from resolvers.system import SystemQuery
from resolvers.workflow import WorkflowQuery

Query = merge_types(
    "Query",
    (
        SystemQuery,
        CustomerQuery,
        EntitlementQuery,
        CreditQuery,
        WorkflowQuery,
        ReconciliationQuery,
        AuditQuery,
    ),
)


class CodedExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core answers errors instead of an executor when the request cannot run. The
    operation is resolved by then (``OperationResolution``), so they say the variables do
    not fit their types: ``BAD_USER_INPUT``, not a validation failure."""

    # The operation's field plan (``gateway.field_plans``); None: collected per request.
    _plan: Plan | None = None

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> list[GraphQLError] | Executor[Any]:
        built = super().build(*args, **kwargs)
        if isinstance(built, CodedExecutor):
            built._plan = plan_of(built.schema, built.operation, built.fragments)
        if not isinstance(built, list):
            return built
        return [
            GraphQLError(
                error.message,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                extensions={"code": "BAD_USER_INPUT"},
            )
            for error in built
        ]

    def collect_subfields(
        self, return_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> CollectedFields:
        """graphql-core's, kept in the operation's plan from one request to the next."""
        plan = self._plan
        if plan is None:
            return super().collect_subfields(return_type, field_details_list)
        key = (return_type, *[id(details.node) for details in field_details_list])
        collected: CollectedFields | None = plan.get(key)
        if collected is None:
            collected = plan[key] = collect_subfields(
                self.schema,
                self.fragments,
                self.variable_values,
                self.operation,
                return_type,
                field_details_list,
                self.hide_suggestions,
            )
        return collected

    # graphql-core declares it ``async def``; this returns a coroutine of its own
    # (``_Resolving``), which its executor awaits and schedules alike.
    def complete_awaitable_value(  # type: ignore[override]
        self,
        return_type: GraphQLOutputType,
        field_details_list: Any,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Awaitable[Any]:
        completing = super().complete_awaitable_value(
            return_type, field_details_list, info, path, result, position_context
        )
        return _Resolving(completing, result)


class _Resolving(Coroutine[Any, Any, Any]):
    """A field's value on its way: graphql-core's completion coroutine, which awaits the
    resolver's. When a sibling fails (or the deadline passes), graphql-core cancels the tasks
    it put such values in, some before they ever ran. asyncio cancels a task that has not
    started by throwing into its coroutine, which disposes of that coroutine but not of the
    resolver's it was handed and never awaited; Python then warns that it "was never
    awaited" when it is collected. Being a ``Coroutine`` itself, this is the task's own
    coroutine (``asyncio.ensure_future`` wraps any other awaitable in one that cannot see
    the throw), so the throw closes both at once instead of leaving it to the collector,
    which finalizes a cycle in no set order."""

    __slots__ = ("_completing", "_resolving")

    def __init__(self, completing: Coroutine[Any, Any, Any], resolving: object) -> None:
        self._completing = completing
        self._resolving = resolving

    def send(self, value: Any) -> Any:
        return self._completing.send(value)

    def throw(self, *thrown: Any) -> Any:
        # Thrown into before it started, the completion never awaited the resolver's.
        if inspect.getcoroutinestate(self._completing) == inspect.CORO_CREATED:
            _close_unstarted(self._resolving)
        return self._completing.throw(*thrown)

    def close(self) -> None:
        self._dispose_unstarted()
        self._completing.close()

    def __await__(self) -> Generator[Any, None, Any]:
        return self._completing.__await__()

    def __del__(self) -> None:
        self._dispose_unstarted()

    def _dispose_unstarted(self) -> None:
        _close_unstarted(self._completing)
        _close_unstarted(self._resolving)


def _close_unstarted(coroutine: object) -> None:
    if inspect.iscoroutine(coroutine) and (
        inspect.getcoroutinestate(coroutine) == inspect.CORO_CREATED
    ):
        coroutine.close()


@dataclass(frozen=True)
class _Reference:
    """What ``resolve_reference`` of an entity takes, besides ``info``."""

    required: frozenset[str]
    accepted: frozenset[str]


class GatewaySchema(strawberry.federation.Schema):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("execution_context_class", CodedExecutor)
        super().__init__(**kwargs)
        for type_ in self._schema.type_map.values():
            if isinstance(type_, CustomGraphQLEnumType):
                _name_members_at_once(type_)
        entity = self._schema.type_map.get("_Entity")
        members = entity.types if isinstance(entity, GraphQLUnionType) else ()
        self._references = {
            member.name: _reference(self.schema_converter.type_map[member.name].definition)
            for member in members
        }

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Replaces strawberry's logger, which writes every error with its traceback.
        for error in errors:
            report(error)

    def entities_resolver(
        self, info: Info, representations: list[FederationAny]
    ) -> list[FederationAny]:
        """Strawberry's, after refusing each representation that does not name an entity of
        ours with the fields its ``resolve_reference`` takes (it would fail as INTERNAL)."""
        misfits = [self._misfit(r) for r in representations]
        fitting = [r for r, misfit in zip(representations, misfits, strict=True) if not misfit]
        resolved = iter(super().entities_resolver(info, fitting))
        return [
            FederationAny(BadUserInput(f"representations[{index}] {misfit}"))
            if misfit
            else next(resolved)
            for index, misfit in enumerate(misfits)
        ]

    def _misfit(self, representation: object) -> str | None:
        if not isinstance(representation, dict):
            return "is not an object"
        typename = representation.get("__typename")
        if not isinstance(typename, str):
            return "has no __typename"
        if typename not in self._references:
            return f"names {quoted(typename)}, which is not an entity here"
        reference = self._references[typename]
        if reference is None:
            return None
        fields = set(representation) - {"__typename"}
        if missing := reference.required - fields:
            return f"lacks {', '.join(sorted(missing))} for {typename}"
        if extra := fields - reference.accepted:
            unknown = ", ".join(quoted(name) for name in sorted(extra))
            return f"has {unknown}, which {typename} does not take"
        return None


def _name_members_at_once(enum: CustomGraphQLEnumType) -> None:
    """Strawberry's enum finds the name of a member it answers by comparing the member's
    value with each of the enum's in turn: 5% of an executed customer 360's CPU (every
    object says which system it came from). This one looks the member up in a mapping made
    once; anything else (a value that is not a member) goes to strawberry's as before."""
    members: Iterable[Enum] = enum.wrapped_cls
    names = {
        member: name
        for name, value in enum.values.items()
        for member in members
        if member.value == value.value
    }
    scanning = enum.coerce_output_value

    def coerce_output_value(output_value: Any) -> str:
        name = names.get(output_value) if type(output_value) is enum.wrapped_cls else None
        return scanning(output_value) if name is None else name

    enum.coerce_output_value = coerce_output_value  # type: ignore[method-assign]


def _reference(definition: object) -> _Reference | None:
    """None for an entity strawberry builds from its representation (no resolver to fit)."""
    resolve = getattr(getattr(definition, "origin", None), "resolve_reference", None)
    if resolve is None:
        return None
    parameters = inspect.signature(resolve).parameters
    fields = {name: p for name, p in parameters.items() if name != "info"}
    return _Reference(
        required=frozenset(name for name, p in fields.items() if p.default is p.empty),
        accepted=frozenset(fields),
    )


def build_schema(
    settings: Settings | None = None,
    windows: Windows | None = None,
    metrics: Metrics | None = None,
) -> GatewaySchema:
    """The schema a gateway serves with ``settings``: its profile's closures and the abuse
    limits, the cost budget spent from ``windows``, its operations counted in ``metrics``.
    Without settings, the schema alone, with no limits (tools, benchmarks)."""
    # Parsing and validating a document costs more than executing a small one.
    parsing: list[Callable[[], SchemaExtension]] = [partial(ParserCache, maxsize=256)]
    production = settings is not None and settings.profile is Profile.PRODUCTION
    if settings is not None:
        parsing = [
            partial(LimitedParsing, settings.limits.max_tokens, maxsize=256),
            partial(OperationLimits, settings.limits, windows, Checked(settings.limits)),
            partial(Introspection, open_to_all=not production),
        ]
    # Outermost, so that its span holds everything the others do.
    traced = [Tracing] if settings is not None and settings.telemetry.tracing else []
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        federation_version="2.11",
        extensions=[
            *traced,
            # Before the error codes, so that it counts the errors as they leave.
            *([] if metrics is None else [partial(OperationMetrics, metrics)]),
            partial(ErrorCodes, hide_suggestions=production),
            Warnings,
            *parsing,
            OperationResolution,
            partial(ValidationCache, maxsize=256),
            Authorization,
        ],
    )
