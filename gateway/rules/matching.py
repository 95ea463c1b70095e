"""How a billing invoice and its ERP postings compare, on business outcomes. The customer
360 shows it per invoice; reconciliation ranks it across the book."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from connectors.models import ExceptionKind, Invoice, Posting, PostingState, PostingType
from connectors.money import Money


class PostingMatch(StrEnum):
    """How an invoice's ERP postings compare with it (``Invoice.postingStatus``). Not the
    posting's own state in the ERP (``models.PostingState``)."""

    POSTED = "posted"  # exactly one posting, same amount, tax and period
    MISSING = "missing"  # billed but never posted
    DUPLICATE = "duplicate"  # posted more than once
    MISMATCH = "mismatch"  # amount, tax or currency differ
    MISDATED = "misdated"  # posted in another accounting period


def postings_for(invoice: Invoice, postings: Sequence[Posting]) -> list[Posting]:
    """The postings of ``invoice``: invoices carrying its id, not voided (a voided duplicate
    stays in the ledger at zero, undone)."""
    return [
        p
        for p in postings
        if p.type is PostingType.INVOICE
        and p.external_id == invoice.id
        and p.status is not PostingState.VOIDED
    ]


def match(invoice: Invoice, postings: Sequence[Posting]) -> PostingMatch:
    """``postings`` are the ones carrying this invoice's id (``postings_for``)."""
    if not postings:
        return PostingMatch.MISSING
    if len(postings) > 1:
        return PostingMatch.DUPLICATE
    (posting,) = postings
    if posting.amount != invoice.subtotal or posting.tax != invoice.tax:
        return PostingMatch.MISMATCH
    booked = invoice.booked_on
    if (posting.tran_date.year, posting.tran_date.month) != (booked.year, booked.month):
        return PostingMatch.MISDATED
    return PostingMatch.POSTED


@dataclass(frozen=True, slots=True)
class Entry:
    """An invoice, a posting, a credit or a credit memo as reconciliation compares it: what
    it is worth net of tax, its tax, and the day it counts from (issued, or posted)."""

    record_id: str
    amount: Money
    tax: Money
    day: date

    @property
    def total(self) -> Money:
        return self.amount + self.tax


@dataclass(frozen=True, slots=True)
class Finding:
    kind: ExceptionKind
    impact: Money  # what the difference is worth, in the currency it is in
    detail: str
    postings: tuple[str, ...]  # the target records involved


def discrepancies(source: Entry | None, targets: Sequence[Entry]) -> list[Finding]:
    """Every way ``targets`` (the target system's records carrying one key) fail to post
    ``source`` (the source system's record with that key) exactly once, for the same amount,
    tax and currency, in the same accounting period. The first target (lowest id) is taken
    as the posting and compared; the others are its duplicates."""
    ordered = sorted(targets, key=lambda t: (len(t.record_id), t.record_id))
    ids = tuple(t.record_id for t in ordered)
    if source is None:
        if not ordered:
            return []
        worth = _sum([t.total for t in ordered])
        return [Finding(ExceptionKind.ORPHAN_IN_TARGET, worth, _orphaned(ordered), ids)]
    if not ordered:
        return [
            Finding(
                ExceptionKind.MISSING_IN_TARGET,
                source.total,
                f"{source.record_id} ({source.total}, {source.day:%Y-%m}) has no posting",
                (),
            )
        ]
    found: list[Finding] = []
    posting, *duplicates = ordered
    if duplicates:
        extra = _sum([d.total for d in duplicates])
        found.append(
            Finding(
                ExceptionKind.DUPLICATE_IN_TARGET,
                extra,
                f"{source.record_id} is posted {len(ordered)} times "
                f"({', '.join(ids)}); {extra} too much",
                ids,
            )
        )
    if posting.amount.currency != source.amount.currency:
        found.append(
            Finding(
                ExceptionKind.CURRENCY_MISMATCH,
                source.total,
                f"posted in {posting.amount.currency}, billed in {source.amount.currency}",
                (posting.record_id,),
            )
        )
    else:
        if posting.amount != source.amount:
            found.append(
                Finding(
                    ExceptionKind.AMOUNT_MISMATCH,
                    _difference(posting.amount, source.amount),
                    f"posted {posting.amount}, billed {source.amount}",
                    (posting.record_id,),
                )
            )
        if posting.tax != source.tax:
            found.append(
                Finding(
                    ExceptionKind.TAX_MISMATCH,
                    _difference(posting.tax, source.tax),
                    f"tax posted {posting.tax}, billed {source.tax}",
                    (posting.record_id,),
                )
            )
    if (posting.day.year, posting.day.month) != (source.day.year, source.day.month):
        found.append(
            Finding(
                ExceptionKind.PERIOD_MISMATCH,
                source.total,
                f"posted in {posting.day:%Y-%m}, issued in {source.day:%Y-%m}",
                (posting.record_id,),
            )
        )
    return found


def _orphaned(targets: Sequence[Entry]) -> str:
    names = ", ".join(f"{t.record_id} ({t.total}, {t.day:%Y-%m})" for t in targets)
    return f"posted with no such record in the source: {names}"


def _difference(a: Money, b: Money) -> Money:
    diff = a - b
    return -diff if diff.amount_minor < 0 else diff


def _sum(amounts: Sequence[Money]) -> Money:
    """The amounts in the first one's currency (a key's postings in two currencies are a
    currency mismatch, reported as such; what they are worth is the first's)."""
    first = amounts[0]
    total = Money.zero(first.currency)
    for amount in amounts:
        if amount.currency == first.currency:
            total += amount
    return total
