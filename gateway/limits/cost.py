"""The static cost estimate of an operation, worked out from the document and its variables
before anything runs, as Apollo Router's demand control does:

- an object (a field whose type is an object, interface or union) costs 1, a leaf (a scalar
  or an enum) 0; a mutation's root field costs 10 more;
- a list multiplies the cost of what it holds by its assumed size: the value of its
  ``first`` (or ``last``) argument, given in the document, by a variable or by the
  argument's default; the number of representations for ``_entities``; and for a list
  with no such argument, the ``first`` of the connection it belongs to (``edges`` under
  ``invoices(first: 10)`` holds 10) or else ``default_list_size``;
- introspection and ``__typename`` cost nothing (introspection is gated on its own).

A document of several operations costs what its dearest operation costs. Each fragment is
costed once per place it can be spread into, so the estimate takes time in proportion to
the document's length, whatever the numbers it multiplies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_composite_type,
)

from gateway.limits.document import ENTITIES, fragments, representations

SLICING = ("first", "last")
MUTATION_COST = 10


def estimate(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: Mapping[str, object] | None,
    default_list_size: int,
) -> int:
    """The estimated cost of the dearest operation in ``document``."""
    costing = _Costing(schema, document, variables or {}, default_list_size)
    return max(
        (
            costing.operation(definition)
            for definition in document.definitions
            if isinstance(definition, OperationDefinitionNode)
        ),
        default=0,
    )


@dataclass
class _Costing:
    schema: GraphQLSchema
    document: DocumentNode
    variables: Mapping[str, object]
    default_list_size: int
    _fragments: dict[str, FragmentDefinitionNode] = field(init=False)
    _done: dict[tuple[str, int | None], int] = field(default_factory=dict)
    _open: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._fragments = fragments(self.document)

    def operation(self, definition: OperationDefinitionNode) -> int:
        root = self.schema.get_root_type(definition.operation)
        if root is None:
            return 0  # an operation type the schema lacks: validation refuses it
        extra = MUTATION_COST if definition.operation is OperationType.MUTATION else 0
        return self.selections(root, definition.selection_set, None, extra)

    def selections(
        self,
        parent: GraphQLNamedType,
        node: SelectionSetNode | None,
        sized: int | None,
        extra: int = 0,
    ) -> int:
        """The cost of one ``parent`` with the selections of ``node``. ``sized``: the size
        of the lists below a connection, from its ``first``."""
        if node is None:
            return 0
        total = 0
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                total += self.field(parent, selection, sized, extra)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                on = parent if condition is None else self.schema.get_type(condition.name.value)
                if on is not None:
                    total += self.selections(on, selection.selection_set, sized, extra)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value, sized, extra)
        return total

    def fragment(self, name: str, sized: int | None, extra: int) -> int:
        key = (name, sized)
        if key in self._done:
            return self._done[key]
        definition = self._fragments.get(name)
        if definition is None or name in self._open:
            return 0  # an unknown fragment or a cycle: validation refuses both
        on = self.schema.get_type(definition.type_condition.name.value)
        if on is None:
            return 0
        self._open.add(name)
        cost = self.selections(on, definition.selection_set, sized, extra)
        self._open.discard(name)
        self._done[key] = cost
        return cost

    def field(
        self, parent: GraphQLNamedType, node: FieldNode, sized: int | None, extra: int
    ) -> int:
        if node.name.value.startswith("__"):
            return 0
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        definition = parent.fields.get(node.name.value)
        if definition is None:
            return 0  # validation refuses it
        of = definition.type
        if isinstance(of, GraphQLNonNull):
            of = of.of_type
        named = get_named_type(of)
        size = self._size(node, definition)
        one = (1 if is_composite_type(named) else 0) + extra
        if not isinstance(of, GraphQLList):
            return one + self.selections(named, node.selection_set, size)
        items = size if size is not None else sized
        count = self.default_list_size if items is None else items
        return count * (one + self.selections(named, node.selection_set, None))

    def _size(self, node: FieldNode, definition: GraphQLField) -> int | None:
        """The size the field's own arguments give its list (or its connection's)."""
        if node.name.value == ENTITIES:
            return representations(node, self.variables)
        for name in SLICING:
            if name not in definition.args:
                continue
            given = next((a.value for a in node.arguments or () if a.name.value == name), None)
            value: object
            if isinstance(given, IntValueNode):
                value = int(given.value)
            elif isinstance(given, VariableNode):
                value = self.variables.get(given.name.value)
            elif given is None:
                value = definition.args[name].default_value
            else:
                value = None
            if type(value) is int and value >= 0:  # not a bool, not Undefined
                return value
        return None
