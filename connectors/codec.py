"""Canonical records as plain JSON and back, with an ``@type`` discriminator.

Used for sandbox seeding and the seed manifest, so that a test can compare what a connector
returns with what was seeded, field for field.
"""

from __future__ import annotations

import dataclasses
import types
import typing
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


def _decode(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _decode(inner[0], value)
    if hint is Money:
        return Money(value["amount_minor"], value["currency"])
    if hint is datetime:
        return datetime.fromisoformat(value)
    if hint is date:
        return date.fromisoformat(value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    if origin is tuple:
        return tuple(value)
    return value


def from_json(data: dict[str, Any]) -> models.Record:
    try:
        cls = RECORD_TYPES[data["@type"]]
    except KeyError:
        raise ValueError(f"unknown record type {data.get('@type')!r}") from None
    hints = _HINTS[cls.__name__]
    kwargs = {
        f.name: _decode(hints[f.name], data[f.name])
        for f in dataclasses.fields(cls)
        if f.name in data
    }
    return cls(**kwargs)
