"""How a billing invoice and its ERP postings compare, on business outcomes. The customer
360 shows it per invoice; reconciliation ranks it across the book."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from connectors.models import Invoice, Posting, PostingType


class PostingMatch(StrEnum):
    """How an invoice's ERP postings compare with it (``Invoice.postingStatus``). Not the
    posting's own state in the ERP (``models.PostingState``)."""

    POSTED = "posted"  # exactly one posting, same amount, tax and period
    MISSING = "missing"  # billed but never posted
    DUPLICATE = "duplicate"  # posted more than once
    MISMATCH = "mismatch"  # amount, tax or currency differ
    MISDATED = "misdated"  # posted in another accounting period


def postings_for(invoice: Invoice, postings: Sequence[Posting]) -> list[Posting]:
    return [p for p in postings if p.type is PostingType.INVOICE and p.external_id == invoice.id]


def match(invoice: Invoice, postings: Sequence[Posting]) -> PostingMatch:
    """``postings`` are the ones carrying this invoice's id (``postings_for``)."""
    if not postings:
        return PostingMatch.MISSING
    if len(postings) > 1:
        return PostingMatch.DUPLICATE
    (posting,) = postings
    if posting.amount != invoice.subtotal or posting.tax != invoice.tax:
        return PostingMatch.MISMATCH
    issued = invoice.issued_at.date()
    if (posting.tran_date.year, posting.tran_date.month) != (issued.year, issued.month):
        return PostingMatch.MISDATED
    return PostingMatch.POSTED
