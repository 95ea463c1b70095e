"""Schema governance: the schema is committed as ``schema.graphql`` and the running schema
must not drift from it unseen.

The snapshot is the subgraph SDL: what strawberry's printer makes of ``build_schema()``,
the very text the gateway answers to ``_service { sdl }`` (strawberry resolves that field
with the same printer on the same schema). It carries the directives applied to the schema:
the federation ``@link`` and ``@key``, the ``@requiresScopes`` that say who may read a field,
and ``@deprecated``. What introspection (or graphql-core's ``print_schema``) gives is the
public API without them: a review of that would not show a field changing its scopes, nor
a change of entity key that a composing router would reject.

``compare`` reads both texts with graphql-core and lists every difference:

- ``find_schema_changes`` (what ``find_breaking_changes`` and ``find_dangerous_changes``
  filter from) classes each change of the type system as BREAKING (a removed field,
  argument or enum value, a changed argument type...), DANGEROUS (an enum value or optional
  argument added, a default changed) or SAFE (a type or field added, a description changed).
  Removing a deprecated field is BREAKING like any other removal: ``@deprecated(reason:)``
  announces a removal, it does not make one safe, and the field stays until a commit removes
  it from the snapshot too, where the reviewer reads it as breaking.
- Applied directives are invisible to graphql-core's comparison; a change in them (a scope
  required, a deprecation added or lifted, an entity key) is listed as OTHER, and so is a
  difference in order or layout only, so that any difference in the text is explained.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from graphql import (
    BreakingChangeType,
    DangerousChangeType,
    DocumentNode,
    EnumTypeDefinitionNode,
    EnumValueDefinitionNode,
    FieldDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    InputObjectTypeDefinitionNode,
    InputValueDefinitionNode,
    InterfaceTypeDefinitionNode,
    ObjectTypeDefinitionNode,
    SafeChangeType,
    SchemaDefinitionNode,
    TypeDefinitionNode,
    build_ast_schema,
    parse,
    print_ast,
)
from graphql.utilities import find_schema_changes
from strawberry.printer import print_schema

from gateway.errors import ConfigurationError
from gateway.schema import build_schema

WRITE = "opsgraph schema write"


class Verdict(StrEnum):
    BREAKING = "BREAKING"
    DANGEROUS = "DANGEROUS"
    SAFE = "SAFE"
    OTHER = "OTHER"


@dataclass(frozen=True)
class Change:
    verdict: Verdict
    kind: str  # graphql-core's change type, or APPLIED_DIRECTIVES_CHANGED / LAYOUT_CHANGED
    description: str

    def __str__(self) -> str:
        return f"{self.verdict:<9} {self.kind}: {self.description}"


# What directives can be applied to, in the SDL strawberry prints.
Applicable = (
    SchemaDefinitionNode
    | TypeDefinitionNode
    | FieldDefinitionNode
    | InputValueDefinitionNode
    | EnumValueDefinitionNode
)


def running_sdl() -> str:
    """The gateway's subgraph SDL, as the snapshot holds it."""
    return print_schema(build_schema()) + "\n"


def check(snapshot: Path) -> list[Change]:
    """What differs between the snapshot at ``snapshot`` and the running schema."""
    try:
        committed = snapshot.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"{snapshot} does not exist: run `{WRITE}`") from None
    return compare(committed, running_sdl())


def write(snapshot: Path) -> list[Change]:
    """Writes the running schema to ``snapshot``: the changes that records (none when there
    was no snapshot, or one that does not parse, such as a merge conflict)."""
    try:
        changes = check(snapshot)
    except ConfigurationError:
        changes = []
    snapshot.write_text(running_sdl(), encoding="utf-8")
    return changes


def compare(snapshot: str, running: str) -> list[Change]:
    """Every difference from ``snapshot`` to ``running``, breaking first; empty when the
    texts are the same."""
    if snapshot == running:
        return []
    new = parse(running)
    try:
        old = parse(snapshot)
        before = _schema(old)
    except GraphQLError as exc:
        where = "".join(f" (line {at.line})" for at in exc.locations or ())
        raise ConfigurationError(f"the snapshot does not parse: {exc.message}{where}") from None
    except TypeError as exc:  # graphql-core's word for a type that is used but not defined
        raise ConfigurationError(f"the snapshot is not a schema: {exc}") from None
    found = find_schema_changes(before, _schema(new))
    changes = [Change(_verdict(c.type), c.type.name, c.description) for c in found]
    changes += _directive_changes(_applied(old), _applied(new))
    if not changes:
        changes.append(
            Change(Verdict.OTHER, "LAYOUT_CHANGED", "The SDL differs in order or layout only.")
        )
    order = list(Verdict)
    return sorted(changes, key=lambda change: order.index(change.verdict))


def _schema(document: DocumentNode) -> GraphQLSchema:
    # The SDL applies federation directives that it does not define (``@link`` imports them).
    return build_ast_schema(document, assume_valid_sdl=True)


def _verdict(kind: BreakingChangeType | DangerousChangeType | SafeChangeType) -> Verdict:
    if isinstance(kind, BreakingChangeType):
        return Verdict.BREAKING
    if isinstance(kind, DangerousChangeType):
        return Verdict.DANGEROUS
    return Verdict.SAFE


def _applied(document: DocumentNode) -> dict[str, str]:
    """Schema coordinate (``Type``, ``Type.field``, ``Type.field(arg:)``, ``Enum.VALUE``,
    ``schema``) -> the directives applied there, as printed ("" for none)."""
    applied: dict[str, str] = {}

    def note(coordinate: str, node: Applicable) -> None:
        applied[coordinate] = " ".join(print_ast(d) for d in node.directives or ())

    for definition in document.definitions:
        if isinstance(definition, SchemaDefinitionNode):
            note("schema", definition)
        if not isinstance(definition, TypeDefinitionNode):
            continue
        name = definition.name.value
        note(name, definition)
        if isinstance(definition, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode):
            for field in definition.fields or ():
                note(f"{name}.{field.name.value}", field)
                for arg in field.arguments or ():
                    note(f"{name}.{field.name.value}({arg.name.value}:)", arg)
        if isinstance(definition, InputObjectTypeDefinitionNode):
            for input_field in definition.fields or ():
                note(f"{name}.{input_field.name.value}", input_field)
        if isinstance(definition, EnumTypeDefinitionNode):
            for value in definition.values or ():
                note(f"{name}.{value.name.value}", value)
    return applied


def _directive_changes(old: dict[str, str], new: dict[str, str]) -> list[Change]:
    """Where something present on both sides has other directives applied (what is added or
    removed as a whole graphql-core reports)."""
    return [
        Change(
            Verdict.OTHER,
            "APPLIED_DIRECTIVES_CHANGED",
            f"Directives on {coordinate} changed from {old[coordinate] or '(none)'}"
            f" to {new[coordinate] or '(none)'}.",
        )
        for coordinate in old
        if coordinate in new and old[coordinate] != new[coordinate]
    ]
