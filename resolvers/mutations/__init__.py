"""Governed writes: every mutation names the object it changes, takes an idempotency key,
and goes through ``gateway.writes.pipeline`` (``common.governed``): the key is claimed for
the principal, the write goes to the system that owns the object, the answer is stored under
the key (a replay is marked in ``extensions.idempotency``) and audited, and the cache
forgets what changed. One module per domain; ``Mutation`` is their union."""

from __future__ import annotations

from strawberry.tools import merge_types

from resolvers.mutations.accounts import AccountMutation
from resolvers.mutations.cases import CaseMutation
from resolvers.mutations.credits import CreditMutation
from resolvers.mutations.crosswalk import CrosswalkMutation
from resolvers.mutations.reconciliation import ReconciliationFixMutation, ReconciliationMutation
from resolvers.mutations.subscriptions import SubscriptionMutation
from resolvers.mutations.workflows import WorkflowMutation

Mutation = merge_types(
    "Mutation",
    (
        CrosswalkMutation,
        AccountMutation,
        CaseMutation,
        SubscriptionMutation,
        CreditMutation,
        WorkflowMutation,
        ReconciliationMutation,
        ReconciliationFixMutation,
    ),
)
