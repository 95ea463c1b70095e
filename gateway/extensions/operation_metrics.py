"""Counts and times every operation the schema runs (``gateway.telemetry.metrics``): by
its bounded ``operation`` label and its type, with each ``extensions.code`` its answer
carries. The schema's first extension, so it sees the errors as they leave (coded), and
the refusals the other extensions raise (a limit, an unresolvable operation).

Requests refused before the schema reads them (not JSON, a persisted query not found) are
counted by ``gateway.graphql_view``, which raises strawberry's own three refusals below to
it, so none is counted twice. A subscription is counted when it ends, and not timed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from gateway.extensions.error_codes import coded
from gateway.telemetry.metrics import NO_TYPE, Metrics, operation_label

# Raised to the HTTP view, which answers them as refusals and counts them.
_THE_VIEWS = (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError)


class OperationMetrics(SchemaExtension):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        except _THE_VIEWS:
            raise
        except Exception as refused:
            error = refused if isinstance(refused, GraphQLError) else None
            self._count(started, error or GraphQLError(str(refused), original_error=refused))
            raise
        else:
            self._count(started, None)

    def _count(self, started: float, raised: GraphQLError | None) -> None:
        context = self.execution_context
        try:
            type_ = context.operation_type.value
        except RuntimeError:  # no document, or no operation of the name asked for
            type_ = NO_TYPE
        errors = list(context.result.errors or []) if context.result is not None else []
        if raised is not None:
            errors.append(raised)
        codes = [str((coded(e).extensions or {}).get("code")) for e in errors]
        subscription = type_ == OperationType.SUBSCRIPTION.value
        self.metrics.graphql_request(
            operation_label(context.query, context.operation_name, self.metrics.registered),
            type_,
            None if subscription else time.perf_counter() - started,
            codes,
        )
