"""Writes to CRM accounts."""

from __future__ import annotations

import strawberry

from connectors.commands import (
    UpdateAccountHealth,
)
from connectors.models import (
    Account,
    ObjectKind,
)
from gateway.auth.scopes import Scope, needs
from gateway.data.reads import Sourced
from gateway.errors import NotFound
from gateway.writes.idempotency import Claim
from gateway.writes.pipeline import Answer
from resolvers.context import Info
from resolvers.customer import AccountType
from resolvers.enums import SystemName
from resolvers.mutations.common import (
    IdempotencyKey,
    InvalidField,
    UserErrorType,
    governed,
    identity_of,
    record_answer,
    record_of,
    user_errors,
)

# -- the CRM ---------------------------------------------------------------------------------


@strawberry.input(description="A customer's health score, kept by the CRM.")
class AccountHealthInput:
    customer_id: strawberry.ID
    score: int = strawberry.field(description="0 to 100.")


@strawberry.type(description="A write to a CRM account.")
class AccountPayload:
    account: AccountType | None = strawberry.field(
        description="The account as the CRM answered after the write (null if it did not)."
    )
    user_errors: list[UserErrorType]


def _account_payload(answer: Answer) -> AccountPayload:
    account = None
    if (stored := answer.get("account")) is not None:
        account = AccountType.of(*record_of(stored, Account))
    return AccountPayload(account=account, user_errors=user_errors(answer))


@strawberry.type
class AccountMutation:
    @strawberry.federation.field(
        description="Set a customer's health score in the CRM, which owns accounts.",
        requires_scopes=needs(Scope.ACCOUNTS_WRITE),
    )
    async def update_account_health(
        self,
        info: Info,
        input: AccountHealthInput,
        idempotency_key: IdempotencyKey,
    ) -> AccountPayload:
        async def act(claim: Claim) -> Answer:
            if not 0 <= input.score <= 100:
                raise InvalidField("score", f"a health score is 0 to 100, not {input.score}")
            writes = info.context.services.writes
            # Refused before anything else when the CRM does not own accounts.
            writes.ownership.check_write(ObjectKind.ACCOUNT, SystemName.CRM)
            identity = await identity_of(info, str(input.customer_id))
            account_id = identity.external_ids.get(SystemName.CRM)
            if account_id is None:
                raise NotFound(f"{identity.id} has no CRM account")
            command = UpdateAccountHealth(id=account_id, health_score=input.score)
            await writes.send(claim, command, to=SystemName.CRM)
            await writes.reader.invalidate(ObjectKind.ACCOUNT, account_id)
            (read,) = await writes.reader.records(ObjectKind.ACCOUNT, [account_id], Account)
            account = None
            if isinstance(read, Sourced) and read.value is not None:
                account = record_answer(read.value, read.system, read.fetched_at)
            return {"account": account, "userErrors": []}

        return _account_payload(await governed(info, idempotency_key, input, act))
