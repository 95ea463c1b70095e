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
from datetime import UTC, date, datetime, timedelta

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


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


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
    _periods: tuple[tuple[datetime, datetime], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.invoices < 1 or self.seed < 0:
            raise ValueError("a bench world has at least one invoice and a seed of 0 or more")
        victims = {
            block * EVERY + _mix(self.seed, -1 - block) % EVERY: KINDS[block % len(KINDS)]
            for block in range(self.invoices // EVERY)
        }
        extras = [(n, kind) for n, kind in victims.items() if kind in _EXTRAS]
        starts = [_at(_month(FIRST, k)) for k in range(PERIODS + 1)]
        periods = tuple(zip(starts, starts[1:], strict=False))
        object.__setattr__(self, "_victims", victims)
        object.__setattr__(self, "_extras", extras)
        object.__setattr__(self, "_periods", periods)

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

    def _prefix(self, kind: str) -> str:
        return f"{kind}_b{self.seed}x"

    def invoice_id(self, n: int) -> str:
        return f"{self._prefix('in')}{n:08d}"

    def _orphan_id(self, n: int) -> str:
        return f"in_b{self.seed}o{n:08d}"  # no invoice's: another prefix

    def _position(self, id_: str, prefix: str, count: int) -> int | None:
        digits = id_[len(prefix) :]
        if not id_.startswith(prefix) or not digits.isdigit():
            return None
        n = int(digits)
        return n if n < count else None

    def invoice_position(self, id_: str) -> int | None:
        return self._position(id_, self._prefix("in"), self.invoices)

    def billing_customer_position(self, id_: str) -> int | None:
        return self._position(id_, self._prefix("cus"), self.customers)

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
            billing_id=f"{self._prefix('cus')}{c:07d}",
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

    def invoice(self, n: int) -> Invoice:
        """Billing's ``n``-th invoice: issued in the period its position falls in, spread
        over the period's first 27 days; paid, but for the last period's (open)."""
        k = n * PERIODS // self.invoices
        first = -(-k * self.invoices // PERIODS)  # the period's first position
        count = -(-(k + 1) * self.invoices // PERIODS) - first
        start, end = self._periods[k]
        issued = start + timedelta(hours=9, seconds=(n - first) * 27 * 86400 // count)
        c = n % self.customers
        currency = _CURRENCIES[c % len(_CURRENCIES)]
        mixed = _mix(self.seed, n)
        subtotal = _PRICES[mixed % len(_PRICES)][currency] * (1 + mixed // 7 % 12)
        tax = subtotal * ENTITIES[currency][1] // 10000
        return Invoice(
            system=SystemName.BILLING,
            id=self.invoice_id(n),
            customer_id=f"{self._prefix('cus')}{c:07d}",
            number=f"B{self.seed}-{n:08d}",
            status=InvoiceStatus.PAID if k < PERIODS - 1 else InvoiceStatus.OPEN,
            subtotal=Money(subtotal, currency),
            tax=Money(tax, currency),
            total=Money(subtotal + tax, currency),
            issued_at=issued,
            finalized_at=issued,
            period_start=start,
            period_end=end,
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
        invoice = self.invoice(n)
        c = n % self.customers
        return Posting(
            system=SystemName.ERP,
            id=str(POSTINGS_FROM + n),
            type=PostingType.INVOICE,
            customer_id=str(ERP_CUSTOMERS_FROM + c),
            external_id=invoice.id,
            subsidiary=ENTITIES[invoice.subtotal.currency][0],
            amount=invoice.subtotal,
            tax=invoice.tax,
            tran_date=invoice.issued_at.date(),
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
