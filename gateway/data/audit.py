"""The audit log: who tried what and what came of it, in opsgraph's own ``audit_log`` table.

Every denied access is written here (refused authentication, ``UNAUTHENTICATED``, and
refused authorization, ``FORBIDDEN``); the governed writes write theirs through the same
``record``. A row is written in the background (``Detached``): the answer never waits
for it, and a failed write is logged, not answered.

Variables are kept with their secrets filtered: the value of a key named like a credential
(token, secret, password, authorization, key) and any value that looks like one (a bearer
token, a JWT, an opsgraph API key) become ``"[filtered]"``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from graphql import GraphQLError, get_operation_ast, parse
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway import request_scope
from gateway.auth.keys import KEY_PATTERN
from gateway.auth.principal import Principal
from gateway.data.detached import Detached
from gateway.storage.tables import AuditEntry

FILTERED = "[filtered]"
# An idempotency key names a write, it opens nothing: the audit keeps it to trace retries.
SECRET_NAME = re.compile(r"token|secret|passw|authorization|(?<!idempotency)key", re.IGNORECASE)
SECRET_VALUE = re.compile(
    rf"bearer\s+\S|\beyJ[\w-]*\.[\w-]*\.|{KEY_PATTERN.pattern}", re.IGNORECASE
)
# Variables are kept up to this size (as JSON) and this depth; past it, only their size.
KEPT_CHARS = 16_384
KEPT_DEPTH = 32
# The query of a refused request is read this far, to name the operation's type.
DESCRIBE_TOKENS = 2_000


@dataclass(frozen=True)
class Entry:
    """One row of the audit log, as a reader sees it."""

    id: int
    at: datetime
    actor: str
    action: str
    object_kind: str
    object_id: str
    request_id: str | None
    detail: Mapping[str, Any]


@dataclass(frozen=True)
class Operation:
    """The GraphQL operation a request asked for, as far as it is known."""

    name: str | None
    type: str | None  # query, mutation or subscription; None: not known
    variables: Mapping[str, Any] | None = None


def describe(query: object, operation_name: object, variables: object = None) -> Operation:
    """What a request that was never executed asked for: its operation's name and type
    (from a bounded parse of ``query``) and its variables."""
    name = operation_name if isinstance(operation_name, str) else None
    kind = None
    if isinstance(query, str):
        try:
            document = parse(query, no_location=True, max_tokens=DESCRIBE_TOKENS)
        except GraphQLError:
            document = None
        found = None if document is None else get_operation_ast(document, name)
        if found is not None:
            kind = found.operation.value
            name = name or (found.name.value if found.name else None)
    return Operation(name, kind, variables if isinstance(variables, Mapping) else None)


def filtered(value: Any, depth: int = 0) -> Any:
    """``value`` with what looks like a secret replaced by ``"[filtered]"``."""
    if depth > KEPT_DEPTH:
        return "[too deep]"
    if isinstance(value, Mapping):
        return {
            str(k): FILTERED if SECRET_NAME.search(str(k)) else filtered(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [filtered(v, depth + 1) for v in value]
    if isinstance(value, str) and SECRET_VALUE.search(value):
        return FILTERED
    return value


def _kept(variables: Mapping[str, Any] | None) -> Any:
    if variables is None:
        return None
    kept = filtered(variables)
    size = len(json.dumps(kept, default=str))
    return kept if size <= KEPT_CHARS else f"[{size} characters, not kept]"


class AuditLog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._writes = Detached("audit log write")

    def denied(
        self, principal: Principal | None, operation: Operation, code: str, **detail: Any
    ) -> None:
        """A refused request: ``code`` is why (``UNAUTHENTICATED``, ``FORBIDDEN``)."""
        self.record(
            "access.denied", principal, operation, {"outcome": "denied", "code": code, **detail}
        )

    def record(
        self,
        action: str,
        principal: Principal | None,
        operation: Operation,
        result: Mapping[str, Any],
        *,
        object_kind: str = "operation",
        object_id: str | None = None,
    ) -> None:
        """Writes one row in the background; the request's id comes from its scope."""
        entry = _entry(action, principal, operation, result, object_kind, object_id)
        self._writes.start(self._write(entry))

    async def written(
        self,
        action: str,
        principal: Principal | None,
        operation: Operation,
        result: Mapping[str, Any],
        *,
        object_kind: str = "operation",
        object_id: str | None = None,
    ) -> None:
        """Writes one row before the answer leaves: a write that changed (or decided) the
        truth is never answered without its audit row."""
        await self._write(_entry(action, principal, operation, result, object_kind, object_id))

    async def read(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        first: int = 50,
        before: int | None = None,
    ) -> tuple[list[Entry], bool, int]:
        """Entries newest first, ``first`` of them older than the entry ``before``; whether
        there are more, and how many match in all."""
        query = select(AuditEntry)
        if actor is not None:
            query = query.where(AuditEntry.actor == actor)
        if action is not None:
            query = query.where(AuditEntry.action == action)
        if since is not None:
            query = query.where(AuditEntry.at >= since)
        total = select(func.count()).select_from(query.subquery())
        if before is not None:
            query = query.where(AuditEntry.id < before)
        query = query.order_by(AuditEntry.id.desc()).limit(first + 1)
        async with self._sessions() as session:
            rows = list(await session.scalars(query))
            count = await session.scalar(total) or 0
        entries = [
            Entry(r.id, r.at, r.actor, r.action, r.object_kind, r.object_id, r.request_id,
                  r.detail)
            for r in rows[:first]
        ]  # fmt: skip
        return entries, len(rows) > first, count

    async def _write(self, entry: AuditEntry) -> None:
        async with self._sessions.begin() as session:
            session.add(entry)

    async def drain(self) -> None:
        await self._writes.drain()


def _entry(
    action: str,
    principal: Principal | None,
    operation: Operation,
    result: Mapping[str, Any],
    object_kind: str,
    object_id: str | None,
) -> AuditEntry:
    request = request_scope.current()
    return AuditEntry(
        actor="anonymous" if principal is None else principal.subject[:255],
        action=action,
        object_kind=object_kind,
        object_id=(object_id or operation.name or "")[:255],
        request_id=None if request is None else request.id,
        detail={
            "principal": None
            if principal is None
            else {"subject": principal.subject, "kind": principal.kind.value},
            "operation": {"name": operation.name, "type": operation.type},
            "variables": _kept(operation.variables),
            "result": dict(result),
        },
    )
