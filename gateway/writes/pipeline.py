"""Every governed write takes one path: its idempotency key is claimed for the principal,
the write goes to the system that owns what it changes (or is refused before anything is
sent), its outcome is stored under the key and written to the audit log, and the entity
cache forgets what it changed.

What a write answers is decided by its outcome:

- it succeeded, or it was refused for a reason that will not change by trying again (bad
  input, an unknown object, a write aimed at a system that does not own the object, the
  owner saying no): the answer is stored under the key, and the same key with the same
  input answers it again without doing anything (``replayed``);
- its outcome is not known (a timeout, a system unavailable, an open breaker, anything
  unexpected): the key is released and the error raised, so that the client may retry
  with the same key. That is safe because what is sent to the owner carries a key derived
  from the client's (``Idempotency.outbound_key``): the owner applies a retry once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.commands import PostingCommand, WriteCommand, WriteResult
from connectors.errors import GatewayError, UpstreamConflict, UpstreamNotFound, UpstreamRejected
from connectors.models import SystemName
from connectors.resilience import Resilient
from gateway.auth.principal import Principal
from gateway.data.audit import AuditLog, Operation
from gateway.data.reads import Reader
from gateway.data.registry import Registry
from gateway.errors import BadUserInput, Conflict, NotFound, OwnershipViolation
from gateway.extensions.error_codes import leaving_message
from gateway.ownership import OwnershipMap
from gateway.telemetry.metrics import Metrics, Via, WriteOutcome
from gateway.writes.idempotency import Claim, Idempotency, Replay

log = logging.getLogger("opsgraph.writes")

# Refusals that trying again cannot change: answered, stored and replayed like a success.
DECIDED: tuple[type[GatewayError], ...] = (
    BadUserInput,
    Conflict,
    NotFound,
    OwnershipViolation,
    UpstreamNotFound,
    UpstreamConflict,
    UpstreamRejected,
)

# What a write answers, as stored under its key: JSON, the payload's own shape.
Answer = dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    answer: Answer
    replayed: bool


def user_error(error: GatewayError, field: str | None = None) -> dict[str, Any]:
    """How a decided refusal appears in a payload's ``userErrors``: in the words any error
    leaving the gateway has (an owner's own text stays in the logs)."""
    message = leaving_message(error)
    return {"code": error.code, "message": message, "field": field, "system": error.system}


class Writes:
    def __init__(
        self,
        ownership: OwnershipMap,
        registry: Registry,
        reader: Reader,
        idempotency: Idempotency,
        audit: AuditLog,
        metrics: Metrics | None = None,
    ) -> None:
        self.ownership = ownership
        self.registry = registry
        self.reader = reader
        self.idempotency = idempotency
        self.audit = audit
        self.metrics = metrics or Metrics()

    async def run(
        self,
        principal: Principal,
        key: str,
        operation: str,
        arguments: Mapping[str, Any],
        act: Callable[[Claim], Awaitable[Answer]],
        *,
        refused: Callable[[GatewayError], Answer],
    ) -> Outcome:
        """``act`` once for ``key``: its answer, or the one stored by an earlier run with
        the same key and input. ``refused`` turns a decided refusal into an answer."""
        claimed = await self.idempotency.claim(principal.subject, key, operation, arguments)
        if isinstance(claimed, Replay):
            self.metrics.duplicate_blocked(Via.IDEMPOTENCY_KEY, operation)
            return Outcome(claimed.response, replayed=True)
        described = Operation(operation, "mutation", {**arguments, "idempotencyKey": key})
        try:
            answer = await act(claimed)
        except DECIDED as error:
            answer = refused(error)
            result = {"outcome": "refused", "code": error.code, "message": error.message}
        except BaseException as error:
            # Not known to have happened, or not: the client may try again with the key.
            await self.idempotency.release(claimed)
            code = error.code if isinstance(error, GatewayError) else "INTERNAL"
            self.audit.record(f"write.{operation}", principal, described, {"outcome": code})
            raise
        else:
            result = {"outcome": "done"}
        await self.idempotency.complete(claimed, answer)
        await self.audit.written(f"write.{operation}", principal, described, result)
        return Outcome(answer, replayed=False)

    async def send(
        self, claim: Claim, command: WriteCommand, *, to: SystemName | None = None, step: str = ""
    ) -> WriteResult:
        """``command`` applied by the system that owns what it changes, under a key derived
        from the client's; ``to`` names the system a mutation is meant for, refused before
        anything is sent when it is not that owner."""
        owner = self.ownership.owner(command.kind)
        key = self.idempotency.outbound_key(claim, owner.value, step)
        return await self.apply(command, key, to=to)

    async def apply(
        self, command: WriteCommand, key: str, *, to: SystemName | None = None
    ) -> WriteResult:
        """``command`` applied by its owner under ``key`` (a workflow step's, an outbox
        message's): the owner applies it once however often it is sent."""
        owner = self.ownership.owner(command.kind)
        try:
            if to is not None:
                self.ownership.check_write(command.kind, to)
            result = await self.registry.get(owner).write(command, key)
        except DECIDED:
            self.metrics.owner_write(owner, command.kind.value, WriteOutcome.REFUSED)
            raise
        except Exception:
            self.metrics.owner_write(owner, command.kind.value, WriteOutcome.FAILED)
            raise
        self.metrics.owner_write(owner, command.kind.value, WriteOutcome.DONE)
        shadow = self.registry.shadow_of(owner)
        if shadow is not None and isinstance(command, PostingCommand):
            await _mirrored(shadow, command, key)
        return result


async def _mirrored(shadow: Resilient, command: WriteCommand, key: str) -> None:
    """A new posting written to the owner's shadow (the old ERP of a cut-over) as well,
    under the same key. Its failure fails nothing: the owner has the write, and reconciling
    the owner with its shadow shows what the shadow lacks. Only new postings: a command
    naming a record by its id (a void) names the owner's record, not the shadow's."""
    try:
        await shadow.write(command, key)
    except GatewayError as failed:
        log.warning(
            "%s did not take %s under key %s: %s",
            shadow.system.value, type(command).__name__, key, failed.message,
        )  # fmt: skip
