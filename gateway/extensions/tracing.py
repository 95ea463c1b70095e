"""One span per GraphQL operation, current while it runs, so that what its resolvers call
out to (connector attempts, SQL, Redis) are its children: ``query CustomerPage``, with
``graphql.operation.type``, ``graphql.operation.name`` and, when it answers errors, their
codes (``graphql.error.codes``). Never the document or its variables, which may hold
what a client would not have logged.

Not strawberry's ``OpenTelemetryExtension``: that one makes a span per resolver, which on a
customer page of a thousand fields costs more than the answer (DESIGN.md: execution is the
wall). Only in a gateway that traces (``TelemetrySettings.tracing``).
"""

from __future__ import annotations

from collections.abc import Iterator

from opentelemetry import context, trace
from opentelemetry.trace import StatusCode
from strawberry.extensions import SchemaExtension

from gateway.extensions.error_codes import coded
from gateway.telemetry.tracing import tracer

UNKNOWN = "GraphQL operation"  # a request that names no operation it could run


class Tracing(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        span = tracer.start_span(UNKNOWN)
        token = context.attach(trace.set_span_in_context(span))
        try:
            yield
        finally:
            context.detach(token)
            self._describe(span)
            span.end()

    def _describe(self, span: trace.Span) -> None:
        if not span.is_recording():
            return
        execution = self.execution_context
        try:
            kind = execution.operation_type.value
        except Exception:  # noqa: BLE001 - the document did not parse, or names no operation
            kind = None
        name = execution.operation_name
        if kind is not None:
            span.update_name(f"{kind} {name}" if name else kind)
            span.set_attribute("graphql.operation.type", kind)
        if name:
            span.set_attribute("graphql.operation.name", name)
        errors = execution.result.errors if execution.result is not None else None
        errors = errors or execution.pre_execution_errors
        if errors:
            codes = sorted({str((coded(e).extensions or {}).get("code")) for e in errors})
            span.set_attribute("graphql.error.codes", codes)
            span.set_status(StatusCode.ERROR, ", ".join(codes))
