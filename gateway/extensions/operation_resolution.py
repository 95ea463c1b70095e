"""Picks the operation to run as the GraphQL spec's GetOperation() does.

Strawberry runs a document's first operation when the request names none, so a document of
two operations ran the first one silently. Here a document of several operations must name
one, and a name that matches no operation is refused, both as
``OPERATION_RESOLUTION_FAILURE`` (Apollo Server's code), before validation or execution.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from gateway.logs import quoted


def unresolved(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "OPERATION_RESOLUTION_FAILURE"})


class OperationResolution(SchemaExtension):
    def on_parse(self) -> Iterator[None]:
        yield
        context = self.execution_context
        if context.graphql_document is None:
            return
        names = [
            definition.name.value if definition.name else None
            for definition in context.graphql_document.definitions
            if isinstance(definition, OperationDefinitionNode)
        ]
        # ``operation_name`` falls back to the first operation's name; only this attribute
        # holds what the request asked for.
        wanted = context._provided_operation_name
        if wanted is None and len(names) > 1:
            raise unresolved("Must provide operation name if query contains multiple operations.")
        if wanted is None and not names:
            raise unresolved("Must provide an operation.")
        if wanted is not None and wanted not in names:
            raise unresolved(f"Unknown operation named {quoted(wanted)}.")
