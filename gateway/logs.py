"""How errors are written down: user-supplied values cut short, one line per error.

A client mistake (any coded error) is one INFO line on ``opsgraph.errors``; only an
unexpected exception (``INTERNAL``) is logged at ERROR, with its traceback. Values a client
sent are cut to ``VALUE_LIMIT`` characters wherever a message shows them, so a 10 MB id is
neither echoed back nor written to the log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

log = logging.getLogger("opsgraph.errors")

VALUE_LIMIT = 200
MESSAGE_LIMIT = 1_000


def cut(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text``, or its first ``limit`` characters and how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text)} characters]"


def quoted(value: str) -> str:
    """A value the client sent, as a message shows it: quoted, cut to ``VALUE_LIMIT``."""
    if len(value) <= VALUE_LIMIT:
        return repr(value)
    return f"{value[:VALUE_LIMIT]!r}… [{len(value)} characters]"


def error_line(
    code: str,
    message: str,
    *,
    path: Sequence[str | int] | None = None,
    system: str | None = None,
    internal: str | None = None,
) -> str:
    """``code=NOT_FOUND path=customer message="..."``: values JSON-quoted, so one line."""
    fields = {
        "code": code,
        "path": None if path is None else ".".join(str(part) for part in path),
        "system": system,
        "message": message,
        "internal": internal,
    }
    return " ".join(
        f"{name}={json.dumps(cut(value), ensure_ascii=False)}"
        for name, value in fields.items()
        if value is not None
    )
