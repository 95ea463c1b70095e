"""Scopes say what may be read or done; roles are named bundles of scopes. A token may carry
roles (``roles`` claim) or scopes (``scope`` claim), an API key carries scopes."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    CUSTOMERS_READ = "customers:read"  # customers, their ids, CRM accounts, health
    BILLING_READ = "billing:read"  # subscriptions, plans, entitlements, invoices
    FINANCE_READ = "finance:read"  # receivable balances, ERP postings, posting status
    CASES_READ = "cases:read"  # support cases
    CASES_WRITE = "cases:write"  # escalate a case
    ACCOUNTS_WRITE = "accounts:write"  # a CRM account's health
    SUBSCRIPTIONS_WRITE = "subscriptions:write"  # change a plan, cancel
    CREDITS_READ = "credits:read"
    CREDITS_REQUEST = "credits:request"
    CREDITS_APPROVE = "credits:approve"
    RECONCILIATION_READ = "reconciliation:read"
    RECONCILIATION_RESOLVE = "reconciliation:resolve"  # acknowledge, resolve, repost, void
    RECONCILIATION_RUN = "reconciliation:run"  # start a reconciliation run
    SYSTEMS_READ = "systems:read"  # connector health and breakers
    EVENTS_REPLAY = "events:replay"
    CROSSWALK_WRITE = "crosswalk:write"  # link and unlink external ids
    WORKFLOWS_OPERATE = "workflows:operate"  # retry or cancel a parked workflow run
    AUDIT_READ = "audit:read"  # the audit log
    SCHEMA_READ = "schema:read"  # introspection and _service in production


class Role(StrEnum):
    VIEWER = "viewer"
    SUPPORT_AGENT = "support_agent"
    SUPPORT_LEAD = "support_lead"
    FINANCE_APPROVER = "finance_approver"
    INTEGRATION_ADMIN = "integration_admin"


_READ_ALL = {
    Scope.CUSTOMERS_READ,
    Scope.BILLING_READ,
    Scope.FINANCE_READ,
    Scope.CASES_READ,
    Scope.CREDITS_READ,
    Scope.RECONCILIATION_READ,
    Scope.SYSTEMS_READ,
}
_SUPPORT = {Scope.CUSTOMERS_READ, Scope.BILLING_READ, Scope.CASES_READ, Scope.CREDITS_READ}

ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    # Dashboards and analysts: every view, no action.
    Role.VIEWER: frozenset(_READ_ALL),
    # Entitlements and cases, not receivable balances or postings.
    Role.SUPPORT_AGENT: frozenset(_SUPPORT | {Scope.CASES_WRITE}),
    Role.SUPPORT_LEAD: frozenset(
        _SUPPORT | {Scope.CASES_WRITE, Scope.CREDITS_REQUEST, Scope.ACCOUNTS_WRITE}
    ),
    # Finance runs billing too: plan changes and cancellations.
    Role.FINANCE_APPROVER: frozenset(
        _READ_ALL
        | {
            Scope.CREDITS_APPROVE,
            Scope.RECONCILIATION_RESOLVE,
            Scope.RECONCILIATION_RUN,
            Scope.SUBSCRIPTIONS_WRITE,
            Scope.WORKFLOWS_OPERATE,
            Scope.AUDIT_READ,
        }
    ),
    Role.INTEGRATION_ADMIN: frozenset(
        _READ_ALL
        | {
            Scope.EVENTS_REPLAY,
            Scope.RECONCILIATION_RUN,
            Scope.CROSSWALK_WRITE,
            Scope.SCHEMA_READ,
            Scope.WORKFLOWS_OPERATE,
            Scope.AUDIT_READ,
        }
    ),
}


def needs(*scopes: Scope) -> list[list[str]]:
    """The ``scopes`` argument of Apollo's ``@requiresScopes`` for a field or type that needs
    every one of ``scopes`` (the outer list holds alternatives, each inner list is all-of)."""
    return [[scope.value for scope in scopes]]
