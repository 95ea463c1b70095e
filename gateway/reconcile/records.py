"""The records a reconciliation compares, as it compares them: entries (what each is worth,
and the day it counts from), the keyed rows staged in ``reconciliation_items``, and how the
target's postings are read (by keyset where the connector pages that way, by key)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, NamedTuple

from connectors import paging
from connectors.erp.connector import ErpConnector
from connectors.models import (
    Booked,
    CreditStatus,
    ExceptionKind,
    Invoice,
    ObjectKind,
    Page,
    Posting,
)
from connectors.money import Money
from connectors.resilience import Resilient
from gateway.rules.matching import Entry, Finding
from gateway.storage.tables import CreditRequestRow

TARGET_PAGE = 1000  # SuiteQL's largest page
# Credits that must have a memo: approved by finance, or posted already.
CREDITED = frozenset({CreditStatus.APPROVED.value, CreditStatus.POSTED.value})


class Ledger(StrEnum):
    INVOICE = "invoice"  # billing invoices and the ERP invoices posting them
    CREDIT = "credit"  # approved service credits and the ERP credit memos settling them


@dataclass(frozen=True)
class Item:
    side: str  # source, target
    key: str
    record_id: str
    customer_ref: str
    entry: Entry
    entity: str | None = None  # a posting's subsidiary, known without the crosswalk


def item_of(row: Any) -> Item:
    """A staged record (a row of ``_merged``'s columns) as compared."""
    entry = Entry(
        row.record_id,
        Money(row.amount_minor, row.currency),
        Money(row.tax_minor, row.currency),
        date.fromisoformat(row.day),
    )
    return Item(row.side, row.key, row.record_id, row.customer_ref, entry, row.entity)


def invoice_entry(invoice: Invoice) -> Entry | None:
    """An invoice in the books as compared; None for one the books do not hold."""
    booked = Booked.of_invoice(invoice)
    return entry_of(booked) if booked.live else None


def posting_entry(posting: Posting) -> Entry:
    return entry_of(Booked.of_posting(posting))


def entry_of(booked: Booked) -> Entry:
    money = Money(booked.amount_minor, booked.currency)
    return Entry(booked.id, money, Money(booked.tax_minor, booked.currency), booked.day)


def credit_entry(credit: CreditRequestRow) -> Entry:
    decided = credit.decided_at or credit.created_at
    return Entry(
        credit.id,
        Money(credit.amount_minor, credit.currency),
        Money.zero(credit.currency),
        decided.date(),
    )


def matching(sources: Sequence[Item], targets: Sequence[Item]) -> list[Item]:
    """Of the targets of a key the source holds several records of, those to compare with
    the first: as many extra as the source has extra cancel out; none at all when the
    target holds fewer than the source (its missing postings are reported as missing)."""
    extra = len(sources) - 1
    if len(targets) < len(sources):
        return []
    ordered = sorted(targets, key=lambda t: (len(t.record_id), t.record_id))
    return ordered[: len(ordered) - extra]


async def ledger_pages(erp: Resilient, filters: Mapping[str, str]) -> AsyncIterator[list[Booked]]:
    """The target's postings ``filters`` keep, a page at a time: by keyset where the
    connector pages that way (the ERP's ``booked_after``: each page costs what the first
    does), else by its cursor."""
    inner = erp.inner
    if isinstance(inner, ErpConnector):
        after = 0
        while True:
            page = await erp.run(
                lambda after=after: inner.booked_after(after, TARGET_PAGE, filters),  # type: ignore[misc]
                operation="ledger_page",
                kind=ObjectKind.POSTING,
            )
            yield page
            if len(page) < TARGET_PAGE:
                return
            after = int(page[-1].id)

    def listing(cursor: str | None) -> Awaitable[Page[Booked]]:
        return erp.ledger_page(
            ObjectKind.POSTING, cursor=cursor, limit=TARGET_PAGE, filters=filters
        )

    async for listed in paging.Pages(listing):
        yield listed.items


async def postings_for(erp: Resilient, keys: Sequence[str]) -> list[Posting]:
    """The postings ``erp`` holds of ``keys`` (the invoices or credits they carry)."""
    inner = erp.inner
    if isinstance(inner, ErpConnector):
        return await inner.postings_for(keys)
    found = []
    for key in keys:
        listed = await inner.list_all(ObjectKind.POSTING, filters={"external_id": key})
        found += [p for p in listed if isinstance(p, Posting)]
    return found


def key_of(posting: Posting | Booked) -> str:
    """What a posting carries of its source record; one without is its own key, and an
    orphan."""
    return posting.external_id or f"posting:{posting.id}"


class Staged(NamedTuple):
    """A row of ``reconciliation_items`` as a run writes it, its columns in the table's
    order: what COPY takes as it is."""

    run_id: str
    ledger: str
    side: str
    key: str
    record_id: str
    customer_ref: str
    amount_minor: int
    tax_minor: int
    currency: str
    day: str
    entity: str | None


def staged_row(
    run_id: str,
    ledger: Ledger,
    side: str,
    key: str,
    customer_ref: str,
    entry: Entry,
    entity: str | None = None,
) -> Staged:
    return Staged(
        run_id, ledger.value, side, key, entry.record_id, customer_ref,
        entry.amount.amount_minor, entry.tax.amount_minor, entry.amount.currency,
        entry.day.isoformat(), entity,
    )  # fmt: skip


def staged(
    run_id: str, ledger: Ledger, side: str, key: str, booked: Booked, entity: str | None = None
) -> Staged:
    """``staged_row`` of ``entry_of(booked)``, without making the entry."""
    return Staged(
        run_id, ledger.value, side, key, booked.id, booked.customer_id, booked.amount_minor,
        booked.tax_minor, booked.currency, booked.day.isoformat(), entity,
    )  # fmt: skip


def as_credit(findings: Sequence[Finding], key: str) -> list[Finding]:
    """What differs on a credit is one credit mismatch (one exception per credit), whatever
    its kinds on an invoice: worth the largest of them, saying each."""
    if not findings:
        return []
    said = {
        ExceptionKind.MISSING_IN_TARGET: f"approved credit {key} has no credit memo",
        ExceptionKind.ORPHAN_IN_TARGET: f"credit memo for {key} has no approved credit",
        ExceptionKind.DUPLICATE_IN_TARGET: f"credit {key} has more than one memo",
    }
    details = [f"{said.get(f.kind, f'credit {key}')}: {f.detail}" for f in findings]
    postings = tuple(dict.fromkeys(p for f in findings for p in f.postings))
    worth = max((f.impact for f in findings), key=lambda m: m.amount_minor)
    return [Finding(ExceptionKind.CREDIT_MISMATCH, worth, "; ".join(details), postings)]
