"""Finance's actions on reconciliation: start a run; acknowledge or resolve an exception."""

from __future__ import annotations

from typing import Annotated

import strawberry

from connectors.commands import PostInvoice, VoidPosting
from connectors.models import (
    ExceptionKind,
    ExceptionStatus,
    Invoice,
    InvoiceStatus,
    ObjectKind,
    PostingState,
    PostingType,
    ReconciliationException,
    SystemName,
)
from gateway.auth.scopes import Scope, needs
from gateway.errors import NotFound
from gateway.reconcile.book import ExceptionStateConflict
from gateway.reconcile.engine import ReconciliationRunning, RunKind
from gateway.reconcile.engine import postings_for as _postings_for
from gateway.writes.idempotency import Claim
from gateway.writes.pipeline import Answer
from resolvers.context import Info
from resolvers.mutations.common import (
    IdempotencyKey,
    InvalidField,
    UserErrorType,
    governed,
    identity_of,
    principal_of,
    user_errors,
)
from resolvers.reconciliation import (
    ReconciliationExceptionType,
    ReconciliationRunType,
    ReconciliationScopeInput,
    plain_scope,
    run_scope,
    visible_run,
)


@strawberry.type(description="The run started (it goes on after this answers).")
class ReconciliationRunPayload:
    reconciliation_run: ReconciliationRunType | None
    user_errors: list[UserErrorType]


@strawberry.type(description="The exception as it is now.")
class ReconciliationExceptionPayload:
    reconciliation_exception: ReconciliationExceptionType | None
    user_errors: list[UserErrorType]


@strawberry.type
class ReconciliationMutation:
    @strawberry.federation.field(
        description="Start a reconciliation of billing against the ERP over legal entities "
        "and periods. It answers at once with the run; follow it with "
        "`reconciliationRunUpdated`. RECONCILIATION_RUNNING while a run over an overlapping "
        "scope is under way.",
        requires_scopes=needs(Scope.RECONCILIATION_RUN),
    )
    async def run_reconciliation(
        self,
        info: Info,
        scope: ReconciliationScopeInput,
        idempotency_key: IdempotencyKey,
        kind: Annotated[
            RunKind,
            strawberry.argument(
                description="FULL reads both systems over the scope; INCREMENTAL compares "
                "only the invoices the change feeds and webhooks named since the last run."
            ),
        ] = RunKind.FULL,
    ) -> ReconciliationRunPayload:
        reconciler = info.context.services.reconciler

        async def act(claim: Claim) -> Answer:
            subject = principal_of(info).subject
            try:
                run = await reconciler.start(run_scope(info, scope), subject, kind)
            except ReconciliationRunning as running:
                other = await reconciler.get(running.run_id) if running.run_id else None
                if other is None or not visible_run(info, other):
                    raise running.hidden() from None
                raise
            return {"runId": run.id, "userErrors": []}

        input_ = plain_scope(scope) | {"kind": kind.value}
        answer = await governed(info, idempotency_key, input_, act)
        run = None
        if (run_id := answer.get("runId")) is not None:
            run = ReconciliationRunType.of(await reconciler.get(run_id))
        return ReconciliationRunPayload(reconciliation_run=run, user_errors=user_errors(answer))

    @strawberry.federation.field(
        description="Say an open exception is being looked at (who, and a note).",
        requires_scopes=needs(Scope.RECONCILIATION_RESOLVE),
    )
    async def acknowledge_reconciliation_exception(
        self,
        info: Info,
        id: strawberry.ID,
        idempotency_key: IdempotencyKey,
        note: str | None = None,
    ) -> ReconciliationExceptionPayload:
        return await _move(info, str(id), ExceptionStatus.ACKNOWLEDGED, note, idempotency_key)

    @strawberry.federation.field(
        description="Say an exception is resolved (who, and how). A later run that finds "
        "the difference again reopens it.",
        requires_scopes=needs(Scope.RECONCILIATION_RESOLVE),
    )
    async def resolve_reconciliation_exception(
        self,
        info: Info,
        id: strawberry.ID,
        idempotency_key: IdempotencyKey,
        note: str | None = None,
    ) -> ReconciliationExceptionPayload:
        return await _move(info, str(id), ExceptionStatus.RESOLVED, note, idempotency_key)


async def _move(
    info: Info, id_: str, to: ExceptionStatus, note: str | None, key: str
) -> ReconciliationExceptionPayload:
    book = info.context.services.book
    principal = principal_of(info)

    async def act(claim: Claim) -> Answer:
        moved = await book.move(id_, to, principal.subject, note, principal.entities)
        return {"exceptionId": moved.id, "userErrors": []}

    answer = await governed(info, key, {"id": id_, "note": note}, act)
    found = None
    if (exception_id := answer.get("exceptionId")) is not None:
        found = ReconciliationExceptionType.of(await book.get(exception_id, principal.entities))
    return ReconciliationExceptionPayload(
        reconciliation_exception=found, user_errors=user_errors(answer)
    )


@strawberry.type(description="What a resolution posted or voided in the ERP.")
class ReconciliationFixPayload:
    reconciliation_exception: ReconciliationExceptionType | None = strawberry.field(
        description="Acknowledged, with a note of what was done: the next run that finds "
        "the pair agreeing auto-resolves it."
    )
    posting_id: str | None = strawberry.field(description="The ERP posting written or voided.")
    user_errors: list[UserErrorType]


@strawberry.type
class ReconciliationFixMutation:
    @strawberry.federation.field(
        description="Post to the ERP the billing invoice a MISSING_IN_TARGET exception names, "
        "as billing has it (amount, tax, the period it was issued in), once for the key.",
        requires_scopes=needs(Scope.RECONCILIATION_RESOLVE),
    )
    async def repost_invoice(
        self, info: Info, exception_id: strawberry.ID, idempotency_key: IdempotencyKey
    ) -> ReconciliationFixPayload:
        services = info.context.services
        principal = principal_of(info)

        async def act(claim: Claim) -> Answer:
            found = await services.book.get(str(exception_id), principal.entities)
            _expect(found, ExceptionKind.MISSING_IN_TARGET, "repost")
            if found.customer_id is None:
                raise NotFound(f"the crosswalk knows no customer for invoice {found.key}")
            erp = services.registry.get(SystemName.ERP)
            posted = [
                p
                for p in await erp.run(lambda: _postings_for(erp, [found.key]))
                if p.type is PostingType.INVOICE and p.status is not PostingState.VOIDED
            ]
            if posted:  # posted since the run, by someone else or another key
                raise ExceptionStateConflict(
                    f"invoice {found.key} is posted already, as {posted[0].id}: the next run "
                    "compares it"
                )
            invoice = await _invoice(info, found.key)
            if invoice.status in (InvoiceStatus.DRAFT, InvoiceStatus.VOID):
                raise ExceptionStateConflict(
                    f"invoice {found.key} is {invoice.status.value} now: it is not to be posted"
                )
            identity = await identity_of(info, found.customer_id)
            erp_id = identity.external_ids.get(SystemName.ERP)
            if erp_id is None or identity.legal_entity is None:
                raise NotFound(f"{identity.id} has no ERP customer to post to")
            command = PostInvoice(
                customer_id=erp_id,
                amount=invoice.subtotal,
                tax=invoice.tax,
                subsidiary=identity.legal_entity,
                tran_date=invoice.booked_on,
                external_id=invoice.id,
                memo=invoice.number,
            )
            result = await services.writes.send(claim, command, to=SystemName.ERP)
            await services.book.noted(
                found.id, principal.subject, f"reposted as ERP posting {result.id}"
            )
            return {"exceptionId": found.id, "postingId": result.id, "userErrors": []}

        answer = await governed(info, idempotency_key, {"exceptionId": str(exception_id)}, act)
        return await _fix_payload(info, answer)

    @strawberry.federation.field(
        description="Void, in the ERP, a posting a DUPLICATE_IN_TARGET exception names: "
        "one of the extra postings, never the first (the one kept). The posting stays in "
        "the ledger with zero amounts and status voided.",
        requires_scopes=needs(Scope.RECONCILIATION_RESOLVE),
    )
    async def void_duplicate_posting(
        self,
        info: Info,
        exception_id: strawberry.ID,
        posting_id: str,
        idempotency_key: IdempotencyKey,
    ) -> ReconciliationFixPayload:
        services = info.context.services
        principal = principal_of(info)

        async def act(claim: Claim) -> Answer:
            found = await services.book.get(str(exception_id), principal.entities)
            _expect(found, ExceptionKind.DUPLICATE_IN_TARGET, "void a duplicate of")
            kept, *extra = found.posting_ids
            if posting_id == kept:
                raise InvalidField(
                    "postingId", f"{posting_id} is the posting kept; void one of {', '.join(extra)}"
                )
            if posting_id not in extra:
                raise InvalidField(
                    "postingId", f"{posting_id} is not a duplicate here: {', '.join(extra)} are"
                )
            reason = f"duplicate of {kept} for invoice {found.key}"
            result = await services.writes.send(
                claim, VoidPosting(posting_id=posting_id, reason=reason), to=SystemName.ERP
            )
            note = f"voided ERP posting {posting_id}, {reason}"
            await services.book.noted(found.id, principal.subject, note)
            return {"exceptionId": found.id, "postingId": result.id, "userErrors": []}

        input_ = {"exceptionId": str(exception_id), "postingId": posting_id}
        answer = await governed(info, idempotency_key, input_, act)
        return await _fix_payload(info, answer)


def _expect(found: ReconciliationException, kind: ExceptionKind, verb: str) -> None:
    if (found.source, found.target) != (SystemName.BILLING, SystemName.ERP):
        raise InvalidField(
            "exceptionId",
            f"{found.id} compares {found.source.value} with {found.target.value}: only "
            "billing's against the ERP's are fixed here",
        )
    if found.kind is not kind:
        raise InvalidField(
            "exceptionId", f"{found.id} is {found.kind.value}: only {kind.value} can {verb} it"
        )
    if found.status not in (ExceptionStatus.OPEN, ExceptionStatus.ACKNOWLEDGED):
        raise ExceptionStateConflict(f"exception {found.id} is {found.status.value} already")


async def _invoice(info: Info, invoice_id: str) -> Invoice:
    billing = info.context.services.registry.get(SystemName.BILLING)
    (record,) = await billing.fetch_many(ObjectKind.INVOICE, [invoice_id])
    if not isinstance(record, Invoice):
        raise NotFound(f"billing has no invoice {invoice_id}")
    return record


async def _fix_payload(info: Info, answer: Answer) -> ReconciliationFixPayload:
    found = None
    if (exception_id := answer.get("exceptionId")) is not None:
        principal = principal_of(info)
        found = ReconciliationExceptionType.of(
            await info.context.services.book.get(exception_id, principal.entities)
        )
    return ReconciliationFixPayload(
        reconciliation_exception=found,
        posting_id=answer.get("postingId"),
        user_errors=user_errors(answer),
    )
