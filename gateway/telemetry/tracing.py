"""Traces: OpenTelemetry, configured from ``TelemetrySettings``.

opsgraph's own spans use the API's global tracer (``tracer``): the GraphQL operation
(``gateway.extensions.tracing``), each connector attempt (``connectors.resilience``), each
workflow step, each event routed and each notification delivered. The instrumentations
make the rest, and only for a gateway that traces: the HTTP server span
(``trace_server``), SQL statements (``trace_engine``), Redis commands
(``trace_redis``) and the upstream HTTP requests, which carry the W3C ``traceparent``
header to the systems of record (the connectors' transport, ``ConnectorConfig.traced``).
A gateway that does not trace adds none of them; its own spans are the API's no-op ones.

The tracer provider is the process's: OpenTelemetry sets the global provider once and
never replaces it. ``configure`` makes it (with the settings' service name and sampler) if
nobody did, or keeps the one there, which is how a test installs its own with an
in-memory exporter before it builds an app.

What happens later in another task or process joins the trace of what caused it through
a stored ``traceparent`` (``current_traceparent``, ``continued``): an outbox row keeps the
one of the transaction that wrote it, and a canonical event the one of the request that
delivered it (the CloudEvents distributed tracing extension).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, Span, SpanKind, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes, AttributeValue
from starlette.routing import Match
from starlette.types import Scope

from gateway.settings import TelemetrySettings

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine
    from starlette.applications import Starlette

# The instrumentations and the exporter are imported where they are used: a gateway that
# does not trace never loads them.

tracer = trace.get_tracer("opsgraph")
TRACEPARENT = "traceparent"
# Probes and scrapes would be most of the traces and say nothing.
UNTRACED_PATHS = "/healthz,/readyz,/metrics"

_W3C = TraceContextTextMapPropagator()
# The OTLP endpoints this process exports to already (an app built twice adds none again).
_exporting: set[str] = set()


def configure(telemetry: TelemetrySettings) -> TracerProvider | None:
    """The process's tracer provider, when ``telemetry`` traces; None when it does not."""
    if not telemetry.tracing:
        return None
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(
            resource=Resource.create({SERVICE_NAME: telemetry.service_name}),
            sampler=ParentBased(NoLoneClients(TraceIdRatioBased(telemetry.sample_ratio))),
        )
        trace.set_tracer_provider(provider)
    if telemetry.otlp_endpoint is not None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        endpoint = str(telemetry.otlp_endpoint).rstrip("/")
        if not endpoint.endswith("/v1/traces"):
            endpoint += "/v1/traces"
        if endpoint not in _exporting:
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
            _exporting.add(endpoint)
    return provider


class NoLoneClients(Sampler):
    """``sampler``'s decision for a new trace, but none for a client span that would start
    one: a SQL statement, a Redis command or a health probe with nothing around it is a
    background loop's poll (the relay's, every second), which would be most of the traces
    and say nothing. Work that matters in the background starts a span of its own first
    (an event, a workflow step, a notification, a change feed's poll)."""

    def __init__(self, sampler: Sampler) -> None:
        self._sampler = sampler

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
        if kind is SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return self._sampler.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"NoLoneClients{{{self._sampler.get_description()}}}"


def trace_server(app: Starlette) -> None:
    """A server span for every request to ``app`` but probes and scrapes, named by its
    route's template (``POST /webhooks/{system}``), continuing the caller's
    ``traceparent``; outside every middleware ``app`` has so far."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    def named(scope: Scope) -> tuple[str, dict[str, AttributeValue]]:
        method = scope.get("method", "")
        for route in app.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                template = str(getattr(route, "path", ""))
                return f"{method} {template}".strip(), {"http.route": template}
        return f"{method} unknown route".strip(), {}

    app.add_middleware(
        OpenTelemetryMiddleware,
        excluded_urls=UNTRACED_PATHS,
        default_span_details=named,
        # A span per ASGI message would cost more than the request's own.
        exclude_spans=["receive", "send"],
    )


def trace_engine(engine: AsyncEngine) -> None:
    """A span per SQL statement on ``engine`` (statements, never their parameters)."""
    from opentelemetry import metrics
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    usage = metrics.get_meter("opsgraph").create_up_down_counter("db.client.connections.usage")
    sql = trace.get_tracer("opentelemetry.instrumentation.sqlalchemy")
    EngineTracer(sql, engine.sync_engine, usage)  # type: ignore[no-untyped-call]


def trace_redis(client: Redis) -> None:
    """A span per Redis command (and pipeline) that ``client`` sends."""
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor.instrument_client(client)


def current_traceparent() -> str | None:
    """The current span's context as a W3C ``traceparent``: what a row written now keeps so
    that its processing joins this trace; None outside a recorded span."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier.get(TRACEPARENT)


@contextmanager
def continued(
    name: str, traceparent: str | None, attributes: Mapping[str, AttributeValue]
) -> Iterator[Span]:
    """A span ``name`` whose parent is the context ``traceparent`` names (the cause of
    what it processes, in another request, task or process), or the current span without
    one. A current span that is not that parent (a replay's request) is linked to it."""
    if traceparent is None:
        with tracer.start_as_current_span(name, attributes=attributes) as span:
            yield span
        return
    parent = _W3C.extract({TRACEPARENT: traceparent})
    here = trace.get_current_span().get_span_context()
    links = [Link(here)] if here.is_valid else []
    with tracer.start_as_current_span(
        name, context=parent, links=links, attributes=attributes
    ) as span:
        yield span
