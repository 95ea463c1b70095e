"""Canonical records as plain JSON and back, with an ``@type`` discriminator.

Used for sandbox seeding and the seed manifest, so that a test can compare what a connector
returns with what was seeded, field for field.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from datetime import date, datetime
from enum import Enum
from typing import Any

from connectors import models
from connectors.money import Money

RECORD_TYPES: dict[str, type[models.Record]] = {
    cls.__name__: cls
    for cls in vars(models).values()
    if isinstance(cls, type) and issubclass(cls, models.Record) and cls is not models.Record
}
_HINTS = {name: typing.get_type_hints(cls) for name, cls in RECORD_TYPES.items()}


def _encode(value: Any) -> Any:
    if isinstance(value, Money):
        return {"amount_minor": value.amount_minor, "currency": value.currency}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if isinstance(value, dict | types.MappingProxyType):
        return {k: _encode(v) for k, v in value.items()}
    return value


def to_json(record: models.Record) -> dict[str, Any]:
    out: dict[str, Any] = {"@type": type(record).__name__}
    for f in dataclasses.fields(record):
        out[f.name] = _encode(getattr(record, f.name))
    return out


def _identity(value: Any) -> Any:
    return value


def _money(value: Any) -> Money:
    return Money(value["amount_minor"], value["currency"])


def _decoder(hint: Any) -> Callable[[Any], Any]:
    """How to turn one field's JSON back into its type; chosen once per field, not per
    value (records are decoded on every cache hit)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        decode = _decoder(inner)
        return lambda value: None if value is None else decode(value)
    if hint is Money:
        return _money
    if hint is datetime:
        return datetime.fromisoformat
    if hint is date:
        return date.fromisoformat
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint
    if origin is tuple:
        return tuple
    return _identity


_DECODERS: dict[str, list[tuple[str, Callable[[Any], Any]]]] = {
    name: [(f.name, _decoder(_HINTS[name][f.name])) for f in dataclasses.fields(cls)]
    for name, cls in RECORD_TYPES.items()
}


def from_json(data: dict[str, Any]) -> models.Record:
    try:
        cls = RECORD_TYPES[data["@type"]]
    except KeyError:
        raise ValueError(f"unknown record type {data.get('@type')!r}") from None
    kwargs = {name: decode(data[name]) for name, decode in _DECODERS[cls.__name__] if name in data}
    return cls(**kwargs)
