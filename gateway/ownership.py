"""The ownership map: which system of record owns each object kind.

Ownership is configuration (``ownership.toml``), validated at start so that a typo never
routes a write to the wrong system.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from connectors.models import ObjectKind, SystemName
from gateway.errors import ConfigurationError, OwnershipViolation


@dataclass(frozen=True)
class OwnershipMap:
    owners: Mapping[ObjectKind, SystemName]

    def owner(self, kind: ObjectKind) -> SystemName:
        return self.owners[kind]

    def check_write(self, kind: ObjectKind, system: SystemName) -> None:
        """Refuse a write aimed at a system that does not own ``kind``."""
        owner = self.owners[kind]
        if system is not owner:
            raise OwnershipViolation(
                f"{kind} is owned by {owner}; {system} may not write it", system=system.value
            )

    def kinds_of(self, system: SystemName) -> list[ObjectKind]:
        return [k for k, s in self.owners.items() if s is system]

    @classmethod
    def parse(cls, text: str, source: str = "ownership file") -> OwnershipMap:
        def fail(why: str) -> ConfigurationError:
            return ConfigurationError(f"{source}: {why}")

        try:
            table = tomllib.loads(text).get("owners")
        except tomllib.TOMLDecodeError as exc:
            raise fail(f"not valid TOML ({exc})") from None
        if not isinstance(table, dict):
            raise fail("needs an [owners] table")
        owners: dict[ObjectKind, SystemName] = {}
        for system_name, kinds in table.items():
            try:
                system = SystemName(system_name)
            except ValueError:
                raise fail(f"unknown system {system_name!r}") from None
            if not isinstance(kinds, list):
                raise fail(f"{system_name} must list object kinds")
            for kind_name in kinds:
                try:
                    kind = ObjectKind(kind_name)
                except ValueError:
                    raise fail(f"unknown object kind {kind_name!r} under {system_name}") from None
                if kind in owners:
                    raise fail(f"{kind} is owned by both {owners[kind]} and {system}")
                owners[kind] = system
        missing = [k.value for k in ObjectKind if k not in owners]
        if missing:
            raise fail(f"no owner for {', '.join(missing)}")
        return cls(owners)

    @classmethod
    def load(cls, path: Path) -> OwnershipMap:
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigurationError(f"ownership file {path}: {exc.strerror}") from None
        return cls.parse(text, source=f"ownership file {path}")
