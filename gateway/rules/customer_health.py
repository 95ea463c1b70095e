"""How a customer is doing: the CRM's health score, and the risks opsgraph sees across
systems (open cases with a breached SLA, urgent cases, a renewal coming up)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from connectors.models import Account, Case, CasePriority, CaseStatus

RENEWAL_WINDOW_DAYS = 30
OPEN = {CaseStatus.NEW, CaseStatus.OPEN, CaseStatus.PENDING, CaseStatus.HOLD}


@dataclass(frozen=True)
class CustomerHealth:
    score: int | None  # the CRM's, 0-100
    at_risk: bool
    signals: list[str]


def assess(account: Account | None, cases: Sequence[Case], today: date) -> CustomerHealth:
    signals: list[str] = []
    breached = [c for c in cases if c.sla_breached and c.status in OPEN]
    urgent = [c for c in cases if c.priority is CasePriority.URGENT and c.status in OPEN]
    renewal = account.renewal_date if account is not None else None
    renewing = renewal is not None and 0 <= (renewal - today).days <= RENEWAL_WINDOW_DAYS
    if breached:
        signals.append(f"SLA breached on {len(breached)} open case(s)")
    if urgent:
        signals.append(f"{len(urgent)} urgent case(s) open")
    if renewal is not None and renewing:
        signals.append(f"renews in {(renewal - today).days} days")
    strategic = account is not None and account.strategic
    at_risk = bool(breached) and renewing and strategic
    if at_risk:
        signals.append("strategic account near renewal with a breached SLA")
    return CustomerHealth(
        score=account.health_score if account else None, at_risk=at_risk, signals=signals
    )
