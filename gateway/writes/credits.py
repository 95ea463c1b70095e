"""The service-credit workflow: support requests a credit for a breached case, policy
decides whether finance must approve it (four-eyes: never the requester), and an approved
credit is posted by the systems that own the money.

    requestCredit ─► REQUESTED ─ approveCredit ─► APPROVED ─► workflow ─► POSTED
                 └─► APPROVED (below the policy's auto-approve threshold)   └─► FAILED
                     REQUESTED ─ rejectCredit ─► REJECTED

The workflow (``gateway.workflows``), one durable step after another, each sending its
owner the step's own idempotency key so that a step re-run after a crash applies once:

1. ``erp_customer``: the ERP knows the customer (its receivable balance answers);
2. ``erp_credit_memo``: the credit memo, posted in the ERP (its id is kept on the credit);
3. ``billing_credit_note``: a credit note on the customer's newest open invoice in the
   credit's currency that can still carry it, in billing (skipped, and said so in the
   step's output, when there is none);
4. ``notify``: the CRM's account timeline and the case hear about it, and the account's
   owner (its customer-success manager) gets a follow-up due ``FOLLOW_UP`` later, through
   the outbox (``gateway.writes.outbox``), in the transaction that ends the run's last step.

Approval runs the financially material steps before it answers, so the answer says what
the ERP did; a step whose owner is down leaves the run waiting, and it resumes later.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Select, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors.commands import CreateCreditMemo, CreateCreditNote
from connectors.errors import UpstreamNotFound
from connectors.models import (
    Balance,
    Case,
    CreditRequest,
    CreditStatus,
    Invoice,
    InvoiceStatus,
    ObjectKind,
    Plan,
    Subscription,
    SystemName,
)
from connectors.money import Money
from gateway.auth.principal import Principal
from gateway.data.crosswalk import Crosswalk, CustomerIdentity
from gateway.data.owned import credit_of
from gateway.data.reads import settled
from gateway.errors import BadUserInput, Conflict, NotFound
from gateway.logs import quoted
from gateway.rules.credit_policy import CreditOutcome, CreditPolicy, CreditRule, named_roles
from gateway.rules.entitlements import entitlements
from gateway.storage.tables import (
    CreditRequestRow,
    Customer,
    OutboxMessage,
    WorkflowRun,
    WorkflowStep,
)
from gateway.telemetry.metrics import Metrics
from gateway.telemetry.tracing import current_traceparent
from gateway.workflows.engine import (
    Engine,
    RunStatus,
    RunView,
    Step,
    StepContext,
    StepStatus,
    Workflow,
)
from gateway.writes.pipeline import Writes

log = logging.getLogger("opsgraph.credits")

SERVICE_CREDIT = "service_credit"
# What the outbox carries to the systems that hear about a credit.
NOTIFY_CRM, NOTIFY_SUPPORT = "notify.crm.activity", "notify.support.comment"
NOTIFY_SUCCESS = "notify.crm.follow_up"
# When the customer-success manager is asked to follow a posted credit up with the customer.
FOLLOW_UP = timedelta(days=3)
# Credits that count against a customer's limit for the period.
COUNTED = (CreditStatus.REQUESTED, CreditStatus.APPROVED, CreditStatus.POSTED)


class PolicyRefused(BadUserInput):
    code = "POLICY_REFUSED"


class NotAnApprover(BadUserInput):
    """The policy's rule for the credit names roles the decider holds none of."""

    code = "NOT_AN_APPROVER"


class FourEyes(BadUserInput):
    """The requester of a credit may not decide it."""

    code = "FOUR_EYES"


class Credits:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        writes: Writes,
        crosswalk: Crosswalk,
        policy: CreditPolicy,
        metrics: Metrics | None = None,
    ) -> None:
        self.sessions = sessions
        self.writes = writes
        self.crosswalk = crosswalk
        self.policy = policy
        self.metrics = metrics or Metrics()
        # Built by the services with this workflow among its own (``workflow()``).
        self.engine: Engine | None = None
        # Told the id of each credit whose status changed, once committed: what
        # ``creditRequestUpdated`` subscribers hear.
        self.moved: Callable[[str], Awaitable[None]] | None = None

    def workflow(self) -> Workflow:
        return Workflow(
            SERVICE_CREDIT,
            (
                Step("erp_customer", self._erp_customer),
                Step("erp_credit_memo", self._erp_credit_memo),
                Step("billing_credit_note", self._billing_credit_note),
                Step("notify", self._notify),
            ),
        )

    # -- requests and decisions ------------------------------------------------------------

    async def request(
        self,
        principal: Principal,
        identity: CustomerIdentity,
        case_id: str,
        amount: Money,
        reason: str,
        *,
        credit_id: str | None = None,
    ) -> tuple[CreditRequest, RunView | None]:
        """A credit for a breached case of the customer's, as policy allows; started at
        once when policy approves it alone. Given ``credit_id`` (an event route's, derived
        from its step's key), a credit of that id that exists already is answered as it is:
        a step called again opens nothing twice."""
        if not reason.strip():
            raise BadUserInput("a credit needs a reason")
        if credit_id is not None:
            async with self.sessions() as session:
                if await session.get(CreditRequestRow, credit_id) is not None:
                    return await self.get(credit_id), None
        case = await self._breached_case(identity, case_id)
        await self._covered_sla(identity)
        _, already = await self.standing(identity, amount.currency)
        decision = self.policy.decide(amount, identity.legal_entity, already)
        if decision.outcome is CreditOutcome.REFUSED:
            raise PolicyRefused(decision.reason)
        auto = decision.outcome is CreditOutcome.AUTO_APPROVE
        row = CreditRequestRow(
            id=credit_id or f"cr_{uuid.uuid4().hex[:24]}",
            customer_id=identity.id,
            case_id=case.id,
            amount_minor=amount.amount_minor,
            currency=amount.currency,
            reason=reason,
            status=(CreditStatus.APPROVED if auto else CreditStatus.REQUESTED).value,
            requested_by=principal.subject,
            decided_by="policy" if auto else None,
            decided_at=datetime.now(UTC) if auto else None,
        )
        run = None
        async with self.sessions.begin() as session:
            session.add(row)
            if auto:
                run = await self._start(session, row, identity)
        await self._moved(row.id)
        if run is not None:
            run = await self._advance(run.id)
        return await self.get(row.id), run

    async def approve(self, principal: Principal, credit_id: str) -> tuple[CreditRequest, RunView]:
        row, identity = await self._decide(principal, credit_id, CreditStatus.APPROVED)
        if row.decided_at is not None:
            self.metrics.credit_approved(row.created_at, row.decided_at)
        async with self.sessions.begin() as session:
            run = await self._start(session, row, identity)
        advanced = await self._advance(run.id)
        return await self.get(credit_id), advanced

    async def reject(self, principal: Principal, credit_id: str) -> CreditRequest:
        await self._decide(principal, credit_id, CreditStatus.REJECTED)
        return await self.get(credit_id)

    async def _decide(
        self, principal: Principal, credit_id: str, to: CreditStatus
    ) -> tuple[CreditRequestRow, CustomerIdentity]:
        """Moves a requested credit to ``to``, once: two deciders racing get one each way."""
        row = await self._row(credit_id)
        if row.requested_by == principal.subject:
            raise FourEyes("a credit is decided by someone other than its requester")
        (identity,) = await self._identities([row.customer_id], principal)
        if identity is None:
            raise NotFound(f"no credit request {credit_id!r}")
        rule = self.policy.rule_for(row.currency, identity.legal_entity)
        if rule is not None and rule.approvers and not principal.roles & rule.approvers:
            raise NotAnApprover(
                f"a credit under the policy's {rule.name} rule is decided by "
                f"{named_roles(rule.approvers)}"
            )
        async with self.sessions.begin() as session:
            done = await session.execute(
                update(CreditRequestRow)
                .where(
                    CreditRequestRow.id == credit_id,
                    CreditRequestRow.status == CreditStatus.REQUESTED.value,
                )
                .values(status=to.value, decided_by=principal.subject, decided_at=_now())
            )
        if cast(CursorResult[Any], done).rowcount != 1:
            raise Conflict(f"credit {credit_id} is {row.status}, not requested")
        await self._moved(credit_id)
        return await self._row(credit_id), identity

    # -- the workflow's steps -----------------------------------------------------------------

    async def _erp_customer(self, step: StepContext) -> Mapping[str, Any]:
        erp = step.run.input["erp"]
        (read,) = await self.writes.reader.records(ObjectKind.BALANCE, [erp], Balance)
        if settled(read).value is None:
            raise UpstreamNotFound(f"the ERP has no customer {erp}", system="erp")
        return {"system": "erp", "reference": erp}

    async def _erp_credit_memo(self, step: StepContext) -> Mapping[str, Any]:
        given = step.run.input
        amount = Money(given["amountMinor"], given["currency"])
        memo = CreateCreditMemo(
            customer_id=given["erp"],
            amount=amount,
            tax=Money.zero(amount.currency),
            subsidiary=given["legalEntity"],
            tran_date=_today(),
            external_id=step.run.subject.id,
            memo=f"Service credit {step.run.subject.id}: {given['reason']}"[:4000],
        )
        result = await self.writes.apply(memo, step.idempotency_key)
        await self.writes.reader.invalidate(ObjectKind.BALANCE, given["erp"])
        await self.writes.reader.invalidate(ObjectKind.POSTING, None, parent=given["erp"])
        async with self.sessions.begin() as session:
            credit = await session.get(CreditRequestRow, step.run.subject.id)
            if credit is not None:
                credit.posting_id = result.id
        return {"system": "erp", "reference": result.id}

    async def _billing_credit_note(self, step: StepContext) -> Mapping[str, Any]:
        given = step.run.input
        amount = Money(given["amountMinor"], given["currency"])
        billing = given.get("billing")
        invoice = None
        if billing is not None:
            invoice = await self._creditable_invoice(billing, amount, step.run.subject.id)
        if invoice is None:
            return {"system": "billing", "skipped": f"no invoice in {amount.currency} to credit"}
        note = CreateCreditNote(
            invoice=invoice.id, amount=amount, memo=f"Service credit {step.run.subject.id}"
        )
        result = await self.writes.apply(note, step.idempotency_key)
        await self.writes.reader.invalidate(ObjectKind.INVOICE, invoice.id, parent=billing)
        return {
            "system": "billing",
            "reference": result.id,
            "invoice": invoice.id,
            "amountMinor": amount.amount_minor,
        }

    async def _notify(self, step: StepContext) -> Mapping[str, Any]:
        given = step.run.input
        credit = step.run.subject.id
        memo = step.outputs["erp_credit_memo"]["reference"]
        amount = Money(given["amountMinor"], given["currency"])
        said = f"A service credit of {amount.amount_str()} {amount.currency} for case " + (
            f"{given['case']} was approved and posted (ERP credit memo {memo})."
        )
        messages = [
            OutboxMessage(
                topic=NOTIFY_SUPPORT,
                key=f"{credit}:support",
                payload={"case_id": given["case"], "body": said},
            )
        ]
        if given.get("crm") is not None:
            subject = f"Service credit {amount.amount_str()} {amount.currency}"
            follow_up_on = datetime.now(UTC).date() + FOLLOW_UP
            messages += [
                OutboxMessage(
                    topic=NOTIFY_CRM,
                    key=f"{credit}:crm",
                    payload={
                        "account_id": given["crm"],
                        "subject": subject,
                        "description": said,
                        "external_ref": credit,
                    },
                ),
                OutboxMessage(
                    topic=NOTIFY_SUCCESS,
                    key=f"{credit}:success",
                    payload={
                        "account_id": given["crm"],
                        "subject": f"Follow up: {subject}",
                        "description": f"{said} Check in with the customer about case "
                        f"{given['case']}.",
                        "external_ref": f"{credit}:follow-up",
                        "follow_up_on": follow_up_on.isoformat(),
                    },
                ),
            ]
        for message in messages:  # delivered, they continue this step's trace
            message.traceparent = current_traceparent()
        async with self.sessions.begin() as session:
            # The same keys again (the step re-run after a crash) queue nothing twice.
            queued = set(
                await session.scalars(
                    select(OutboxMessage.key).where(
                        OutboxMessage.key.in_([m.key for m in messages])
                    )
                )
            )
            session.add_all([m for m in messages if m.key not in queued])
            credit_row = await session.get(CreditRequestRow, credit)
            if credit_row is not None:
                credit_row.status = CreditStatus.POSTED.value
        await self._moved(credit)
        return {"queued": [m.topic for m in messages]}

    # -- what the steps and checks read ------------------------------------------------------

    async def _breached_case(self, identity: CustomerIdentity, case_id: str) -> Case:
        organization = identity.external_ids.get(SystemName.SUPPORT)
        cases: Sequence[Case] = []
        if organization is not None:
            (read,) = await self.writes.reader.related(ObjectKind.CASE, [organization], Case)
            cases = settled(read).value
        case = next((c for c in cases if c.id == case_id), None)
        if case is None:
            raise BadUserInput(f"{identity.id} has no case {case_id!r}")
        if not case.sla_breached:
            raise PolicyRefused(f"case {case.id} has not breached its SLA")
        return case

    async def _covered_sla(self, identity: CustomerIdentity) -> None:
        """The customer's plan promises an SLA (billing): a breach of it is creditable."""
        billing = identity.external_ids.get(SystemName.BILLING)
        subscriptions: Sequence[Subscription] = []
        reader = self.writes.reader
        if billing is not None:
            (read,) = await reader.related(ObjectKind.SUBSCRIPTION, [billing], Subscription)
            subscriptions = settled(read).value
        plans = settled(await reader.catalog(ObjectKind.PLAN, Plan)).value
        entitled = entitlements(subscriptions, {p.id: p for p in plans})
        if not any(e.sla_hours for e in entitled):
            raise PolicyRefused(f"{identity.id} has no plan with an SLA to credit against")

    async def _creditable_invoice(
        self, billing: str, amount: Money, credit_id: str
    ) -> Invoice | None:
        """The newest open invoice in ``amount``'s currency whose total, less the credit
        notes earlier credits put on it, still covers ``amount`` (billing refuses more). A
        paid invoice would need the credit paid out too (a refund or a balance credit),
        which ``CreateCreditNote`` does not say."""
        (read,) = await self.writes.reader.related(ObjectKind.INVOICE, [billing], Invoice)
        credited = await self._credited_invoices(credit_id)
        fits = [
            i
            for i in settled(read).value
            if i.status is InvoiceStatus.OPEN
            and i.total.currency == amount.currency
            and i.total.amount_minor - credited.get(i.id, 0) >= amount.amount_minor
        ]
        return max(fits, key=lambda i: (i.issued_at, i.id), default=None)

    async def _credited_invoices(self, credit_id: str) -> dict[str, int]:
        """Minor units each invoice was credited by other credits' notes, from their runs'
        recorded steps (opsgraph's own record of what it asked billing to do)."""
        query = (
            select(WorkflowStep.output)
            .join(WorkflowRun, WorkflowRun.id == WorkflowStep.run_id)
            .where(
                WorkflowRun.workflow == SERVICE_CREDIT,
                WorkflowRun.subject_id != credit_id,
                WorkflowStep.name == "billing_credit_note",
                WorkflowStep.status == StepStatus.SUCCEEDED,
            )
        )
        credited: dict[str, int] = {}
        async with self.sessions() as session:
            for output in await session.scalars(query):
                if output and "invoice" in output:
                    invoice = output["invoice"]
                    credited[invoice] = credited.get(invoice, 0) + int(output["amountMinor"])
        return credited

    async def standing(
        self, identity: CustomerIdentity, currency: str
    ) -> tuple[CreditRule | None, Money]:
        """The policy's rule for a credit in ``currency`` to this customer (none: the
        currency cannot be credited), and what the customer has been credited, approved or
        pending, in the rule's current period."""
        (found,) = await self.standings([(identity, currency)])
        return found

    async def standings(
        self, asked: Sequence[tuple[CustomerIdentity, str]]
    ) -> list[tuple[CreditRule | None, Money]]:
        """``standing`` of each (customer, currency), in one query however many."""
        rules = [self.policy.rule_for(currency, who.legal_entity) for who, currency in asked]
        today = _today()
        since = [None if r is None else CreditPolicy.period_start(r.period, today) for r in rules]
        query = select(
            CreditRequestRow.customer_id,
            CreditRequestRow.currency,
            CreditRequestRow.created_at,
            CreditRequestRow.amount_minor,
        ).where(
            CreditRequestRow.customer_id.in_({who.id for who, _ in asked}),
            CreditRequestRow.status.in_([s.value for s in COUNTED]),
        )
        if asked and None not in since:
            earliest = min(d for d in since if d is not None)
            query = query.where(CreditRequestRow.created_at >= _midnight(earliest))
        credited: dict[tuple[str, str], list[tuple[datetime, int]]] = defaultdict(list)
        async with self.sessions() as session:
            for customer, currency, created_at, amount in await session.execute(query):
                credited[(customer, currency)].append((created_at, amount))
        answered = []
        for (who, currency), rule, start in zip(asked, rules, since, strict=True):
            after = None if start is None else _midnight(start)
            total = sum(
                amount
                for created_at, amount in credited[(who.id, currency)]
                if after is None or created_at >= after
            )
            answered.append((rule, Money(int(total), currency)))
        return answered

    async def _start(
        self, session: AsyncSession, row: CreditRequestRow, identity: CustomerIdentity
    ) -> RunView:
        if self.engine is None:
            raise RuntimeError("the workflow engine has not started")
        ids = identity.external_ids
        if SystemName.ERP not in ids or identity.legal_entity is None:
            raise BadUserInput(f"{identity.id} has no ERP customer or legal entity to credit")
        given = {
            "erp": ids[SystemName.ERP],
            "billing": ids.get(SystemName.BILLING),
            "crm": ids.get(SystemName.CRM),
            "case": row.case_id,
            "amountMinor": row.amount_minor,
            "currency": row.currency,
            "reason": row.reason,
            "legalEntity": identity.legal_entity,
        }
        return await self.engine.start(
            SERVICE_CREDIT, "credit_request", row.id, given, session=session
        )

    async def _advance(self, run_id: str) -> RunView:
        assert self.engine is not None
        run = await self.engine.advance(run_id)
        if run.status is RunStatus.FAILED:
            async with self.sessions.begin() as session:
                credit = await session.get(CreditRequestRow, run.subject.id)
                failed = credit is not None and credit.status != CreditStatus.POSTED.value
                if credit is not None and failed:
                    credit.status = CreditStatus.FAILED.value
            if failed:
                await self._moved(run.subject.id)
        return run

    async def _moved(self, credit_id: str) -> None:
        """Tells ``moved`` of the credit; its failure is logged, never the credit's."""
        if self.moved is None:
            return
        try:
            await self.moved(credit_id)
        except Exception:
            log.exception("telling of credit %s failed", credit_id)

    async def _row(self, credit_id: str) -> CreditRequestRow:
        async with self.sessions() as session:
            row = await session.get(CreditRequestRow, credit_id)
        if row is None:
            raise NotFound(f"no credit request {credit_id!r}")
        return row

    async def visible(
        self,
        principal: Principal,
        status: CreditStatus | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[CreditRequest]:
        """The credits of customers ``principal`` may see (its legal entities), newest
        first; ``status`` and ``ids`` narrow them."""
        query = _visible(principal, status).order_by(*NEWEST_FIRST)
        if ids is not None:
            query = query.where(CreditRequestRow.id.in_(ids))
        async with self.sessions() as session:
            return [credit_of(row) for row in await session.scalars(query)]

    async def page(
        self, principal: Principal, status: CreditStatus | None, first: int, after: str | None
    ) -> tuple[list[CreditRequest], bool, int]:
        """``first`` of ``visible`` after the credit ``after`` (its id: the cursor), paged
        by keyset in the database; whether more follow, and how many there are in all."""
        query = _visible(principal, status)
        async with self.sessions() as session:
            total = await session.scalar(select(func.count()).select_from(query.subquery()))
            if after is not None:
                anchor = await session.scalar(
                    query.with_only_columns(CreditRequestRow.created_at).where(
                        CreditRequestRow.id == after
                    )
                )
                if anchor is None:
                    raise BadUserInput(f"unknown cursor {quoted(after)}")
                query = query.where(
                    or_(
                        CreditRequestRow.created_at < anchor,
                        and_(CreditRequestRow.created_at == anchor, CreditRequestRow.id < after),
                    )
                )
            rows = list(await session.scalars(query.order_by(*NEWEST_FIRST).limit(first + 1)))
        return [credit_of(r) for r in rows[:first]], len(rows) > first, int(total or 0)

    async def get(self, credit_id: str) -> CreditRequest:
        return credit_of(await self._row(credit_id))

    async def _identities(
        self, ids: Sequence[str], principal: Principal
    ) -> list[CustomerIdentity | None]:
        return await self.crosswalk.get_many(ids, entities=principal.entities)


def _now() -> datetime:
    return datetime.now(UTC)


NEWEST_FIRST = (CreditRequestRow.created_at.desc(), CreditRequestRow.id.desc())


def _visible(principal: Principal, status: CreditStatus | None) -> Select[CreditRequestRow]:
    """The credits of customers ``principal`` may see, of ``status`` (None: any)."""
    query = select(CreditRequestRow).join(Customer, Customer.id == CreditRequestRow.customer_id)
    if status is not None:
        query = query.where(CreditRequestRow.status == status.value)
    if principal.entities is not None:
        query = query.where(Customer.legal_entity.in_(sorted(principal.entities)))
    return query


def _today() -> date:
    return datetime.now(UTC).date()


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC)
