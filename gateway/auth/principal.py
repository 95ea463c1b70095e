"""The one asking: a person or a service, what it may do and which legal entities it
may see."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from gateway.auth.scopes import ROLE_SCOPES, Role, Scope


class PrincipalKind(StrEnum):
    USER = "user"  # a bearer JWT from the identity provider
    SERVICE = "service"  # an API key


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str  # the token's ``sub``, or ``key:<id>`` for an API key
    kind: PrincipalKind
    roles: frozenset[Role]
    scopes: frozenset[Scope]
    # The legal entities whose objects it may see; None: every entity.
    entities: frozenset[str] | None = None

    @classmethod
    def of(
        cls,
        subject: str,
        kind: PrincipalKind,
        roles: Iterable[Role] = (),
        scopes: Iterable[Scope] = (),
        entities: Iterable[str] | None = None,
    ) -> Principal:
        """A principal whose scopes are its own plus its roles'."""
        held = frozenset(roles)
        granted = frozenset(scopes).union(*(ROLE_SCOPES[r] for r in held))
        return cls(subject, kind, held, granted, None if entities is None else frozenset(entities))

    def may(self, scope: Scope) -> bool:
        return scope in self.scopes

    def sees(self, entity: str | None) -> bool:
        """Whether an object of legal entity ``entity`` exists for this principal."""
        return self.entities is None or entity in self.entities
