"""Prometheus metrics: every metric the gateway exports, defined once, on a registry of the
app's own (``Metrics``; ``create_app`` makes one, the services and the GraphQL stage record
into it, ``GET /metrics`` writes it out).

Names carry the ``opsgraph_`` prefix and their unit; labels take a few values each, never a
customer's or a record's id:

- ``operation``: a GraphQL operation's name when its text is one of the registered
  operations (the persisted query manifest), ``anonymous`` when it has no name, ``other``
  for any other text, so a client cannot mint series by naming its queries;
- ``type``: ``query``, ``mutation``, ``subscription``, or ``none`` (the document never
  parsed, or the request was refused before it was read);
- ``code``: an error's ``extensions.code`` (a closed set, ``gateway.errors`` and
  ``connectors.errors``);
- ``system``: billing, erp, crm, support (and a cut-over's erp_shadow);
- ``workflow``: the credit workflow and the event routes of ``event_routes.toml``;
- ``source`` and ``type`` of events: the system and its vendor's event type.

Counters only go up from the app's start; the gauges read from the database and the
breakers (``opsgraph_reconciliation_exceptions_open``, ``opsgraph_dead_letters``,
``opsgraph_connector_breaker_state``) are refreshed as ``/metrics`` is scraped
(``gateway.telemetry.scrape``), so every replica reports the same shared truth there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from connectors.errors import CircuitOpen, GatewayError
from connectors.models import ExceptionKind, ExceptionSeverity, SystemName
from connectors.resilience import BreakerState, CallObserver
from gateway.persisted.manifest import sha256

ANONYMOUS = "anonymous"
OTHER = "other"
NO_TYPE = "none"

# A GraphQL request, an upstream call: milliseconds to the request's deadline.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# An event from its arrival to its processing: at once, or after a pending round.
EVENT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
# A credit from its request to a finance approver's decision: minutes to a week.
APPROVAL_BUCKETS = (60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 8 * 3600.0, 86400.0, 3 * 86400.0,
                    7 * 86400.0)  # fmt: skip
# The breaker gauge's values.
BREAKER_VALUES = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class EventOutcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"  # the inbox held it already
    REJECTED = "rejected"  # not proved: a bad signature, a stale timestamp, not an event


class WriteOutcome(StrEnum):
    DONE = "done"
    REFUSED = "refused"  # by the owner, or the ownership map: trying again changes nothing
    FAILED = "failed"  # not known to have happened: a timeout, a system down


class Via(StrEnum):
    """What blocked a duplicate."""

    IDEMPOTENCY_KEY = "idempotency_key"  # a mutation replayed from its key's stored answer
    EVENT_INBOX = "event_inbox"  # an event the inbox held already


def operation_label(query: str | None, name: str | None, registered: frozenset[str]) -> str:
    """The ``operation`` label of a request that runs ``query`` as operation ``name``:
    ``registered`` holds the SHA-256 (hex) of each registered operation's text."""
    if name is None:
        return ANONYMOUS
    if registered and query is not None and sha256(query) in registered:
        return name
    return OTHER


def error_code(error: BaseException) -> str:
    return error.code if isinstance(error, GatewayError) else "INTERNAL"


class Metrics:
    def __init__(self, registered: Iterable[str] = ()) -> None:
        """``registered``: the SHA-256 of each registered operation's text, whose names
        label their requests."""
        self.registered = frozenset(registered)
        self.registry = CollectorRegistry()
        r = self.registry
        # The GraphQL stage
        self.graphql_requests = Counter(
            "opsgraph_graphql_requests",
            "GraphQL requests answered (over HTTP, and operations over WebSockets).",
            ["operation", "type"],
            registry=r,
        )
        self.graphql_errors = Counter(
            "opsgraph_graphql_errors",
            "GraphQL requests answered with errors of this extensions.code (once per code "
            "per request).",
            ["operation", "code"],
            registry=r,
        )
        self.graphql_duration = Histogram(
            "opsgraph_graphql_request_duration_seconds",
            "How long a GraphQL query or mutation took, from its body read to its answer.",
            ["operation", "type"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.response_cache_lookups = Counter(
            "opsgraph_response_cache_lookups",
            "Registered queries looked up in the response cache: hit (served without "
            "execution), miss, changed (kept, but built from what has changed since) or "
            "bypassed (Cache-Control: no-cache).",
            ["operation", "outcome"],
            registry=r,
        )
        self.response_cache_entries = Gauge(
            "opsgraph_response_cache_entries", "Answers the response cache holds.", registry=r
        )
        self.response_cache_bytes = Gauge(
            "opsgraph_response_cache_bytes", "The bytes of the answers it holds.", registry=r
        )
        # Calls to the systems of record
        self.connector_duration = Histogram(
            "opsgraph_connector_call_duration_seconds",
            "How long each attempt of a call to a system of record took (an attempt a "
            "breaker refused at once is not timed).",
            ["system"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.connector_errors = Counter(
            "opsgraph_connector_errors",
            "Attempts of calls to a system of record that failed, by the error's code.",
            ["system", "code"],
            registry=r,
        )
        self.connector_retries = Counter(
            "opsgraph_connector_retries",
            "Failed attempts tried again (after a backoff, or a 429's Retry-After).",
            ["system"],
            registry=r,
        )
        self.breaker_state = Gauge(
            "opsgraph_connector_breaker_state",
            "Each system's circuit breaker: 0 closed, 1 half-open, 2 open.",
            ["system"],
            registry=r,
        )
        # Events in
        self.events_received = Counter(
            "opsgraph_events_received",
            "Events delivered (webhooks) or polled (change feeds): stored, a duplicate the "
            "inbox held already, or rejected (not proved).",
            ["source", "outcome"],
            registry=r,
        )
        self.events_processed = Counter(
            "opsgraph_events_processed",
            "Stored events processed: the cache forgot what they name, subscribers heard.",
            ["source", "type"],
            registry=r,
        )
        self.event_processing = Histogram(
            "opsgraph_event_processing_seconds",
            "From an event's arrival at the gateway to its processing.",
            ["source"],
            buckets=EVENT_BUCKETS,
            registry=r,
        )
        # Writes
        self.owner_writes = Counter(
            "opsgraph_owner_writes",
            "Writes sent to the system that owns what they change: done, refused by the "
            "owner or the ownership map, or failed (outcome unknown: timeout, down).",
            ["system", "kind", "outcome"],
            registry=r,
        )
        self.duplicates_blocked = Counter(
            "opsgraph_duplicates_blocked",
            "Repeated attempts that did nothing again: a mutation replayed from its "
            "idempotency key, an event the inbox held already.",
            ["via", "operation"],
            registry=r,
        )
        self.credit_approval_delay = Histogram(
            "opsgraph_credit_approval_delay_seconds",
            "From a credit's request to its approval by a finance approver (credits policy "
            "approves alone are not counted).",
            buckets=APPROVAL_BUCKETS,
            registry=r,
        )
        # Workflows
        self.workflow_runs_finished = Counter(
            "opsgraph_workflow_runs_finished",
            "Workflow runs that reached succeeded, failed, parked or cancelled (a parked run "
            "retried counts again when it ends).",
            ["workflow", "status"],
            registry=r,
        )
        self.dead_letters = Gauge(
            "opsgraph_dead_letters",
            "Runs of event routes that failed or were parked, waiting for an operator "
            "(the deadLetters query).",
            ["workflow", "status"],
            registry=r,
        )
        # Reconciliation
        self.reconciliation_open = Gauge(
            "opsgraph_reconciliation_exceptions_open",
            "Reconciliation exceptions open, by kind and severity.",
            ["kind", "severity"],
            registry=r,
        )
        self._dead_seen: set[tuple[str, str]] = set()
        self.calls = _CallMetrics(self)

    # -- the GraphQL stage ----------------------------------------------------------------

    def graphql_request(
        self, operation: str, type: str, seconds: float | None, codes: Iterable[str]
    ) -> None:
        """One request answered; ``seconds`` None for a subscription (it lasts as long as
        its client listens)."""
        self.graphql_requests.labels(operation, type).inc()
        if seconds is not None:
            self.graphql_duration.labels(operation, type).observe(seconds)
        for code in sorted(set(codes)):
            self.graphql_errors.labels(operation, code).inc()

    def response_cache_lookup(self, operation: str, outcome: str) -> None:
        self.response_cache_lookups.labels(operation, outcome).inc()

    def response_cache_size(self, entries: int, size: int) -> None:
        self.response_cache_entries.set(entries)
        self.response_cache_bytes.set(size)

    # -- events, writes, credits, workflows -------------------------------------------------

    def event_received(self, source: SystemName, outcome: EventOutcome) -> None:
        self.events_received.labels(source.value, outcome.value).inc()
        if outcome is EventOutcome.DUPLICATE:
            self.duplicate_blocked(Via.EVENT_INBOX, f"event/{source.value}")

    def event_processed(self, source: str, type: str, received_at: datetime, now: datetime) -> None:
        self.events_processed.labels(source, type).inc()
        self.event_processing.labels(source).observe(max(0.0, (now - received_at).total_seconds()))

    def duplicate_blocked(self, via: Via, operation: str) -> None:
        self.duplicates_blocked.labels(via.value, operation).inc()

    def owner_write(self, system: SystemName, kind: str, outcome: WriteOutcome) -> None:
        self.owner_writes.labels(system.value, kind, outcome.value).inc()

    def credit_approved(self, requested_at: datetime, approved_at: datetime) -> None:
        self.credit_approval_delay.observe(max(0.0, (approved_at - requested_at).total_seconds()))

    def workflow_finished(self, workflow: str, status: str) -> None:
        self.workflow_runs_finished.labels(workflow, status).inc()

    # -- refreshed at scrape time -----------------------------------------------------------

    def breakers(self, states: Mapping[SystemName, BreakerState]) -> None:
        for system, state in states.items():
            self.breaker_state.labels(system.value).set(BREAKER_VALUES[state])

    def reconciliation(self, open_: Mapping[tuple[str, str], int]) -> None:
        """The open exceptions by (kind, severity); every pair is set, 0 when none."""
        pairs = {(k.value, s.value) for k in ExceptionKind for s in ExceptionSeverity}
        for kind, severity in sorted(pairs | set(open_)):
            self.reconciliation_open.labels(kind, severity).set(open_.get((kind, severity), 0))

    def dead(self, letters: Mapping[tuple[str, str], int]) -> None:
        """The dead letters by (workflow, status); a pair that had some and has none now
        reads 0 (until the process restarts)."""
        self._dead_seen |= set(letters)
        for workflow, status in sorted(self._dead_seen):
            self.dead_letters.labels(workflow, status).set(letters.get((workflow, status), 0))


class _CallMetrics(CallObserver):
    """The connectors' calls, as ``Resilient`` tells them (``connectors.resilience``)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def attempted(self, system: SystemName, seconds: float, error: BaseException | None) -> None:
        if not isinstance(error, CircuitOpen):  # refused at once, no call made
            self.metrics.connector_duration.labels(system.value).observe(seconds)
        if error is not None:
            self.metrics.connector_errors.labels(system.value, error_code(error)).inc()

    def retrying(self, system: SystemName) -> None:
        self.metrics.connector_retries.labels(system.value).inc()
