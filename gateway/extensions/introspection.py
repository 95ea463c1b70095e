"""Introspection (``__schema``, ``__type``) in the production profile is for principals
holding ``schema:read`` (the composing router's credential, the platform team): anyone else
is refused with ``INTROSPECTION_DISABLED`` once the document is parsed, before it is
validated, wherever in the document (fragments too) it asks. ``_service`` is closed the
same way by authorization (``gateway.extensions.authorization``: it needs ``schema:read``).

Whoever may introspect is bounded by graphql-core's ``MaxIntrospectionDepthRule`` (no
``fields { type { fields ... } } }`` cycles more than three lists deep), refused here as
``DEPTH_LIMIT`` like any document nested too deep.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import (
    DocumentNode,
    ExecutableDefinitionNode,
    FieldNode,
    GraphQLError,
    SelectionSetNode,
)
from graphql.validation import MaxIntrospectionDepthRule
from strawberry.extensions import SchemaExtension

from connectors.errors import GatewayError
from gateway.auth.scopes import Scope
from gateway.limits.document import INTROSPECTION


class IntrospectionDisabled(GatewayError):
    code = "INTROSPECTION_DISABLED"


class IntrospectionDepthRule(MaxIntrospectionDepthRule):
    def report_error(self, error: GraphQLError) -> None:
        super().report_error(
            GraphQLError(error.message, error.nodes, extensions={"code": "DEPTH_LIMIT"})
        )


class Introspection(SchemaExtension):
    def __init__(self, open_to_all: bool = False) -> None:
        self.open_to_all = open_to_all  # the development profile

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = tuple(
            IntrospectionDepthRule if rule is MaxIntrospectionDepthRule else rule
            for rule in context.validation_rules
        )
        yield

    def on_parse(self) -> Iterator[None]:
        yield
        context = self.execution_context
        principal = getattr(context.context, "principal", None)
        if self.open_to_all or (principal is not None and principal.may(Scope.SCHEMA_READ)):
            return
        if context.graphql_document is not None and _introspects(context.graphql_document):
            raise IntrospectionDisabled(
                "Introspection is disabled: it needs the schema:read scope."
            )


def _introspects(document: DocumentNode) -> bool:
    stack: list[SelectionSetNode] = [
        definition.selection_set
        for definition in document.definitions
        if isinstance(definition, ExecutableDefinitionNode)
    ]
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FieldNode) and selection.name.value in INTROSPECTION:
                return True
            below = getattr(selection, "selection_set", None)
            if below is not None:
                stack.append(below)
    return False
