from __future__ import annotations

from datetime import date

import strawberry

from connectors.models import Case
from resolvers.account import AccountType

RENEWAL_WINDOW_DAYS = 30
OPEN = {"new", "open", "pending", "hold"}


@strawberry.type(description="How the customer is doing: the CRM score and risk signals.")
class CustomerHealth:
    score: int | None = strawberry.field(description="The CRM health score (0-100).")
    at_risk: bool
    signals: list[str]


def assess(account: AccountType | None, cases: list[Case], today: date) -> CustomerHealth:
    signals: list[str] = []
    breached = [c for c in cases if c.sla_breached and c.status in OPEN]
    urgent = [c for c in cases if c.priority == "urgent" and c.status in OPEN]
    renewing = (
        account is not None
        and account.renewal_date is not None
        and 0 <= (account.renewal_date - today).days <= RENEWAL_WINDOW_DAYS
    )
    if breached:
        signals.append(f"SLA breached on {len(breached)} open case(s)")
    if urgent:
        signals.append(f"{len(urgent)} urgent case(s) open")
    if renewing and account is not None and account.renewal_date is not None:
        days = (account.renewal_date - today).days
        signals.append(f"renews in {days} days")
    strategic = account is not None and account.strategic
    at_risk = bool(breached) and renewing and strategic
    if at_risk:
        signals.append("strategic account near renewal with a breached SLA")
    return CustomerHealth(
        score=account.health_score if account else None, at_risk=at_risk, signals=signals
    )
