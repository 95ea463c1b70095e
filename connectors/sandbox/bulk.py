"""The reconciliation benchmark's world: ``BenchWorld(invoices=N, seed=S)``, the same for the
same arguments, as canonical records made one at a time from their position, so that neither
a sandbox nor the benchmark ever holds the whole of it.

``N`` billing invoices over ``PERIODS`` monthly periods from ``FIRST``, billed to
``N // INVOICES_PER_CUSTOMER`` customers spread over the four legal entities of
``seed.ENTITIES`` (customer ``c`` bills in the ``c % 4``-th currency), each invoice posted to
the ERP once. In each whole block of ``EVERY`` invoices one, chosen by the seed, carries a
planted discrepancy, the block's number choosing its kind from ``KINDS`` in turn: every
kind the reconciler finds on the invoice ledger, evenly. ``planted()`` answers what a run
over ``scope()`` must find, (kind, key), computed from the seed.

Positions: invoice ``n`` is billing's ``n``-th invoice (in issue order) and the ERP's
``n``-th posting; the postings after the ``N``-th are the planted extras (duplicates and
orphans), in block order. Ids carry their position (``in_b<seed>x<n>``), so that a sandbox
finds a document from its id without an index.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import NamedTuple

from connectors.models import (
    CustomerRecord,
    ExceptionKind,
    Invoice,
    InvoiceStatus,
    Posting,
    PostingState,
    PostingType,
    SystemName,
)
from connectors.money import Money, exponent
from connectors.sandbox.seed import ENTITIES, PLANS

FIRST = date(2026, 9, 1)  # the first period's first day
PERIODS = 3
EVERY = 100  # one invoice in each block of this many carries a discrepancy: 1%
INVOICES_PER_CUSTOMER = 20
# Where ERP ids start: above the demo world's (customers 1001.., postings 5000.., and the
# transactions the sandbox numbers from 9001).
ERP_CUSTOMERS_FROM = 100_000
POSTINGS_FROM = 1_000_000
# What a planted discrepancy is, in the reconciler's words, in the order blocks take them.
KINDS = (
    ExceptionKind.MISSING_IN_TARGET,  # the posting deleted
    ExceptionKind.DUPLICATE_IN_TARGET,  # posted twice
    ExceptionKind.AMOUNT_MISMATCH,  # one major unit more
    ExceptionKind.TAX_MISMATCH,  # seven hundredths (seven units of JPY) more tax
    ExceptionKind.CURRENCY_MISMATCH,  # posted in the next entity's currency
    ExceptionKind.PERIOD_MISMATCH,  # posted on the first of the next month
    ExceptionKind.ORPHAN_IN_TARGET,  # a posting of an invoice billing never issued
)
_EXTRAS = (ExceptionKind.DUPLICATE_IN_TARGET, ExceptionKind.ORPHAN_IN_TARGET)
_CURRENCIES = tuple(ENTITIES)
_PRICES = tuple(prices for *_, prices in PLANS.values())
_MASK = (1 << 64) - 1


def _mix(seed: int, n: int) -> int:
    """A well-spread 64-bit number for (seed, n): splitmix64's finaliser."""
    z = (seed * 0x9E3779B97F4A7C15 + n * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _month(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _seconds(day: date) -> int:
    """Midnight UTC of ``day`` in Unix seconds."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class _Period(NamedTuple):
    first: int  # its first invoice's position
    invoices: int  # how many it has
    start: int  # its first day, Unix seconds
    end: int  # the next period's first day


class InvoiceFacts(NamedTuple):
    """Billing's ``n``-th invoice in plain values, times in Unix seconds: what
    ``BenchWorld.invoice`` makes an ``Invoice`` of, and what the billing sandbox makes its
    documents of without the model (a million of them a run; the model's objects, and the
    Unix times taken back from its datetimes, were most of the cost of each)."""

    id: str
    customer_id: str
    number: str
    status: InvoiceStatus
    currency: str
    subtotal: int  # minor units
    tax: int  # minor units
    issued: int  # made and finalised
    period: tuple[int, int]  # [start, end)


@dataclass(frozen=True)
class BenchCustomer:
    id: str  # opsgraph's
    name: str
    currency: str
    legal_entity: str
    billing_id: str
    erp_id: str


@dataclass(frozen=True)
class BenchWorld:
    invoices: int
    seed: int = 1
    _victims: dict[int, ExceptionKind] = field(init=False, repr=False, compare=False)
    _extras: list[tuple[int, ExceptionKind]] = field(init=False, repr=False, compare=False)
    _periods: tuple[_Period, ...] = field(init=False, repr=False, compare=False)
    _invoice_prefix: str = field(init=False, repr=False, compare=False)
    _customer_prefix: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.invoices < 1 or self.seed < 0:
            raise ValueError("a bench world has at least one invoice and a seed of 0 or more")
        victims = {
            block * EVERY + _mix(self.seed, -1 - block) % EVERY: KINDS[block % len(KINDS)]
            for block in range(self.invoices // EVERY)
        }
        extras = [(n, kind) for n, kind in victims.items() if kind in _EXTRAS]
        starts = [_seconds(_month(FIRST, k)) for k in range(PERIODS + 1)]
        firsts = [-(-k * self.invoices // PERIODS) for k in range(PERIODS + 1)]
        periods = tuple(
            _Period(firsts[k], firsts[k + 1] - firsts[k], starts[k], starts[k + 1])
            for k in range(PERIODS)
        )
        object.__setattr__(self, "_victims", victims)
        object.__setattr__(self, "_extras", extras)
        object.__setattr__(self, "_periods", periods)
        object.__setattr__(self, "_invoice_prefix", f"in_b{self.seed}x")
        object.__setattr__(self, "_customer_prefix", f"cus_b{self.seed}x")

    # -- sizes and ids -----------------------------------------------------------------------

    @property
    def customers(self) -> int:
        return max(1, self.invoices // INVOICES_PER_CUSTOMER)

    @property
    def postings(self) -> int:
        """Positions on the ERP's side (the missing ones included: nothing is there)."""
        return self.invoices + len(self._extras)

    @property
    def posted(self) -> int:
        """Postings the ERP holds: one per invoice but the missing ones, and the extras."""
        missing = sum(k is ExceptionKind.MISSING_IN_TARGET for k in self._victims.values())
        return self.postings - missing

    @property
    def window(self) -> tuple[date, date]:
        """The periods the invoices are issued in: [first day, day after the last)."""
        return FIRST, _month(FIRST, PERIODS)

    def invoice_id(self, n: int) -> str:
        return f"{self._invoice_prefix}{n:08d}"

    def _orphan_id(self, n: int) -> str:
        return f"in_b{self.seed}o{n:08d}"  # no invoice's: another prefix

    def _position(self, id_: str, prefix: str, count: int) -> int | None:
        digits = id_[len(prefix) :]
        if not id_.startswith(prefix) or not digits.isdigit():
            return None
        n = int(digits)
        return n if n < count else None

    def invoice_position(self, id_: str) -> int | None:
        return self._position(id_, self._invoice_prefix, self.invoices)

    def billing_customer_position(self, id_: str) -> int | None:
        return self._position(id_, self._customer_prefix, self.customers)

    def erp_customer_position(self, id_: str) -> int | None:
        n = int(id_) - ERP_CUSTOMERS_FROM if id_.isdigit() else -1
        return n if 0 <= n < self.customers else None

    def posting_position(self, id_: str) -> int | None:
        n = int(id_) - POSTINGS_FROM if id_.isdigit() else -1
        return n if 0 <= n < self.postings else None

    # -- records -----------------------------------------------------------------------------

    def customer(self, c: int) -> BenchCustomer:
        currency = _CURRENCIES[c % len(_CURRENCIES)]
        return BenchCustomer(
            id=f"cust_b{c:07d}",
            name=f"Bench Customer {c}",
            currency=currency,
            legal_entity=ENTITIES[currency][0],
            billing_id=f"{self._customer_prefix}{c:07d}",
            erp_id=str(ERP_CUSTOMERS_FROM + c),
        )

    def each_customer(self) -> Iterator[BenchCustomer]:
        return (self.customer(c) for c in range(self.customers))

    def customer_record(self, system: SystemName, c: int) -> CustomerRecord:
        """Customer ``c`` as ``system`` (billing or the ERP) holds it."""
        customer = self.customer(c)
        erp = system is SystemName.ERP
        return CustomerRecord(
            system=system,
            id=customer.erp_id if erp else customer.billing_id,
            name=customer.name,
            ref=customer.id,
            email=f"billing@bench{c}.example",
            currency=customer.currency,
            legal_entity=customer.legal_entity if erp else None,
        )

    def invoice_facts(self, n: int) -> InvoiceFacts:
        """Billing's ``n``-th invoice: issued in the period its position falls in, spread
        over the period's first 27 days from 09:00; paid, but for the last period's (open)."""
        k = n * PERIODS // self.invoices
        period = self._periods[k]
        issued = period.start + 9 * 3600 + (n - period.first) * 27 * 86400 // period.invoices
        c = n % self.customers
        currency = _CURRENCIES[c % len(_CURRENCIES)]
        mixed = _mix(self.seed, n)
        subtotal = _PRICES[mixed % len(_PRICES)][currency] * (1 + mixed // 7 % 12)
        return InvoiceFacts(
            self.invoice_id(n),
            f"{self._customer_prefix}{c:07d}",
            f"B{self.seed}-{n:08d}",
            InvoiceStatus.PAID if k < PERIODS - 1 else InvoiceStatus.OPEN,
            currency,
            subtotal,
            subtotal * ENTITIES[currency][1] // 10000,
            issued,
            (period.start, period.end),
        )

    def invoice(self, n: int) -> Invoice:
        """Billing's ``n``-th invoice (``invoice_facts``) as the model holds it."""
        facts = self.invoice_facts(n)
        issued, currency = _utc(facts.issued), facts.currency
        return Invoice(
            system=SystemName.BILLING,
            id=facts.id,
            customer_id=facts.customer_id,
            number=facts.number,
            status=facts.status,
            subtotal=Money(facts.subtotal, currency),
            tax=Money(facts.tax, currency),
            total=Money(facts.subtotal + facts.tax, currency),
            issued_at=issued,
            finalized_at=issued,
            period_start=_utc(facts.period[0]),
            period_end=_utc(facts.period[1]),
        )

    def posting(self, p: int) -> Posting | None:
        """The ERP's posting at position ``p``: invoice ``p``'s as planted (None where it
        is missing), or past the invoices a planted duplicate or orphan."""
        if p >= self.invoices:
            n, extra = self._extras[p - self.invoices]
            posted = self._posted(n)
            if extra is ExceptionKind.ORPHAN_IN_TARGET:
                return replace(posted, id=str(POSTINGS_FROM + p), external_id=self._orphan_id(n))
            return replace(posted, id=str(POSTINGS_FROM + p))
        kind = self._victims.get(p)
        posted = self._posted(p)
        if kind is ExceptionKind.MISSING_IN_TARGET:
            return None
        if kind is ExceptionKind.AMOUNT_MISMATCH:
            one = Money(10 ** exponent(posted.amount.currency), posted.amount.currency)
            return replace(posted, amount=posted.amount + one)
        if kind is ExceptionKind.TAX_MISMATCH:
            currency = posted.tax.currency
            more = Money(7 * 10 ** max(0, exponent(currency) - 1), currency)
            return replace(posted, tax=posted.tax + more)
        if kind is ExceptionKind.CURRENCY_MISMATCH:
            other = _CURRENCIES[(_CURRENCIES.index(posted.amount.currency) + 1) % 4]
            amount, tax = posted.amount.amount_minor, posted.tax.amount_minor
            return replace(posted, amount=Money(amount, other), tax=Money(tax, other))
        if kind is ExceptionKind.PERIOD_MISMATCH:
            return replace(posted, tran_date=_month(posted.tran_date, 1))
        return posted

    def _posted(self, n: int) -> Posting:
        """Invoice ``n`` posted as it was billed, on the day it was issued."""
        invoice = self.invoice_facts(n)
        c = n % self.customers
        return Posting(
            system=SystemName.ERP,
            id=str(POSTINGS_FROM + n),
            type=PostingType.INVOICE,
            customer_id=str(ERP_CUSTOMERS_FROM + c),
            external_id=invoice.id,
            subsidiary=ENTITIES[invoice.currency][0],
            amount=Money(invoice.subtotal, invoice.currency),
            tax=Money(invoice.tax, invoice.currency),
            tran_date=_utc(invoice.issued).date(),
            status=PostingState.PAID_IN_FULL
            if invoice.status is InvoiceStatus.PAID
            else PostingState.OPEN,
            memo=invoice.number,
        )

    # -- what a run must find ----------------------------------------------------------------

    def planted(self) -> Iterator[tuple[ExceptionKind, str]]:
        """(kind, key) of every planted discrepancy: the key is the invoice's id, or for an
        orphan the id its posting carries."""
        for n, kind in self._victims.items():
            key = self._orphan_id(n) if kind is ExceptionKind.ORPHAN_IN_TARGET else None
            yield kind, key or self.invoice_id(n)
