"""Reconciliation: runs comparing billing (source) with the ERP (target), and the
exceptions they keep, ranked by business impact; opsgraph's own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

from connectors.models import ObjectKind, Posting, ReconciliationException, SystemName
from gateway.auth.scopes import Scope, needs
from gateway.data.reads import Sourced
from gateway.errors import Forbidden
from gateway.reconcile.book import ExceptionFilter, cursor_of
from gateway.reconcile.engine import Phase, RunKind, RunNotFound, RunStatus, RunView
from gateway.reconcile.scope import Period
from gateway.reconcile.scope import Scope as RunScope
from resolvers.context import Info
from resolvers.enums import ExceptionKind, ExceptionSeverity, ExceptionStatus
from resolvers.money import MoneyType
from resolvers.pagination import Connection, check_first

if TYPE_CHECKING:
    from resolvers.customer import CustomerType
    from resolvers.invoice import InvoiceType, PostingType

strawberry.enum(RunStatus, name="ReconciliationRunStatus")
strawberry.enum(Phase, name="ReconciliationPhase")
strawberry.enum(RunKind, name="ReconciliationRunKind")


@strawberry.federation.type(
    name="ReconciliationException",
    description="A difference between a source system (billing) and a target (the ERP) that "
    "someone must resolve: one per kind and invoice (or credit) across runs.",
    requires_scopes=needs(Scope.RECONCILIATION_READ),
)
class ReconciliationExceptionType:
    id: strawberry.ID
    kind: ExceptionKind
    severity: ExceptionSeverity = strawberry.field(
        description="Follows business impact: what it is worth, raised for a strategic "
        "account and for one renewing soon (reconciliation_policy.toml)."
    )
    rank: int = strawberry.field(description="Its place in the book, higher first.")
    status: ExceptionStatus
    source: SystemName
    target: SystemName
    key: str = strawberry.field(description="The invoice or credit id both sides carry.")
    entity: str = strawberry.field(description="The legal entity.")
    period: str = strawberry.field(description="The accounting period, YYYY-MM.")
    invoice_id: str | None
    posting_ids: list[str] = strawberry.field(description="The target's records involved.")
    posting_id: str | None = strawberry.field(
        deprecation_reason="An exception may involve several postings: use postingIds."
    )
    impact: MoneyType = strawberry.field(description="What the difference is worth.")
    detail: str
    first_run_id: strawberry.ID
    last_run_id: strawberry.ID
    status_by: str | None = strawberry.field(
        description="Who last moved its status (`reconciler` for auto-resolved, reopened)."
    )
    note: str | None
    created_at: datetime
    updated_at: datetime
    customer_id: strawberry.Private[str | None]

    @strawberry.field(description="The customer, when the crosswalk knows it.")
    async def customer(
        self, info: Info
    ) -> Annotated[CustomerType, strawberry.lazy("resolvers.customer")] | None:
        from resolvers.customer import CustomerType  # the customer links back here

        if self.customer_id is None:
            return None
        identity = await info.context.loaders.customer(self.customer_id)
        return None if identity is None else CustomerType.of(identity)

    @strawberry.federation.field(
        description="The billing invoice, as billing has it now (null: billing has none, "
        "an orphan's).",
        requires_scopes=needs(Scope.BILLING_READ),
    )
    async def invoice(
        self, info: Info
    ) -> Annotated[InvoiceType, strawberry.lazy("resolvers.invoice")] | None:
        from resolvers.invoice import InvoiceType

        if self.invoice_id is None:
            return None
        sourced = await info.context.loaders.invoice(self.invoice_id)
        if sourced.value is None:
            return None
        erp = None
        if self.customer_id is not None:
            identity = await info.context.loaders.customer(self.customer_id)
            erp = None if identity is None else identity.external_ids.get(SystemName.ERP)
        return InvoiceType.of(sourced.value, sourced, erp)

    @strawberry.federation.field(
        description="The ERP postings involved, as the ERP has them now.",
        requires_scopes=needs(Scope.FINANCE_READ),
    )
    async def postings(
        self, info: Info
    ) -> list[Annotated[PostingType, strawberry.lazy("resolvers.invoice")]]:
        from resolvers.invoice import PostingType

        if self.target is not SystemName.ERP:  # the shadow's own ids: read from it
            shadow = info.context.services.registry.get(self.target)
            records = await shadow.fetch_many(ObjectKind.POSTING, self.posting_ids)
            at = datetime.now(UTC)
            return [
                PostingType.of(r, Sourced(r, self.target, r.id, at, cached=False, stale=False))
                for r in records
                if isinstance(r, Posting)
            ]
        found = await asyncio.gather(*(info.context.loaders.posting(p) for p in self.posting_ids))
        return [PostingType.of(s.value, s) for s in found if s.value is not None]

    @classmethod
    def of(cls, found: ReconciliationException) -> ReconciliationExceptionType:
        return cls(
            id=strawberry.ID(found.id),
            kind=found.kind,
            severity=found.severity,
            rank=found.rank,
            status=found.status,
            source=found.source,
            target=found.target,
            key=found.key,
            entity=found.entity,
            period=found.period,
            invoice_id=found.invoice_id,
            posting_ids=list(found.posting_ids),
            posting_id=found.posting_ids[0] if found.posting_ids else None,
            impact=MoneyType.of(found.impact),
            detail=found.detail,
            first_run_id=strawberry.ID(found.first_run_id),
            last_run_id=strawberry.ID(found.last_run_id),
            status_by=found.status_by,
            note=found.note,
            created_at=found.created_at,
            updated_at=found.updated_at,
            customer_id=found.customer_id,
        )


@strawberry.type(name="ReconciliationRun", description="One comparison of a source and a target.")
class ReconciliationRunType:
    id: strawberry.ID
    kind: RunKind
    status: RunStatus
    phase: Phase
    source: SystemName
    target: SystemName
    entities: list[str] = strawberry.field(description="Empty: every legal entity.")
    period_from: str
    period_to: str
    requested_by: str
    error: str | None
    started_at: datetime
    heartbeat_at: datetime
    finished_at: datetime | None
    stats: JSON = strawberry.field(
        description="Counts so far: records read per side (source, target), keys compared, "
        "exceptions per kind (kinds), new, reopened, autoResolved."
    )

    @strawberry.field(description="Seconds from start to end (or to now while it runs).")
    def duration_s(self) -> float:
        end = self.finished_at or self.heartbeat_at
        return round((end - self.started_at).total_seconds(), 3)

    @classmethod
    def of(cls, run: RunView) -> ReconciliationRunType:
        return cls(
            id=strawberry.ID(run.id),
            kind=run.kind,
            status=run.status,
            phase=run.phase,
            source=run.scope.source,
            target=run.scope.target,
            entities=list(run.scope.entities),
            period_from=str(run.scope.first),
            period_to=str(run.scope.last),
            requested_by=run.requested_by,
            error=run.error,
            started_at=run.started_at,
            heartbeat_at=run.heartbeat_at,
            finished_at=run.finished_at,
            stats=JSON(dict(run.stats)),
        )


@strawberry.input(description="Which exceptions; every field narrows.")
class ReconciliationExceptionFilter:
    kind: ExceptionKind | None = None
    severity: ExceptionSeverity | None = strawberry.field(
        default=None, description="At least this severe."
    )
    status: ExceptionStatus | None = None
    customer_id: strawberry.ID | None = None
    entity: str | None = None
    period: str | None = strawberry.field(default=None, description="YYYY-MM.")


@strawberry.input(description="What a reconciliation run covers.")
class ReconciliationScopeInput:
    period_from: str = strawberry.field(description="The first accounting period, YYYY-MM.")
    period_to: str | None = strawberry.field(
        default=None, description="The last, inclusive (default: the first)."
    )
    entities: list[str] | None = strawberry.field(
        default=None, description="Legal entities (default: every one the principal may see)."
    )
    target: SystemName = strawberry.field(
        default=SystemName.ERP,
        description="ERP: billing against the ERP. ERP_SHADOW: the ERP against the one it "
        "replaces (a cut-over), which must agree before the old one is switched off.",
    )


def run_scope(info: Info, given: ReconciliationScopeInput) -> RunScope:
    """The scope asked for, as the principal may run it: one limited to legal entities runs
    over those only, and by default over all of them."""
    first = Period.parse(given.period_from)
    last = first if given.period_to is None else Period.parse(given.period_to)
    entities = tuple(given.entities or ())
    allowed = _allowed(info)
    if allowed is not None:
        outside = sorted(set(entities) - allowed)
        if outside:
            raise Forbidden(f"not allowed to reconcile {', '.join(outside)}")
        entities = entities or tuple(sorted(allowed))
        if not entities:
            raise Forbidden("no legal entity to reconcile")
    source = SystemName.ERP if given.target is SystemName.ERP_SHADOW else SystemName.BILLING
    return RunScope(first, last, entities, source, given.target)


def _allowed(info: Info) -> frozenset[str] | None:
    principal = info.context.principal
    return frozenset() if principal is None else principal.entities


def visible_run(info: Info, run: RunView) -> bool:
    return run.scope.seen_by(_allowed(info))


@strawberry.type
class ReconciliationQuery:
    @strawberry.federation.field(
        description="Reconciliation runs, newest first.",
        requires_scopes=needs(Scope.RECONCILIATION_READ),
    )
    async def reconciliation_runs(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[ReconciliationRunType]:
        check_first(first)
        book = info.context.services.book
        runs, more = await book.runs(first, after, _allowed(info))
        # One limited to legal entities is not told how many runs it may not see.
        total = await book.run_count() if _allowed(info) is None else len(runs)
        return Connection.of(runs, more, total, lambda r: r.id, ReconciliationRunType.of)

    @strawberry.federation.field(
        description="One reconciliation run: its progress, counts and duration.",
        requires_scopes=needs(Scope.RECONCILIATION_READ),
    )
    async def reconciliation_run(self, info: Info, id: strawberry.ID) -> ReconciliationRunType:
        reconciler = info.context.services.reconciler
        run = await reconciler.get(str(id))
        if not visible_run(info, run):  # not found, as for one that does not exist
            raise RunNotFound(f"no reconciliation run {id}")
        return ReconciliationRunType.of(run)

    @strawberry.federation.field(
        description="Reconciliation exceptions, highest rank (severity, then impact) first.",
        requires_scopes=needs(Scope.RECONCILIATION_READ),
    )
    async def reconciliation_exceptions(
        self,
        info: Info,
        filter: ReconciliationExceptionFilter | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> Connection[ReconciliationExceptionType]:
        check_first(first)
        given = filter or ReconciliationExceptionFilter()
        wanted = ExceptionFilter(
            kind=given.kind,
            severity=given.severity,
            status=given.status,
            customer_id=None if given.customer_id is None else str(given.customer_id),
            entity=given.entity,
            period=None if given.period is None else Period.parse(given.period),
        )
        page = await info.context.services.book.page(wanted, _allowed(info), first, after)
        return Connection.of(
            page.exceptions,
            page.has_next_page,
            page.total,
            cursor_of,
            ReconciliationExceptionType.of,
        )


def plain_scope(given: ReconciliationScopeInput) -> dict[str, Any]:
    return {
        "periodFrom": given.period_from,
        "periodTo": given.period_to,
        "entities": None if given.entities is None else sorted(given.entities),
        "target": given.target.value,
    }
