"""JSON with exact decimal numbers, both ways: ``json`` writes a ``Decimal`` not at all and
reads ``1.10`` as a float, while NetSuite sends and takes amounts as plain JSON numbers that
must keep every digit."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


def dumps(value: Any) -> str:
    """JSON with ``Decimal`` written as a number, digit for digit. What holds no
    ``Decimal`` is written by ``json``'s C encoder, in the same form: a SuiteQL page of
    1000 rows (strings alone) took 11 ms through the recursion below, 1 ms there."""
    try:
        return json.dumps(value)
    except TypeError:  # a Decimal somewhere: not JSON to ``json``
        return _dumps(value)


def _dumps(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_dumps(v) for v in value) + "]"
    return json.dumps(value)


def loads(raw: str | bytes) -> Any:
    """JSON with every number that has a fraction or exponent read as a ``Decimal``."""
    return json.loads(raw, parse_float=Decimal)
