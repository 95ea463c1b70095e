"""Typed write commands: one frozen dataclass per action a system of record applies.

A command is checked when it is built (``__post_init__``), before it is routed anywhere, so
a connector only ever sees well-formed commands: required text present, money as ``Money``
(never a float or a bare integer), dates as ``date``, closed vocabularies as enums. What
only the owning system can judge (is this a Salesforce id? does NetSuite know that
subsidiary?) stays the connector's to refuse. ``Connector.write`` dispatches on the
command's type; ``kind`` names the object it writes, and so the system that owns it::

    WriteCommand
    ├── CreateCustomer          customer  a billing customer (Stripe)
    ├── CreateInvoice           invoice   a one-off billing invoice
    ├── CreateCreditNote        invoice   a credit note against a billing invoice
    ├── ChangeSubscriptionPlan  subscription  another price for a one-price subscription
    ├── CancelSubscription      subscription  now, or at the end of the period
    ├── PostingCommand                    an ERP transaction (NetSuite)
    │   ├── CreateCreditMemo    posting
    │   └── PostInvoice         posting   a billing invoice posted to the ERP
    ├── VoidPosting             posting   an ERP transaction voided (kept, its amounts zero)
    ├── UpsertAccount           account   a CRM account, by its opsgraph ref (Salesforce)
    ├── UpdateAccountHealth     account
    ├── LogAccountActivity      account   a Task on the account's timeline (done, or a follow-up)
    ├── CreateCase              case      a support ticket (Zendesk)
    ├── EscalateCase            case      raised to high or urgent, with an internal note
    └── CommentOnCase           case

A malformed command raises ``InvalidCommand`` (an ``UpstreamRejected``: nothing was sent).
A command applied answers a ``WriteResult``.
A field of a partial update defaults to ``UNSET``, which keeps what the system has; ``None``
there clears the value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date, datetime
from enum import Enum, StrEnum
from typing import Any, ClassVar

from connectors.errors import UpstreamRejected
from connectors.models import CasePriority, ObjectKind, Record, SystemName
from connectors.money import Money, MoneyError, exponent


class InvalidCommand(UpstreamRejected):
    """A write command that is malformed; nothing was sent. Fix the command: sending it
    again cannot help."""

    code = "INVALID_COMMAND"


class Unset(Enum):
    UNSET = "unset"


UNSET = Unset.UNSET


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteCommand:
    """A write routed to the system that owns ``kind``."""

    kind: ClassVar[ObjectKind]

    def given(self) -> dict[str, Any]:
        """The fields this command sets, by name: all but those left ``UNSET``."""
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not UNSET}

    def _invalid(self, problem: str) -> InvalidCommand:
        return InvalidCommand(f"{type(self).__name__}: {problem}")

    def _text(self, *names: str, max_length: int | None = None) -> None:
        """Each of ``names`` is a non-empty string of at most ``max_length`` characters (or
        left unset)."""
        for name in names:
            value = getattr(self, name)
            if value is not UNSET and (not isinstance(value, str) or not value):
                raise self._invalid(f"{name} must be a non-empty string")
            if max_length is not None and isinstance(value, str) and len(value) > max_length:
                raise self._invalid(f"{name} must be at most {max_length} characters")

    def _optional_text(self, *names: str) -> None:
        for name in names:
            self._check(name, lambda v: isinstance(v, str), "a string")

    def _money(self, name: str, *, positive: bool) -> Money:
        value = getattr(self, name)
        if not isinstance(value, Money):
            raise self._invalid(f"{name} must be Money, not {type(value).__name__}")
        if value.amount_minor < 0 or (positive and value.amount_minor == 0):
            raise self._invalid(f"{name} must be {'positive' if positive else 'zero or more'}")
        return value

    def _date(self, name: str, *, required: bool = False) -> None:
        def valid(v: Any) -> bool:
            return isinstance(v, date) and not isinstance(v, datetime)

        self._check(name, valid, "a date", required=required)

    def _integer(self, name: str) -> None:
        self._check(name, lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer")

    def _check(
        self, name: str, valid: Callable[[Any], bool], what: str, *, required: bool = False
    ) -> None:
        """``name`` is ``what``; or None or ``UNSET`` unless it is ``required``."""
        value = getattr(self, name)
        if (value is None or value is UNSET) and not required:
            return
        if not valid(value):
            raise self._invalid(f"{name} must be {what}")


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteResult:
    """What a write did: the record it wrote (its id there, and the record when the system
    answers with it); ``created`` is False when the write replayed an earlier one."""

    system: SystemName
    kind: ObjectKind
    id: str
    created: bool
    record: Record | None = None


# -- billing ----------------------------------------------------------------------------


class CreditNoteReason(StrEnum):
    """Why a credit note was issued (Stripe's ``reason``)."""

    DUPLICATE = "duplicate"
    FRAUDULENT = "fraudulent"
    ORDER_CHANGE = "order_change"
    PRODUCT_UNSATISFACTORY = "product_unsatisfactory"


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateCustomer(WriteCommand):
    kind = ObjectKind.CUSTOMER
    name: str
    email: str | None = None
    currency: str | None = None  # ISO 4217: what the customer will be billed in
    ref: str | None = None  # the opsgraph customer id
    legal_entity: str | None = None

    def __post_init__(self) -> None:
        self._text("name")
        self._optional_text("email", "currency", "ref", "legal_entity")
        if self.currency is not None:
            try:
                exponent(self.currency)
            except MoneyError as exc:
                raise self._invalid(str(exc)) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateInvoice(WriteCommand):
    """A one-off invoice for ``amount``, left as a draft."""

    kind = ObjectKind.INVOICE
    customer: str  # the billing system's customer id
    amount: Money
    description: str | None = None

    def __post_init__(self) -> None:
        self._text("customer")
        self._money("amount", positive=True)
        self._optional_text("description")


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateCreditNote(WriteCommand):
    """A credit note lowering what ``invoice`` asks for. ``amount`` is in the invoice's
    currency: Stripe takes the amount alone and credits it in that currency."""

    kind = ObjectKind.INVOICE
    invoice: str
    amount: Money
    reason: CreditNoteReason | None = None
    memo: str | None = None

    def __post_init__(self) -> None:
        self._text("invoice")
        self._money("amount", positive=True)
        self._check("reason", lambda v: isinstance(v, CreditNoteReason), "a CreditNoteReason")
        self._optional_text("memo")


class Proration(StrEnum):
    """How a plan change bills the rest of the current period (Stripe's
    ``proration_behavior``): credit and charge on the next invoice, not at all, or on an
    invoice made at once."""

    CREATE_PRORATIONS = "create_prorations"
    NONE = "none"
    ALWAYS_INVOICE = "always_invoice"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeSubscriptionPlan(WriteCommand):
    """Move a subscription to another plan: ``plan_id`` is the plan's id as ``Plan``
    records name it (the Stripe price). An opsgraph subscription has one price; the
    connector refuses one with more."""

    kind = ObjectKind.SUBSCRIPTION
    subscription_id: str
    plan_id: str
    proration: Proration = Proration.CREATE_PRORATIONS

    def __post_init__(self) -> None:
        self._text("subscription_id", "plan_id")
        self._check("proration", lambda v: isinstance(v, Proration), "a Proration", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelSubscription(WriteCommand):
    """End a subscription now, or, ``at_period_end``, when its paid period runs out (it
    stays active until then)."""

    kind = ObjectKind.SUBSCRIPTION
    subscription_id: str
    at_period_end: bool

    def __post_init__(self) -> None:
        self._text("subscription_id")
        self._check("at_period_end", lambda v: isinstance(v, bool), "true or false", required=True)


# -- ERP --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PostingCommand(WriteCommand):
    """A transaction to create in the ERP: one line for ``amount`` and its ``tax``.
    ``external_id`` is the billing invoice it posts, or the credit request it settles."""

    kind = ObjectKind.POSTING
    customer_id: str
    amount: Money
    tax: Money
    subsidiary: str  # the legal entity's name
    tran_date: date
    external_id: str | None = None
    memo: str | None = None

    def __post_init__(self) -> None:
        self._text("customer_id", "subsidiary")
        amount = self._money("amount", positive=True)
        tax = self._money("tax", positive=False)
        if tax.currency != amount.currency:
            raise self._invalid(f"tax is in {tax.currency}, the amount in {amount.currency}")
        self._date("tran_date", required=True)
        self._optional_text("external_id", "memo")


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateCreditMemo(PostingCommand):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class PostInvoice(PostingCommand):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class VoidPosting(WriteCommand):
    """Void an ERP transaction: its amounts become zero and its status voided, and the
    record stays, so the ledger still shows what was posted and that it was undone. A
    duplicate posting is voided, never deleted. ``reason`` says why, to whoever reads the
    ledger."""

    kind = ObjectKind.POSTING
    posting_id: str
    reason: str

    def __post_init__(self) -> None:
        self._text("posting_id", "reason")


# -- CRM --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class UpsertAccount(WriteCommand):
    """Create the account carrying ``ref``, or update it; a field left ``UNSET`` keeps its
    value. ``owner`` is a user's name; None keeps the owner (an account always has one)."""

    kind = ObjectKind.ACCOUNT
    ref: str
    name: str | Unset = UNSET
    segment: str | None | Unset = UNSET
    owner: str | None = None
    strategic: bool | Unset = UNSET
    renewal_date: date | None | Unset = UNSET
    health_score: int | None | Unset = UNSET

    def __post_init__(self) -> None:
        self._text("ref", "name")
        self._optional_text("segment", "owner")
        self._check("strategic", lambda v: isinstance(v, bool), "true or false")
        self._date("renewal_date")
        self._integer("health_score")


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateAccountHealth(WriteCommand):
    kind = ObjectKind.ACCOUNT
    id: str  # the CRM's account id
    health_score: int | None

    def __post_init__(self) -> None:
        self._text("id")
        self._integer("health_score")


@dataclass(frozen=True, slots=True, kw_only=True)
class LogAccountActivity(WriteCommand):
    """Tell the CRM about something that happened to an account: a completed activity on
    its timeline (a Salesforce Task), or, with ``follow_up_on``, an open one due that day
    and assigned to whoever owns the account (its customer-success manager).
    ``external_ref`` is opsgraph's reference for the note: the same ref logs the same
    activity once, however often it is sent. ObjectKind has no activity: ``kind`` is the
    account the activity belongs to (which routes it to the CRM), and the ``WriteResult``
    says ``account`` but carries the Task's id."""

    kind = ObjectKind.ACCOUNT
    account_id: str  # the CRM's account id
    subject: str
    description: str
    external_ref: str
    follow_up_on: date | None = None

    def __post_init__(self) -> None:
        self._text("account_id")
        self._text("subject", max_length=255)
        self._text("description", max_length=32_000)
        self._text("external_ref", max_length=80)
        self._date("follow_up_on")


# -- support ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateCase(WriteCommand):
    kind = ObjectKind.CASE
    organization_id: str  # the support desk's id of the customer
    subject: str
    body: str  # the first comment
    priority: CasePriority = CasePriority.NORMAL
    external_id: str | None = None

    def __post_init__(self) -> None:
        self._text("organization_id", "subject", "body")
        self._check(
            "priority", lambda v: isinstance(v, CasePriority), "a CasePriority", required=True
        )
        self._optional_text("external_id")


@dataclass(frozen=True, slots=True, kw_only=True)
class EscalateCase(WriteCommand):
    """Raise a case to ``priority`` and say why in an internal note, ``reason``."""

    kind = ObjectKind.CASE
    case_id: str
    priority: CasePriority  # HIGH or URGENT: a lower priority is no escalation
    reason: str

    def __post_init__(self) -> None:
        self._text("case_id", "reason")
        self._check(
            "priority",
            lambda v: isinstance(v, CasePriority) and v in (CasePriority.HIGH, CasePriority.URGENT),
            "CasePriority.HIGH or CasePriority.URGENT",
            required=True,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CommentOnCase(WriteCommand):
    kind = ObjectKind.CASE
    case_id: str
    body: str
    public: bool = False

    def __post_init__(self) -> None:
        self._text("case_id", "body")
        self._check("public", lambda v: isinstance(v, bool), "true or false", required=True)
