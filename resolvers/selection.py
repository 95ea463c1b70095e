from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from resolvers.context import Info


def _walk(selections: Iterable[Any], names: set[str]) -> bool:
    for selection in selections:
        if getattr(selection, "name", None) in names:
            return True
        if _walk(getattr(selection, "selections", ()), names):
            return True
    return False


def selects(info: Info, *names: str) -> bool:
    """Whether the query asks, anywhere below this field, for a field named in ``names``
    (fragments included)."""
    return _walk(info.selected_fields, set(names))
