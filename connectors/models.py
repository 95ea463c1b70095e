"""The canonical model: one shape per business object, whichever system it came from.

Connectors translate their wire format to and from these records. Every record knows the
system it came from and its id there (``system``, ``id``); the gateway adds freshness
(fetched at, cached, stale) when it serves them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Generic, NamedTuple, TypeVar

from connectors.money import Money

T = TypeVar("T")


class SystemName(StrEnum):
    OPSGRAPH = "opsgraph"
    BILLING = "billing"
    ERP = "erp"
    CRM = "crm"
    SUPPORT = "support"
    # The finance stack being replaced, during a cut-over: it takes the ERP's postings too,
    # and reconciling the two proves they agree before the old one is switched off.
    ERP_SHADOW = "erp_shadow"


class ObjectKind(StrEnum):
    CUSTOMER = "customer"  # a system's own record of the customer (Stripe customer, ...)
    CROSSWALK = "crosswalk"  # which ids in which systems are one customer
    ACCOUNT = "account"
    PLAN = "plan"
    SUBSCRIPTION = "subscription"
    ENTITLEMENT = "entitlement"
    INVOICE = "invoice"
    PAYMENT = "payment"
    USAGE = "usage"
    POSTING = "posting"
    BALANCE = "balance"
    CASE = "case"
    SLA_BREACH = "sla_breach"
    CREDIT_REQUEST = "credit_request"
    WORKFLOW_RUN = "workflow_run"
    RECONCILIATION_EXCEPTION = "reconciliation_exception"
    AUDIT = "audit"


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    system: SystemName
    id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomerRecord(Record):
    """A system's own record of a customer: Stripe customer, NetSuite customer, Salesforce
    account reference, Zendesk organization. ``ref`` is the opsgraph customer id the system
    carries (metadata / externalId / external_id), when it carries one."""

    name: str
    ref: str | None = None
    email: str | None = None
    currency: str | None = None
    legal_entity: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Account(Record):
    name: str
    ref: str | None
    segment: str | None
    owner: str | None
    strategic: bool
    renewal_date: date | None
    health_score: int | None


class PlanInterval(StrEnum):
    """How often a plan bills (Stripe's ``recurring.interval``; ``one_time`` for none)."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"
    ONE_TIME = "one_time"


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan(Record):
    name: str
    price: Money
    interval: PlanInterval
    features: tuple[str, ...]
    support_tier: str
    sla_hours: int


class SubscriptionStatus(StrEnum):
    """Stripe's subscription statuses."""

    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"
    UNPAID = "unpaid"
    INCOMPLETE = "incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscription(Record):
    customer_id: str
    plan_id: str
    quantity: int
    status: SubscriptionStatus
    current_period_start: datetime
    current_period_end: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Entitlement:
    """Derived from a plan: what a subscriber may use and the support promised to it."""

    feature: str
    plan_id: str
    support_tier: str
    sla_hours: int


class InvoiceStatus(StrEnum):
    """A billing invoice's status (Stripe's)."""

    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


# Invoices the books do not hold: never finalised, or voided.
UNBOOKED = frozenset({InvoiceStatus.DRAFT, InvoiceStatus.VOID})


@dataclass(frozen=True, slots=True, kw_only=True)
class Invoice(Record):
    customer_id: str
    number: str | None
    status: InvoiceStatus
    subtotal: Money
    tax: Money
    total: Money
    issued_at: datetime  # when it was made (Stripe's ``created``), a draft as any other
    period_start: datetime | None = None
    period_end: datetime | None = None
    subscription_id: str | None = None
    # When it was finalised (``status_transitions.finalized_at``); None: a draft still.
    finalized_at: datetime | None = None

    @property
    def booked_on(self) -> date:
        """The day the invoice counts from in the books: its finalisation (a draft made in
        one month and finalised in the next is the next month's revenue), else the day it
        was made."""
        return (self.finalized_at or self.issued_at).date()


class PaymentStatus(StrEnum):
    """A payment's status (Stripe's PaymentIntent statuses)."""

    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"
    CANCELED = "canceled"
    SUCCEEDED = "succeeded"


@dataclass(frozen=True, slots=True, kw_only=True)
class Payment(Record):
    customer_id: str
    invoice_id: str | None
    amount: Money
    status: PaymentStatus
    created_at: datetime


class PostingType(StrEnum):
    INVOICE = "invoice"
    CREDIT_MEMO = "credit_memo"
    JOURNAL_ENTRY = "journal_entry"


class PostingState(StrEnum):
    """Where an ERP transaction stands in the ERP (NetSuite's status ids). Not to be
    confused with ``gateway.rules.matching.PostingMatch``: how an invoice's postings
    compare with the invoice."""

    OPEN = "open"
    PAID_IN_FULL = "paidInFull"
    FULLY_APPLIED = "fullyApplied"
    PENDING_APPROVAL = "pendingApproval"
    APPROVED = "approved"
    VOIDED = "voided"


@dataclass(frozen=True, slots=True, kw_only=True)
class Posting(Record):
    """A financial posting in the ERP. ``external_id`` is the billing invoice id it posts
    (NetSuite ``externalId``), or the credit request id for a credit memo."""

    type: PostingType
    customer_id: str
    external_id: str | None
    subsidiary: str
    amount: Money
    tax: Money
    tran_date: date
    status: PostingState
    memo: str | None = None


class Booked(NamedTuple):
    """An invoice or a posting as a ledger holds it, for reading a ledger by the million
    (reconciliation): what it is worth net of tax, its tax, and the day it counts from in
    the books, without the record's model. A connector may read these straight from its
    wire format; each must be what ``of_invoice`` / ``of_posting`` make of the record."""

    id: str
    customer_id: str
    external_id: str | None  # a posting's source record; None for an invoice
    amount_minor: int
    tax_minor: int
    currency: str
    day: date
    entity: str | None  # a posting's subsidiary; None for an invoice
    live: bool  # in the books: an invoice finalised and not voided, a posting not voided

    @classmethod
    def of_invoice(cls, invoice: Invoice) -> Booked:
        return cls(
            invoice.id, invoice.customer_id, None, invoice.subtotal.amount_minor,
            invoice.tax.amount_minor, invoice.subtotal.currency, invoice.booked_on, None,
            invoice.status not in UNBOOKED,
        )  # fmt: skip

    @classmethod
    def of_posting(cls, posting: Posting) -> Booked:
        return cls(
            posting.id, posting.customer_id, posting.external_id, posting.amount.amount_minor,
            posting.tax.amount_minor, posting.amount.currency, posting.tran_date,
            posting.subsidiary, posting.status is not PostingState.VOIDED,
        )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Balance(Record):
    customer_id: str
    receivable: Money


class CasePriority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class CaseStatus(StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    HOLD = "hold"
    SOLVED = "solved"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Case(Record):
    organization_id: str
    subject: str
    priority: CasePriority
    status: CaseStatus
    created_at: datetime
    updated_at: datetime
    sla_breached: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaBreach(Record):
    case_id: str
    metric: str
    breached_at: datetime


class CreditStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    POSTED = "posted"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditRequest(Record):
    """A service credit request, opsgraph's own (``system`` is opsgraph)."""

    customer_id: str
    case_id: str | None
    amount: Money
    reason: str
    status: CreditStatus
    requested_by: str
    decided_by: str | None
    posting_id: str | None  # the ERP credit memo, once posted
    created_at: datetime


class ExceptionKind(StrEnum):
    """What a reconciliation of billing (source) against the ERP (target) found."""

    MISSING_IN_TARGET = "missing_in_target"
    ORPHAN_IN_TARGET = "orphan_in_target"
    DUPLICATE_IN_TARGET = "duplicate_in_target"
    AMOUNT_MISMATCH = "amount_mismatch"
    TAX_MISMATCH = "tax_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    PERIOD_MISMATCH = "period_mismatch"
    CREDIT_MISMATCH = "credit_mismatch"


class ExceptionStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    AUTO_RESOLVED = "auto_resolved"


class ExceptionSeverity(StrEnum):
    """How much a reconciliation exception matters (``gateway.rules.severity``)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconciliationException(Record):
    """A difference between a source system and a target (billing and the ERP) that someone
    must resolve, opsgraph's own; ``impact`` is what it is worth, ``key`` the record both
    carry (the invoice or credit id), ``rank`` its place in the book (higher first)."""

    source: SystemName
    target: SystemName
    kind: ExceptionKind
    severity: ExceptionSeverity
    rank: int
    status: ExceptionStatus
    key: str
    entity: str
    period: str  # YYYY-MM
    customer_id: str | None
    invoice_id: str | None
    posting_ids: tuple[str, ...]
    impact: Money
    detail: str
    first_run_id: str
    last_run_id: str
    status_by: str | None
    note: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Page(Generic[T]):
    """One page of a cursor-paged listing; ``cursor`` fetches the next, None at the end.
    Write commands and their results are in ``connectors.commands``."""

    items: list[T]
    cursor: str | None


class ChangeType(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeEvent:
    system: SystemName
    kind: ObjectKind
    id: str
    occurred_at: datetime
    type: ChangeType
    # The record whose list of this kind holds it (a subscription's or an invoice's
    # customer, a case's organization), when the change says so.
    parent: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeBatch:
    events: list[ChangeEvent]
    cursor: str
    has_more: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorConfig:
    """What a connector needs to reach its system; the gateway builds it from settings."""

    base_url: str
    secret: str
    timeout: float = 10.0
    webhook_secret: str | None = None
    max_connections: int = 16  # HTTP connections to the system at once
    options: Mapping[str, str] = field(default_factory=dict)
    # A span per HTTP request, which carries the trace to the system (``traceparent``).
    traced: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Health:
    system: SystemName
    healthy: bool
    latency_ms: int
    detail: str | None = None


RECORD_KINDS: dict[type[Record], ObjectKind] = {
    CustomerRecord: ObjectKind.CUSTOMER,
    Account: ObjectKind.ACCOUNT,
    Plan: ObjectKind.PLAN,
    Subscription: ObjectKind.SUBSCRIPTION,
    Invoice: ObjectKind.INVOICE,
    Payment: ObjectKind.PAYMENT,
    Posting: ObjectKind.POSTING,
    Balance: ObjectKind.BALANCE,
    Case: ObjectKind.CASE,
    SlaBreach: ObjectKind.SLA_BREACH,
    CreditRequest: ObjectKind.CREDIT_REQUEST,
    ReconciliationException: ObjectKind.RECONCILIATION_EXCEPTION,
}


def kind_of(record: Record) -> ObjectKind:
    return RECORD_KINDS[type(record)]
