"""What a parsed document asks for, measured before it is validated: directives on one
field and in all, how often one field repeats in one selection set, aliases, how deep
fields nest, and how many representations ``_entities`` is given.

Each selection set and each fragment is walked once, so a document costs time in
proportion to its length; a fragment's depth and aliases are counted once and added at every
spread (as if the document were written out), so a fragment spread twice counts twice.
Introspection (``__schema``, ``__type``) is not counted: it is refused outright in
production to principals without ``schema:read``, and graphql-core's
``MaxIntrospectionDepthRule`` bounds it for the others. A fragment cycle counts nothing
here; validation refuses it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)

from gateway.limits.errors import (
    AliasLimit,
    DepthLimit,
    DirectiveLimit,
    DuplicateFieldLimit,
    EntitiesLimit,
)
from gateway.logs import quoted
from gateway.settings import LimitSettings

INTROSPECTION = frozenset({"__schema", "__type"})
ENTITIES = "_entities"


@dataclass(frozen=True)
class _Below:
    """What a selection set holds, written out: its depth and its aliases."""

    depth: int = 0
    aliases: int = 0


def check_document(
    document: DocumentNode, variables: Mapping[str, object] | None, limits: LimitSettings
) -> None:
    """Raises the first limit ``document`` exceeds (a ``LimitExceeded``)."""
    walk = _Walk(document, limits)
    try:
        aliases = 0
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                walk.directives(definition.directives, "the operation")
                for variable in definition.variable_definitions or ():
                    walk.directives(variable.directives, "a variable")
                aliases += walk.selections(definition.selection_set, 0).aliases
            elif isinstance(definition, FragmentDefinitionNode):
                walk.fragment(definition.name.value)
    except RecursionError:
        raise DepthLimit("The document nests fragments too deeply.") from None
    if aliases > limits.max_aliases:
        raise AliasLimit(f"The document has {aliases} aliases; the limit is {limits.max_aliases}.")
    for entities in walk.entities:
        _check_entities(entities, variables or {}, limits.max_entities)


@dataclass
class _Walk:
    document: DocumentNode
    limits: LimitSettings
    entities: list[FieldNode] = field(default_factory=list)
    _directives: int = 0
    _fragments: dict[str, FragmentDefinitionNode] = field(init=False)
    _done: dict[str, _Below] = field(default_factory=dict)
    _open: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._fragments = fragments(self.document)

    def fragment(self, name: str) -> _Below:
        if name in self._done:
            return self._done[name]
        definition = self._fragments.get(name)
        if definition is None or name in self._open:
            return _Below()  # an unknown fragment or a cycle: validation refuses both
        self._open.add(name)
        self.directives(definition.directives, f"fragment {quoted(name)}")
        # A fragment on an introspection type (``__Type``) is spread only in introspection.
        counted = not definition.type_condition.name.value.startswith("__")
        below = self.selections(definition.selection_set, 0, counted)
        self._open.discard(name)
        self._done[name] = below
        return below

    def selections(self, node: SelectionSetNode | None, depth: int, counted: bool = True) -> _Below:
        """What ``node``, at ``depth`` fields below where the walk began, holds. Not
        ``counted`` (introspection): only its directives and repeated fields are checked."""
        if node is None:
            return _Below()
        deepest = aliases = 0
        fields: Counter[str] = Counter()
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                fields[(selection.alias or selection.name).value] += 1
                self.directives(selection.directives, quoted(name))
                if name == ENTITIES:
                    self.entities.append(selection)
                inside = counted and name not in INTROSPECTION
                if inside and depth + 1 > self.limits.max_depth:
                    raise self._too_deep()
                below = self.selections(selection.selection_set, depth + 1, inside)
                deepest = max(deepest, below.depth + 1)
                aliases += below.aliases + (selection.alias is not None)
            elif isinstance(selection, InlineFragmentNode | FragmentSpreadNode):
                self.directives(selection.directives, "a fragment")
                if isinstance(selection, InlineFragmentNode):
                    below = self.selections(selection.selection_set, depth, counted)
                else:
                    below = self.fragment(selection.name.value)
                    if counted and depth + below.depth > self.limits.max_depth:
                        raise self._too_deep()
                deepest = max(deepest, below.depth)
                aliases += below.aliases
        name, repeats = fields.most_common(1)[0] if fields else ("", 0)
        if repeats > self.limits.max_field_repeats:
            raise DuplicateFieldLimit(
                f"{quoted(name)} is selected {repeats} times in one selection set; the limit "
                f"is {self.limits.max_field_repeats}."
            )
        return _Below(deepest, aliases) if counted else _Below()

    def _too_deep(self) -> DepthLimit:
        most = self.limits.max_depth
        return DepthLimit(f"The document nests fields more than {most} deep, the limit.")

    def directives(self, directives: tuple[DirectiveNode, ...] | None, where: str) -> None:
        count = len(directives or ())
        if count > self.limits.max_directives_per_field:
            raise DirectiveLimit(
                f"{where} has {count} directives; the limit is "
                f"{self.limits.max_directives_per_field} on one field or fragment."
            )
        self._directives += count
        if self._directives > self.limits.max_directives:
            raise DirectiveLimit(
                f"The document has more than {self.limits.max_directives} directives, the limit."
            )


def fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    """The document's fragments by name."""
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def representations(entities: FieldNode, variables: Mapping[str, object]) -> int | None:
    """How many representations ``_entities`` is given; None if that is not known yet
    (a variable the request does not set: validation says so)."""
    for argument in entities.arguments or ():
        if argument.name.value != "representations":
            continue
        value = argument.value
        if isinstance(value, ListValueNode):
            return len(value.values)
        if isinstance(value, VariableNode):
            given = variables.get(value.name.value)
            return len(given) if isinstance(given, list) else None
        return 1  # one object, coerced to a list of one
    return None


def _check_entities(entities: FieldNode, variables: Mapping[str, object], most: int) -> None:
    count = representations(entities, variables)
    if count is not None and count > most:
        raise EntitiesLimit(
            f"_entities is given {count} representations; the limit is {most} a request."
        )
