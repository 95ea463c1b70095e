"""Tables for what opsgraph itself owns: the customer crosswalk, idempotency records, the
audit log, API keys, workflow runs, the outbox and event log, reconciliation, credit
requests.

Money is two columns, integer minor units and ISO 4217 code. Times are stored in UTC and come
back timezone-aware on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC time")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Customer(Base):
    __tablename__ = "customers"
    # Tenancy: a principal limited to legal entities pages through its own by id.
    __table_args__ = (Index(None, "legal_entity", "id"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    # The subsidiary that contracts with the customer (the ERP's); None: not known yet.
    legal_entity: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ExternalId(Base):
    """One row of the crosswalk: this customer is ``external_id`` in ``system``."""

    __tablename__ = "customer_external_ids"
    __table_args__ = (
        UniqueConstraint("system", "external_id"),
        UniqueConstraint("customer_id", "system"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    system: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdempotencyRecord(Base):
    """A mutation's idempotency key, scoped to the principal that sent it: two callers may
    pick the same key without meeting. ``updated_at`` is the lease of an in-progress write
    (``gateway.writes.idempotency``)."""

    __tablename__ = "idempotency_keys"
    # The purge finds expired records without reading the whole table.
    __table_args__ = (Index(None, "expires_at"),)
    principal: Mapped[str] = mapped_column(String(255), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    operation: Mapped[str] = mapped_column(String(128))
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 hex of operation and input
    status: Mapped[str] = mapped_column(String(16))  # writes.idempotency.IdempotencyStatus
    response: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "object_kind", "object_id"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(128))
    object_kind: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(255))
    system: Mapped[str | None] = mapped_column(String(32), default=None)
    request_id: Mapped[str | None] = mapped_column(String(64), default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ApiKey(Base):
    """A service client's key, ``og_<id>_<secret>``. Only the SHA-256 of the secret is kept:
    the secret is shown once, when the key is created."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    secret_sha256: Mapped[str] = mapped_column(String(64))  # hex
    scopes: Mapped[list[str]] = mapped_column(JSON)
    # The legal entities its principal may see; None: every one.
    legal_entities: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class WorkflowRun(Base):
    __tablename__ = "workflow_runs"
    __table_args__ = (Index(None, "status"), Index(None, "subject_kind", "subject_id"))
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workflow: Mapped[str] = mapped_column(String(64))
    # workflows.engine.RunStatus: pending running waiting succeeded failed parked cancelled
    status: Mapped[str] = mapped_column(String(16))
    subject_kind: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str] = mapped_column(String(255))
    input: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    # Bumped by each engine that takes the run; its writes compare it (workflows.engine).
    version: Mapped[int] = mapped_column(Integer, default=1)
    # running: the engine that took it holds it until then; None or past: nobody does.
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    # waiting: when resume_due takes it again.
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WorkflowStep(Base):
    __tablename__ = "workflow_steps"
    __table_args__ = (UniqueConstraint("run_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("workflow_runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # workflows.engine.StepStatus
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    output: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)


class OutboxMessage(Base):
    """Written in the same transaction as the change it announces; a relay publishes it."""

    __tablename__ = "outbox"
    __table_args__ = (Index(None, "published_at"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    topic: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The W3C trace context of the transaction that wrote it (None: it was not traced):
    # delivering it continues that trace.
    traceparent: Mapped[str | None] = mapped_column(String(64), default=None)


class InboundEvent(Base):
    """Every webhook or change-feed event received, deduplicated by the source's event id."""

    __tablename__ = "inbound_events"
    __table_args__ = (
        UniqueConstraint("source", "event_id"),
        Index(
            "ix_inbound_events_unrouted",
            "id",
            postgresql_where=text("routed_at IS NULL"),
            sqlite_where=text("routed_at IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # When its routes' runs were created (gateway.events.routing); None: not yet routed.
    routed_at: Mapped[datetime | None] = mapped_column(default=None)


class ChangeFeedWatermark(Base):
    """How far the change feed of a system without webhooks (ERP, CRM) has been read: its
    connector's opaque cursor, saved after the events before it are in the inbox."""

    __tablename__ = "change_feed_watermarks"
    system: Mapped[str] = mapped_column(String(32), primary_key=True)
    cursor: Mapped[str] = mapped_column(Text)
    polled_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The last poll's failure, kept until a poll succeeds; the cursor stays where it was.
    error: Mapped[str | None] = mapped_column(Text, default=None)


class ReconciliationRun(Base):
    """One comparison of a source system with a target (billing with the ERP, the ERP with
    its shadow) over legal entities and accounting periods."""

    __tablename__ = "reconciliation_runs"
    __table_args__ = (Index(None, "started_at"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # reconcile.RunKind
    source: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(32))
    entities: Mapped[list[str]] = mapped_column(JSON)  # empty: every legal entity
    period_from: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    period_to: Mapped[str] = mapped_column(String(7))
    status: Mapped[str] = mapped_column(String(16))  # reconcile.RunStatus
    phase: Mapped[str] = mapped_column(String(16))  # reconcile.Phase
    requested_by: Mapped[str] = mapped_column(String(255))
    # Counts so far: records read per side, keys compared, exceptions per kind, new, reopened,
    # auto-resolved.
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Renewed while the run works: a running run whose heartbeat stopped was interrupted.
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class ReconciliationItem(Base):
    """A record a run has read, kept until the run ends: the keyed table both sides are
    merged through, so that neither system is ever held in memory."""

    __tablename__ = "reconciliation_items"
    __table_args__ = (Index(None, "run_id", "ledger", "key"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64))
    ledger: Mapped[str] = mapped_column(String(8))  # invoice, credit
    side: Mapped[str] = mapped_column(String(8))  # source, target
    key: Mapped[str] = mapped_column(String(255))  # what both sides carry: the invoice id
    record_id: Mapped[str] = mapped_column(String(255))
    customer_ref: Mapped[str] = mapped_column(String(255))  # the customer's id in its system
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    tax_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    day: Mapped[str] = mapped_column(String(10))  # ISO date: issued, or posted
    entity: Mapped[str | None] = mapped_column(String(64), default=None)  # a posting's


class ReconciliationException(Base):
    """A difference a run found, one row per (source, target, kind, key) across runs."""

    __tablename__ = "reconciliation_exceptions"
    __table_args__ = (
        Index(None, "status", "rank"),
        Index(None, "customer_id"),
        Index(None, "entity", "period"),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))  # models.ExceptionKind
    key: Mapped[str] = mapped_column(String(255))  # the invoice (or credit) id compared
    entity: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(7))
    customer_id: Mapped[str | None] = mapped_column(String(64), default=None)
    invoice_id: Mapped[str | None] = mapped_column(String(255), default=None)
    posting_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    impact_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    severity: Mapped[str] = mapped_column(String(16))  # rules.severity.Severity, lower case
    rank: Mapped[int] = mapped_column(BigInteger)  # higher first, across currencies
    detail: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")  # models.ExceptionStatus
    first_run_id: Mapped[str] = mapped_column(String(64))
    last_run_id: Mapped[str] = mapped_column(String(64))
    status_by: Mapped[str | None] = mapped_column(String(255), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CreditRequestRow(Base):
    __tablename__ = "credit_requests"
    __table_args__ = (Index(None, "customer_id"), Index(None, "status"))
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    case_id: Mapped[str | None] = mapped_column(String(255), default=None)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(String(255))
    decided_by: Mapped[str | None] = mapped_column(String(255), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    posting_id: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
