"""The GraphQL schema, assembled from the resolver modules. It is also an Apollo Federation
v2 subgraph, so a company can compose it into an existing supergraph."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import partial
from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLUnionType
from graphql.execution import Executor
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.federation.schema import FederationAny
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, Info

from gateway.errors import BadUserInput
from gateway.extensions.error_codes import ErrorCodes, report
from gateway.extensions.operation_resolution import OperationResolution
from gateway.extensions.warnings import Warnings
from gateway.logs import quoted
from resolvers.customer import CustomerQuery
from resolvers.entitlement import EntitlementQuery
from resolvers.system import SystemQuery

Query = merge_types("Query", (SystemQuery, CustomerQuery, EntitlementQuery))


class CodedExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core answers errors instead of an executor when the request cannot run. The
    operation is resolved by then (``OperationResolution``), so they say the variables do
    not fit their types: ``BAD_USER_INPUT``, not a validation failure."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> list[GraphQLError] | Executor[Any]:
        built = super().build(*args, **kwargs)
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


@dataclass(frozen=True)
class _Reference:
    """What ``resolve_reference`` of an entity takes, besides ``info``."""

    required: frozenset[str]
    accepted: frozenset[str]


class GatewaySchema(strawberry.federation.Schema):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("execution_context_class", CodedExecutor)
        super().__init__(**kwargs)
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


def build_schema() -> GatewaySchema:
    return GatewaySchema(
        query=Query,
        federation_version="2.11",
        extensions=[
            ErrorCodes,
            Warnings,
            # Parsing and validating a document costs more than executing a small one.
            partial(ParserCache, maxsize=256),
            OperationResolution,
            partial(ValidationCache, maxsize=256),
        ],
    )
