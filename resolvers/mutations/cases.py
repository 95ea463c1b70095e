"""Writes to support cases."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry

from connectors.commands import (
    EscalateCase,
)
from connectors.models import (
    Case,
    CasePriority,
    ObjectKind,
)
from gateway.auth.scopes import Scope, needs
from gateway.data.reads import Reader, settled
from gateway.logs import quoted
from gateway.writes.idempotency import Claim
from gateway.writes.pipeline import Answer
from resolvers.case import CaseType
from resolvers.context import Info
from resolvers.enums import SystemName
from resolvers.mutations.common import (
    IdempotencyKey,
    InvalidField,
    UserErrorType,
    governed,
    identity_of,
    listed,
    record_answer,
    record_of,
    user_errors,
)


@strawberry.input(description="Raise a customer's case, and say why in an internal note.")
class EscalateCaseInput:
    customer_id: strawberry.ID
    case_id: strawberry.ID
    priority: CasePriority = strawberry.field(description="HIGH or URGENT.")
    reason: str


@strawberry.type(description="A write to a support case.")
class CasePayload:
    case: CaseType | None = strawberry.field(description="The case as the support desk answered.")
    user_errors: list[UserErrorType]


def _case_payload(answer: Answer) -> CasePayload:
    case = None
    if (stored := answer.get("case")) is not None:
        record, sourced = record_of(stored, Case)
        case = CaseType.of(record, listed(sourced))
    return CasePayload(case=case, user_errors=user_errors(answer))


# Higher first: an escalation never lowers a case.
RANK = [CasePriority.LOW, CasePriority.NORMAL, CasePriority.HIGH, CasePriority.URGENT]


async def _cases_of(reader: Reader, organization: str) -> list[Case]:
    """The organization's cases as the support desk has them now (the cache may be older
    than the case the agent sees)."""
    (read,) = await reader.related(ObjectKind.CASE, [organization], Case)
    return list(settled(read).value)


@strawberry.type
class CaseMutation:
    @strawberry.federation.field(
        description="Raise a customer's case in the support desk, which owns cases.",
        requires_scopes=needs(Scope.CASES_WRITE),
    )
    async def escalate_case(
        self, info: Info, input: EscalateCaseInput, idempotency_key: IdempotencyKey
    ) -> CasePayload:
        async def act(claim: Claim) -> Answer:
            if input.priority not in (CasePriority.HIGH, CasePriority.URGENT):
                raise InvalidField("priority", "a case is escalated to HIGH or URGENT")
            writes = info.context.services.writes
            writes.ownership.check_write(ObjectKind.CASE, SystemName.SUPPORT)
            identity = await identity_of(info, str(input.customer_id))
            organization = identity.external_ids.get(SystemName.SUPPORT)
            cases = [] if organization is None else await _cases_of(writes.reader, organization)
            case = next((c for c in cases if c.id == input.case_id), None)
            if case is None or organization is None:
                raise InvalidField("caseId", f"{identity.id} has no case {quoted(input.case_id)}")
            if RANK.index(case.priority) >= RANK.index(input.priority):
                raise InvalidField("priority", f"case {case.id} is {case.priority.name} already")
            command = EscalateCase(case_id=case.id, priority=input.priority, reason=input.reason)
            result = await writes.send(claim, command, to=SystemName.SUPPORT)
            await writes.reader.invalidate(ObjectKind.CASE, case.id, parent=organization)
            written = result.record if isinstance(result.record, Case) else None
            kept = None
            if written is not None:
                kept = record_answer(written, SystemName.SUPPORT, datetime.now(UTC))
            return {"case": kept, "userErrors": []}

        return _case_payload(await governed(info, idempotency_key, input, act))
