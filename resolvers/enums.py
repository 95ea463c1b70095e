"""The canonical model's closed vocabularies as GraphQL enums, derived once: registering a
model enum with strawberry makes that very enum a GraphQL type, so resolvers annotate
fields with the model's own enums and nothing is declared twice. Resolvers import them
from here, which registers them before any type uses them."""

from __future__ import annotations

import strawberry

from connectors.commands import Proration
from connectors.models import (
    CasePriority,
    CaseStatus,
    CreditStatus,
    ExceptionKind,
    ExceptionSeverity,
    ExceptionStatus,
    InvoiceStatus,
    PlanInterval,
    PostingState,
    PostingType,
    SubscriptionStatus,
    SystemName,
)
from connectors.resilience import BreakerState
from gateway.rules.credit_policy import CreditPeriod
from gateway.rules.matching import PostingMatch

for vocabulary in (
    BreakerState,
    CasePriority,
    CaseStatus,
    CreditPeriod,
    CreditStatus,
    ExceptionKind,
    ExceptionSeverity,
    ExceptionStatus,
    InvoiceStatus,
    PlanInterval,
    PostingMatch,
    PostingState,
    Proration,
    SubscriptionStatus,
    SystemName,
):
    strawberry.enum(vocabulary)
# The model's name reads as a type of posting; in GraphQL it is the posting's ``kind``.
strawberry.enum(PostingType, name="PostingKind")

__all__ = [
    "BreakerState",
    "CasePriority",
    "CaseStatus",
    "CreditPeriod",
    "CreditStatus",
    "ExceptionKind",
    "ExceptionSeverity",
    "ExceptionStatus",
    "InvoiceStatus",
    "PlanInterval",
    "PostingKind",
    "PostingMatch",
    "PostingState",
    "Proration",
    "SubscriptionStatus",
    "SystemName",
]
PostingKind = PostingType
