"""Spans of connector calls (OpenTelemetry's API; the gateway decides whether anything
records them): one per attempt that ``connectors.resilience`` makes, ``connector
<system>.<operation>`` with

    connector.system         billing, erp, crm, support
    connector.operation      fetch_many, list_page, ledger_page, fetch_related, write, changes, call
    connector.kind           the object kind asked for, where there is one
    connector.batch_size     the ids asked for in one batched read
    connector.attempt        1 on the first try, 2 on the first retry, ...
    connector.breaker_state  closed, open or half_open as the attempt found it
    error.type               the error's code when the attempt failed (UPSTREAM_TIMEOUT)

The upstream HTTP request's own span (the transport's, ``ConnectorConfig.traced``) is
its child, and carries the trace to the system as a ``traceparent`` header.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace import Span

from connectors.errors import GatewayError
from connectors.models import ObjectKind, SystemName

tracer = trace.get_tracer("connectors")


@contextmanager
def attempt(
    system: SystemName,
    operation: str,
    number: int,
    kind: ObjectKind | None = None,
    batch: int | None = None,
) -> Iterator[Span]:
    span = tracer.start_span(f"connector {system.value}.{operation}")
    if not span.is_recording():
        # Nobody records it (no tracing; sampled out): made current, it would cost more
        # than the rest of this (~6 µs), and its context adds nothing to the current one.
        yield span
        return
    span.set_attribute("connector.system", system.value)
    span.set_attribute("connector.operation", operation)
    span.set_attribute("connector.attempt", number)
    if kind is not None:
        span.set_attribute("connector.kind", kind.value)
    if batch is not None:
        span.set_attribute("connector.batch_size", batch)
    with trace.use_span(span, end_on_exit=True):
        try:
            yield span
        except GatewayError as failed:
            span.set_attribute("error.type", failed.code)
            raise


def breaker_state(state: str) -> None:
    """Notes the breaker's state on the current attempt's span."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute("connector.breaker_state", str(state))
