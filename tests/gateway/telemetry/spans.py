"""Spans recorded in memory, for the tests that assert traces (``spans`` fixture).

OpenTelemetry's global tracer provider is set once per process, so the first test that
listens sets one (or uses the one there) and gives it an in-memory exporter; the gateways
the tests build keep it (``gateway.telemetry.tracing.configure``). Its sampler records
only while a test listens: the tests after it pay for no spans.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes


class _Listening(Sampler):
    def __init__(self) -> None:
        self.on = False
        self._inner = ParentBased(ALWAYS_ON)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if not self.on:
            return SamplingResult(Decision.DROP)
        return self._inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return "ListeningSampler"


_SAMPLER = _Listening()
_EXPORTER = InMemorySpanExporter()
_installed: list[TracerProvider] = []


def _install() -> None:
    if _installed:
        return
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(sampler=_SAMPLER)
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    _installed.append(provider)


class Spans:
    """The spans finished while the test listens."""

    def all(self) -> list[ReadableSpan]:
        return list(_EXPORTER.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.all() if s.name == name]

    def starting(self, prefix: str) -> list[ReadableSpan]:
        return [s for s in self.all() if s.name.startswith(prefix)]

    def wait(self, found: Callable[[Spans], object], within_s: float = 10) -> None:
        """Until ``found(self)`` is true: a server span ends after its answer is sent, and
        background work after the request."""
        deadline = time.monotonic() + within_s
        while not found(self):
            if time.monotonic() > deadline:
                names = sorted({s.name for s in self.all()})
                raise AssertionError(f"spans never came; finished: {names}")
            time.sleep(0.02)

    def parent(self, span: ReadableSpan) -> ReadableSpan | None:
        if span.parent is None:
            return None
        by_id = {s.context.span_id: s for s in self.all()}
        return by_id.get(span.parent.span_id)

    def ancestors(self, span: ReadableSpan) -> list[str]:
        """The names of ``span``'s parent, its parent's, ... as far as they were recorded."""
        names = []
        parent = self.parent(span)
        while parent is not None:
            names.append(parent.name)
            parent = self.parent(parent)
        return names

    def clear(self) -> None:
        _EXPORTER.clear()


@pytest.fixture
def spans() -> Iterator[Spans]:
    _install()
    _EXPORTER.clear()
    _SAMPLER.on = True
    try:
        yield Spans()
    finally:
        _SAMPLER.on = False
        _EXPORTER.clear()
