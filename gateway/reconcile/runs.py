"""A reconciliation run as the rest of the gateway sees it: its kinds, statuses and phases,
what it looks like (``RunView``, also as the JSON its broadcasts carry), and the refusals
about runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from connectors.errors import GatewayError
from connectors.models import SystemName
from gateway.errors import NotFound
from gateway.reconcile.scope import Period, Scope
from gateway.storage.tables import ReconciliationRun as RunRow

# The broadcast topics: a run's progress ({run}), and each exception raised ({exception}).
RECONCILIATION_RUNS = "reconciliation_runs"
RECONCILIATION_EXCEPTIONS = "reconciliation_exceptions"


class RunKind(StrEnum):
    FULL = "full"
    INCREMENTAL = "incremental"


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class Phase(StrEnum):
    READING = "reading"  # both sides, into the keyed table
    COMPARING = "comparing"  # merging by key; ranking and storing what differs
    RESOLVING = "resolving"  # marking what was not found again
    DONE = "done"


class ReconciliationRunning(GatewayError):
    """Not a decided refusal (the idempotency key is released): the same key may start the
    run once the other has ended."""

    code = "RECONCILIATION_RUNNING"

    def __init__(self, run_id: str | None) -> None:
        which = f"reconciliation run {run_id}" if run_id else "a reconciliation run"
        super().__init__(
            f"{which} is under way over an overlapping scope; follow it, or start this one "
            "when it ends"
        )
        self.run_id = run_id

    def hidden(self) -> ReconciliationRunning:
        """The same refusal without the other run's id (for one who may not see it)."""
        return ReconciliationRunning(None)


class RunNotFound(NotFound):
    code = "RECONCILIATION_RUN_NOT_FOUND"


@dataclass(frozen=True)
class RunView:
    id: str
    kind: RunKind
    scope: Scope
    status: RunStatus
    phase: Phase
    requested_by: str
    stats: Mapping[str, Any]
    error: str | None
    started_at: datetime
    heartbeat_at: datetime
    finished_at: datetime | None

    def json(self) -> dict[str, Any]:
        """What a broadcast of the run carries; ``of_json`` reads it back."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "scope": [str(self.scope.first), str(self.scope.last), list(self.scope.entities),
                      self.scope.source.value, self.scope.target.value],
            "status": self.status.value,
            "phase": self.phase.value,
            "requestedBy": self.requested_by,
            "stats": dict(self.stats),
            "error": self.error,
            "times": [self.started_at.isoformat(), self.heartbeat_at.isoformat(),
                      None if self.finished_at is None else self.finished_at.isoformat()],
        }  # fmt: skip

    @classmethod
    def of_json(cls, data: Mapping[str, Any]) -> RunView:
        first, last, entities, source, target = data["scope"]
        started, heartbeat, finished = data["times"]
        return cls(
            id=data["id"],
            kind=RunKind(data["kind"]),
            scope=Scope(
                Period.parse(first),
                Period.parse(last),
                tuple(entities),
                SystemName(source),
                SystemName(target),
            ),
            status=RunStatus(data["status"]),
            phase=Phase(data["phase"]),
            requested_by=data["requestedBy"],
            stats=data["stats"],
            error=data["error"],
            started_at=datetime.fromisoformat(started),
            heartbeat_at=datetime.fromisoformat(heartbeat),
            finished_at=None if finished is None else datetime.fromisoformat(finished),
        )


def run_view(row: RunRow) -> RunView:
    return RunView(
        id=row.id,
        kind=RunKind(row.kind),
        scope=Scope(
            Period.parse(row.period_from),
            Period.parse(row.period_to),
            tuple(row.entities),
            SystemName(row.source),
            SystemName(row.target),
        ),
        status=RunStatus(row.status),
        phase=Phase(row.phase),
        requested_by=row.requested_by,
        stats=dict(row.stats),
        error=row.error,
        started_at=row.started_at,
        heartbeat_at=row.heartbeat_at,
        finished_at=row.finished_at,
    )
