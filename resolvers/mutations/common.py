"""Governed writes: every mutation names the object it changes, takes an idempotency key,
and goes through ``gateway.writes.pipeline``: the key is claimed for the principal, the write
goes to the system that owns the object, the answer is stored under the key (a replay is
marked in ``extensions.idempotency``) and audited, and the cache forgets what changed.

A payload carries the changed object, with its provenance, and ``userErrors``: refusals that
trying again cannot change (bad input, an unknown object, a write aimed at a system that
does not own it, the owner saying no). An outcome that is not known (a timeout, a system
down) is a GraphQL error with its code instead, and the key may be sent again.

What a key stores is the payload's data, so a replay answers what the first request
answered: the account as the CRM had it then; a customer, whose identity opsgraph owns, as
it is now.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any, TypeVar

import strawberry
from strawberry.utils.str_converters import to_camel_case

from connectors import codec
from connectors.errors import GatewayError
from connectors.models import (
    Record,
)
from gateway import request_scope
from gateway.auth.principal import Principal
from gateway.data.crosswalk import CustomerIdentity
from gateway.data.reads import Sourced
from gateway.errors import BadUserInput, Unauthenticated
from gateway.logs import quoted
from gateway.writes.idempotency import Claim
from gateway.writes.pipeline import Answer, user_error
from resolvers.context import Info
from resolvers.enums import SystemName

R = TypeVar("R", bound=Record)

IdempotencyKey = Annotated[
    str,
    strawberry.argument(
        description="1-255 characters chosen by the client, one per intended write: the same "
        "key and input answer the first request's answer again without doing anything twice."
    ),
]


@strawberry.type(
    name="UserError", description="Why a write was refused, in words for the person asking."
)
class UserErrorType:
    code: str = strawberry.field(description="BAD_USER_INPUT, NOT_FOUND, CONFLICT, ...")
    message: str
    field: str | None = strawberry.field(description="The input field it is about, if one.")
    system: SystemName | None = strawberry.field(description="The system that refused, if one.")


def user_errors(answer: Answer) -> list[UserErrorType]:
    return [
        UserErrorType(
            code=e["code"],
            message=e["message"],
            field=e.get("field"),
            system=None if e.get("system") is None else SystemName(e["system"]),
        )
        for e in answer.get("userErrors", ())
    ]


def refused(error: GatewayError) -> Answer:
    return {"userErrors": [user_error(error, getattr(error, "field", None))]}


class InvalidField(BadUserInput):
    """Bad input, naming the input field it is about."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def plain(value: Any) -> Any:
    """An input as JSON: what an idempotency key's fingerprint is taken of."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # In the names the client sent: the audit log shows them.
        return {
            to_camel_case(f.name): plain(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


async def governed(
    info: Info, key: str, input_: object, act: Callable[[Claim], Awaitable[Answer]]
) -> Answer:
    """``act`` through the write pipeline, once for ``key``."""
    principal = principal_of(info)
    operation = info.field_name
    outcome = await info.context.services.writes.run(
        principal, key, operation, {"input": plain(input_)}, act, refused=refused
    )
    request = request_scope.current()
    if outcome.replayed and request is not None:
        request.replays.append({"path": [info.path.key], "key": key, "replayed": True})
    return outcome.answer


async def identity_of(info: Info, customer_id: str) -> CustomerIdentity:
    """The customer's identity, as the principal may see it (another legal entity's
    customer is not found, as in reads)."""
    identity = await info.context.loaders.customer(customer_id)
    if identity is None:
        raise InvalidField("customerId", f"no customer with id {quoted(customer_id)}")
    return identity


def record_answer(record: Record, system: SystemName, fetched_at: datetime) -> Mapping[str, Any]:
    """A record as a key stores it: the record, and where and when it came from."""
    return {
        "record": codec.to_json(record),
        "source": {
            "system": system.value,
            "externalId": record.id,
            "fetchedAt": fetched_at.astimezone(UTC).isoformat(),
        },
    }


def record_of(stored: Mapping[str, Any], of: type[R]) -> tuple[R, Sourced[R]]:
    """A stored record, and its provenance as it was when the write answered."""
    record = codec.from_json(stored["record"])
    if not isinstance(record, of):
        raise TypeError(f"stored a {type(record).__name__}, not a {of.__name__}")
    source = stored["source"]
    sourced = Sourced(
        value=record,
        system=SystemName(source["system"]),
        external_id=source["externalId"],
        fetched_at=datetime.fromisoformat(source["fetchedAt"]),
        cached=False,
        stale=False,
    )
    return record, sourced


def listed(one: Sourced[R]) -> Sourced[list[R]]:
    """A record's provenance as the list types take it (one record of its parent's list)."""
    return Sourced([one.value], one.system, one.external_id, one.fetched_at, one.cached, one.stale)


def principal_of(info: Info) -> Principal:
    principal = info.context.principal
    if principal is None:  # the schema's scopes refuse such a request before it runs
        raise Unauthenticated("a write needs a principal")
    return principal
