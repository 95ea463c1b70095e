"""The manifest of registered operations: every named operation in
``dashboards/operations/*.graphql``, whole (followed by the fragments it uses, from any file,
by name), under the SHA-256 of that text. The format is Apollo's persisted query manifest
(``apollo-persisted-query-manifest``, version 1), so Apollo's clients and tools read it too.
A client sends an operation's ``body`` as it is, or its ``id`` as the persisted query hash.

    python -m gateway.persisted.manifest [--operations DIR] [--out FILE]

``make manifest`` runs it (``make demo`` and ``make test`` do first); the safelist loads the
result at start.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
    print_ast,
)

from dashboards.operations import FOLDER, MANIFEST
from gateway.errors import ConfigurationError

FORMAT = "apollo-persisted-query-manifest"
VERSION = 1


@dataclass(frozen=True)
class Operation:
    id: str  # the SHA-256 of ``body``, hex
    name: str
    type: str  # query, mutation, subscription
    body: str


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def operations(folder: Path = FOLDER) -> list[Operation]:
    """The named operations of ``folder``'s ``.graphql`` files, with their fragments."""
    documents: dict[Path, DocumentNode] = {}
    for path in sorted(folder.glob("*.graphql")):
        try:
            documents[path] = parse(path.read_text())
        except GraphQLError as exc:
            raise ConfigurationError(f"{path}: {exc.message}") from None
    fragments = {
        definition.name.value: definition
        for document in documents.values()
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    found: dict[str, Operation] = {}
    for path, document in documents.items():
        for definition in document.definitions:
            if not isinstance(definition, OperationDefinitionNode):
                continue
            if definition.name is None:
                raise ConfigurationError(f"{path}: a registered operation needs a name")
            name = definition.name.value
            if name in found:
                raise ConfigurationError(f"{path}: another file has an operation {name!r}")
            used = _fragments(definition.selection_set, fragments, path)
            body = "\n\n".join(print_ast(d) for d in (definition, *used))
            found[name] = Operation(sha256(body), name, definition.operation.value, body)
    return list(found.values())


def _fragments(
    selections: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode], path: Path
) -> list[FragmentDefinitionNode]:
    """The fragments ``selections`` use, directly or through others, by name."""
    used: dict[str, FragmentDefinitionNode] = {}
    stack = [selections]
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in used:
                    continue
                if name not in fragments:
                    raise ConfigurationError(f"{path}: no file defines fragment {name!r}")
                used[name] = fragments[name]
                stack.append(fragments[name].selection_set)
            elif isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set:
                stack.append(selection.selection_set)
    return [used[name] for name in sorted(used)]


def build(folder: Path = FOLDER) -> dict[str, Any]:
    """The manifest of ``folder``, as JSON."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "operations": [asdict(operation) for operation in operations(folder)],
    }


def write(out: Path = MANIFEST, folder: Path = FOLDER) -> list[Operation]:
    registered = operations(folder)
    out.write_text(json.dumps(build(folder), indent=2) + "\n")
    return registered


def load(path: Path) -> dict[str, str]:
    """The registered operations of the manifest at ``path``: body by id."""
    try:
        manifest = json.loads(path.read_text())
        if manifest["format"] != FORMAT or manifest["version"] != VERSION:
            raise ValueError(f"not an {FORMAT}, version {VERSION}")
        bodies = {str(o["id"]): str(o["body"]) for o in manifest["operations"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"the persisted query manifest {path}: {exc}") from None
    for id, body in bodies.items():
        if sha256(body) != id:
            raise ConfigurationError(f"the persisted query manifest {path}: {id} is not its body")
    return bodies


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--operations", type=Path, default=FOLDER, help="the .graphql files")
    parser.add_argument("--out", type=Path, default=MANIFEST, help="the manifest to write")
    args = parser.parse_args(argv)
    for operation in write(args.out, args.operations):
        print(f"{operation.id}  {operation.type} {operation.name}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
