"""The audit log: who tried what and what came of it (``gateway.data.audit``)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from gateway.auth.scopes import Scope, needs
from gateway.data.audit import Entry
from gateway.errors import BadUserInput
from resolvers.context import Info
from resolvers.pagination import Connection, check_first


@strawberry.federation.type(
    name="AuditEntry",
    description="One entry of the audit log: a write, or a refused request.",
    requires_scopes=needs(Scope.AUDIT_READ),
)
class AuditEntryType:
    id: strawberry.ID
    at: datetime
    actor: str = strawberry.field(description="The principal: a token's subject, key:<id>.")
    action: str = strawberry.field(description="write.<mutation>, access.denied, ...")
    object_kind: str
    object_id: str
    request_id: str | None
    detail: JSON = strawberry.field(
        description="The operation, its variables (secrets filtered) and the result."
    )

    @classmethod
    def of(cls, entry: Entry) -> AuditEntryType:
        return cls(
            id=strawberry.ID(str(entry.id)),
            at=entry.at,
            actor=entry.actor,
            action=entry.action,
            object_kind=entry.object_kind,
            object_id=entry.object_id,
            request_id=entry.request_id,
            detail=JSON(dict(entry.detail)),
        )


@strawberry.input(description="Which audit entries: each given field narrows them.")
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None


@strawberry.type
class AuditQuery:
    @strawberry.federation.field(
        description="The audit log, newest first.", requires_scopes=needs(Scope.AUDIT_READ)
    )
    async def audit_log(
        self,
        info: Info,
        filter: AuditFilter | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[AuditEntryType]:
        check_first(first)
        if after is not None and not after.isdigit():
            raise BadUserInput("after is not a cursor of this list")
        given = filter or AuditFilter()
        entries, more, total = await info.context.services.audit.read(
            actor=given.actor,
            action=given.action,
            since=given.since,
            first=first,
            before=None if after is None else int(after),
        )
        return Connection.of(
            entries, more, total, cursor=lambda e: str(e.id), node=AuditEntryType.of
        )
