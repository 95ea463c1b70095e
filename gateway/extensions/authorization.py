"""Authorization, decided once per operation before anything runs.

The schema says what each field needs, as Apollo's ``@requiresScopes(scopes: [[...]])``
does (the outer list holds alternatives, each inner list is all-of), on a field or on a
type. A type's scopes are needed by every field that returns it; a field returning an
interface or a union needs what each of its possible types needs. ``Requirements`` reads
the directives once per schema into a map ``{(type, field): requirement}``.

Before execution the operation, and every fragment it spreads, is walked once with
graphql-core's ``TypeInfo``, collecting the requirements of the fields it selects. That
depends on the document, not on who asks, so it is kept per query text (the
``NEEDS_CACHE`` most recently used); what depends on the principal is one set comparison
per distinct field. A principal lacking any is refused the whole operation with
``FORBIDDEN``, naming each such field and the scopes it needs: nothing is resolved, no
system is called, and the refusal goes to the audit log. A context without a principal
(the schema executed outside a request) holds no scopes.

A root field (query, mutation, subscription) that declares no scopes is refused to
everybody: a new mutation is closed until it says who may run it. Of the federation
fields, ``_service`` needs ``schema:read`` and ``_entities`` what its entity types need.
``@skip`` and ``@include`` are not evaluated: what an operation may select, it must be
allowed to read.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    OperationDefinitionNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_named_type,
    get_operation_ast,
    visit,
)
from strawberry.extensions import SchemaExtension
from strawberry.federation.schema_directives import RequiresScopes

from gateway.auth.principal import Principal
from gateway.auth.scopes import Scope
from gateway.data.audit import Operation

# Alternatives, any one of which suffices; each is a set of scopes needed together. No
# alternative at all: nobody may.
Requirement = frozenset[frozenset[str]]
NOBODY: Requirement = frozenset()
# The fields opsgraph's own schema does not declare (strawberry adds them).
FEDERATION: Mapping[tuple[str, str], Requirement] = {
    ("Query", "_service"): frozenset({frozenset({Scope.SCHEMA_READ.value})}),
}
NEEDS_CACHE = 256
# Longer query texts are walked each time rather than kept as cache keys.
CACHED_QUERY_CHARS = 64 * 1024
DEFINITION = "strawberry-definition"


def both(first: Requirement | None, second: Requirement | None) -> Requirement | None:
    """What satisfies ``first`` and ``second`` (None: nothing needed)."""
    if first is None or second is None:
        return first if second is None else second
    return frozenset(a | b for a in first for b in second)


def satisfied(requirement: Requirement, held: frozenset[str]) -> bool:
    return any(alternative <= held for alternative in requirement)


def shown(requirement: Requirement) -> list[list[str]]:
    """The requirement as ``@requiresScopes`` writes it."""
    return sorted(sorted(alternative) for alternative in requirement)


def said(requirement: Requirement) -> str:
    if not requirement:
        return "a scope nobody holds (it declares none)"
    return " or ".join(" and ".join(alternative) for alternative in shown(requirement))


def _declared(element: object) -> Requirement | None:
    """The ``@requiresScopes`` on a strawberry-made field or type, None when it has none."""
    definition = getattr(element, "extensions", None) or {}
    required: Requirement | None = None
    for directive in getattr(definition.get(DEFINITION), "directives", None) or ():
        if isinstance(directive, RequiresScopes):
            declared = frozenset(frozenset(scopes) for scopes in directive.scopes)
            required = both(required, declared)
    return required


Need = tuple[str, Requirement]  # a field's schema coordinate and what it needs


class Requirements:
    """What each field of a schema needs, and what each operation needs (cached)."""

    def __init__(self, schema: GraphQLSchema) -> None:
        self.schema = schema
        self.fields = dict(self._fields())
        self._needs: OrderedDict[tuple[str, str | None], tuple[Need, ...]] = OrderedDict()

    @classmethod
    def of(cls, schema: GraphQLSchema) -> Requirements:
        found = _built.get(schema)
        if found is None:
            found = _built[schema] = cls(schema)
        return found

    def _fields(self) -> Iterator[tuple[tuple[str, str], Requirement]]:
        schema = self.schema
        roots = {
            root.name
            for root in (schema.query_type, schema.mutation_type, schema.subscription_type)
            if root is not None
        }
        for type_ in schema.type_map.values():
            if type_.name.startswith("__") or not isinstance(
                type_, GraphQLObjectType | GraphQLInterfaceType
            ):
                continue
            for name, field in type_.fields.items():
                coordinate = (type_.name, name)
                required = FEDERATION.get(coordinate) or self._field(field)
                if required is None and type_.name in roots:
                    required = NOBODY
                if required is not None:
                    yield coordinate, required

    def _field(self, field: GraphQLField) -> Requirement | None:
        return both(_declared(field), self._type(get_named_type(field.type)))

    def _type(self, type_: GraphQLNamedType) -> Requirement | None:
        """What a field returning ``type_`` needs; for an interface or a union, what each
        of its possible types needs as well."""
        required = _declared(type_)
        possible: Iterable[GraphQLObjectType] = ()
        if isinstance(type_, GraphQLUnionType):
            possible = type_.types
        elif isinstance(type_, GraphQLInterfaceType):
            possible = self.schema.get_possible_types(type_)
        for member in possible:
            required = both(required, _declared(member))
        return required

    def of_operation(
        self, query: str | None, document: DocumentNode, operation_name: str | None
    ) -> tuple[Need, ...]:
        """What the operation's fields need, by coordinate; kept per query text."""
        if query is None or len(query) > CACHED_QUERY_CHARS:
            return self._walk(document, operation_name)
        key = (query, operation_name)
        needs = self._needs.get(key)
        if needs is None:
            needs = self._needs[key] = self._walk(document, operation_name)
            if len(self._needs) > NEEDS_CACHE:
                self._needs.popitem(last=False)
        else:
            self._needs.move_to_end(key)
        return needs

    def _walk(self, document: DocumentNode, operation_name: str | None) -> tuple[Need, ...]:
        operation = get_operation_ast(document, operation_name)
        if operation is None:  # validation refuses it before execution
            return ()
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        found: dict[str, Requirement] = {}
        walking: list[OperationDefinitionNode | FragmentDefinitionNode] = [operation]
        spread: set[str] = set()
        while walking:
            type_info = TypeInfo(self.schema)
            fields = _Fields(type_info, self.fields, found)
            visit(walking.pop(), TypeInfoVisitor(type_info, fields))
            for name in fields.spreads - spread:
                spread.add(name)
                if name in fragments:
                    walking.append(fragments[name])
        return tuple(sorted(found.items()))


_built: weakref.WeakKeyDictionary[GraphQLSchema, Requirements] = weakref.WeakKeyDictionary()


class _Fields(Visitor):
    """Collects the requirements of the fields a definition selects, and the fragments it
    spreads (walked after it, each once)."""

    def __init__(
        self,
        type_info: TypeInfo,
        fields: Mapping[tuple[str, str], Requirement],
        found: dict[str, Requirement],
    ) -> None:
        super().__init__()
        self.type_info, self.fields, self.found = type_info, fields, found
        self.spreads: set[str] = set()

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        parent = self.type_info.get_parent_type()
        if parent is None:
            return
        required = self.fields.get((parent.name, node.name.value))
        if required is not None:
            self.found[f"{parent.name}.{node.name.value}"] = required

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> None:
        self.spreads.add(node.name.value)


def forbidden(missing: Iterable[Need]) -> GraphQLError:
    missing = list(missing)
    return GraphQLError(
        "Not authorized: "
        + "; ".join(f"{coordinate} needs {said(required)}" for coordinate, required in missing)
        + ".",
        extensions={
            "code": "FORBIDDEN",
            "fields": [
                {"field": coordinate, "scopes": shown(required)} for coordinate, required in missing
            ],
        },
    )


class Authorization(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None:
            requirements = Requirements.of(context.schema._schema)
            needs = requirements.of_operation(
                context.query, context.graphql_document, context.operation_name
            )
            principal = getattr(context.context, "principal", None)
            held: frozenset[str] = frozenset() if principal is None else principal.scopes
            missing = [(c, r) for c, r in needs if not satisfied(r, held)]
            if missing:
                refusal = forbidden(missing)
                self._audit(principal, refusal)
                # Raised before execution, strawberry answers it as the operation's only
                # error (subscriptions included) and runs nothing.
                raise refusal
        yield

    def _audit(self, principal: Principal | None, refusal: GraphQLError) -> None:
        context = self.execution_context
        services = getattr(context.context, "services", None)
        if services is None:
            return
        operation = Operation(
            context.operation_name, context.operation_type.value, context.variables
        )
        fields = (refusal.extensions or {})["fields"]
        services.audit.denied(principal, operation, "FORBIDDEN", fields=fields)
