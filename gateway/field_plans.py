"""Field plans: what graphql-core collects for each object of an operation, kept from one
request to the next (the read-path speed issue: work per document is done once).

To execute an object, graphql-core collects the fields asked of it: the selections of the
fields that return it, merged with those of their fragments for the object's type, with
``@skip`` and ``@include`` applied. It does that once per request for each type and set of
field nodes: a customer 360 collects dozens of sets every request, 5% of its CPU executed.
For an operation whose collection cannot depend on the request (no directive with a variable
argument, no ``@defer`` or ``@stream``, no fragment arguments), the sets are the same every
time, and its plan keeps them, keyed by the object's type and the ids of the field nodes.
The parser's cache hands every request of a document the same nodes, and a plan holds its
operation, so those ids are not reused while it is kept.

Plans live with their schema (``WeakKeyDictionary``: a schema dropped takes its plans with
it), the last ``KEPT`` operations of each.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Any

from graphql import (
    BREAK,
    DirectiveNode,
    FragmentSpreadNode,
    GraphQLSchema,
    ListValueNode,
    Node,
    ObjectValueNode,
    OperationDefinitionNode,
    ValueNode,
    VariableNode,
    Visitor,
    visit,
)

KEPT = 256
# Directives that make a collection depend on more than the document.
_INCREMENTAL = frozenset({"defer", "stream"})

Plan = dict[tuple[Any, ...], Any]


class _Plans:
    """One schema's plans, the last ``KEPT`` operations' (None: one that cannot have one)."""

    def __init__(self) -> None:
        self._kept: OrderedDict[int, tuple[OperationDefinitionNode, Plan | None]] = OrderedDict()

    def of(self, operation: OperationDefinitionNode, fragments: dict[str, Any]) -> Plan | None:
        key = id(operation)
        found = self._kept.get(key)
        if found is not None and found[0] is operation:
            self._kept.move_to_end(key)
            return found[1]
        plan: Plan | None = {} if fixed(operation, fragments) else None
        self._kept[key] = (operation, plan)
        if len(self._kept) > KEPT:
            self._kept.popitem(last=False)
        return plan


_SCHEMAS: weakref.WeakKeyDictionary[GraphQLSchema, _Plans] = weakref.WeakKeyDictionary()


def plan_of(
    schema: GraphQLSchema, operation: OperationDefinitionNode, fragments: dict[str, Any]
) -> Plan | None:
    """The plan of ``operation`` (with the document's ``fragments``: graphql-core's
    ``FragmentDetails`` by name) on ``schema``; None when its collection may vary."""
    plans = _SCHEMAS.get(schema)
    if plans is None:
        plans = _SCHEMAS[schema] = _Plans()
    return plans.of(operation, fragments)


def fixed(operation: OperationDefinitionNode, fragments: dict[str, Any]) -> bool:
    """Whether collecting the fields of ``operation`` gives the same sets whatever its
    variables: no directive in it or its fragments takes a variable or defers, and no
    fragment takes arguments."""
    if any(getattr(details, "variable_signatures", None) for details in fragments.values()):
        return False
    finder = _Varying()
    for node in (operation, *(details.definition for details in fragments.values())):
        visit(node, finder)
        if finder.varies:
            return False
    return True


class _Varying(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.varies = False

    def enter_directive(self, node: DirectiveNode, *_: object) -> object:
        values = (argument.value for argument in node.arguments or ())
        if node.name.value in _INCREMENTAL or any(map(_takes_variable, values)):
            self.varies = True
            return BREAK
        return None

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: object) -> object:
        if getattr(node, "arguments", None):
            self.varies = True
            return BREAK
        return None


def _takes_variable(value: ValueNode | Node) -> bool:
    if isinstance(value, VariableNode):
        return True
    if isinstance(value, ListValueNode):
        return any(map(_takes_variable, value.values))
    if isinstance(value, ObjectValueNode):
        return any(_takes_variable(field.value) for field in value.fields)
    return False
