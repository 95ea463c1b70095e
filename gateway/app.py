"""The Starlette app: ``/graphql`` (queries over GET and POST, mutations only over POST,
subscriptions over WebSocket), ``/webhooks/<system>`` (signed events from billing and
support), ``/healthz``, ``/readyz``, ``/metrics`` (Prometheus; ``gateway.telemetry``),
the dashboards (``/dashboards``, ``dashboards.web``) and, in the development profile,
GraphiQL (``/graphiql``).

Every request passes the HTTP stage's layers, outermost first: the allowed hosts, CORS,
security headers on HTML pages, the WebSocket origin check, the request scope (deadline,
disconnects, the body size limit), authentication, and the principal's request rate.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route, WebSocketRoute

from dashboards import web as dashboards
from gateway import collector
from gateway.auth.middleware import AuthMiddleware
from gateway.data.services import Services
from gateway.events.actions import ACTIONS
from gateway.events.http import webhook
from gateway.events.routing import Routes
from gateway.graphql_view import GraphQLView, streams
from gateway.http.hosts import AllowedHosts
from gateway.http.rate_limit import RateLimit
from gateway.http.security_headers import GRAPHIQL_CSP, STRICT_CSP, SecurityHeaders
from gateway.http.websocket_origin import WebSocketOrigins
from gateway.limits.windows import Windows
from gateway.ownership import OwnershipMap
from gateway.persisted import manifest
from gateway.persisted.queries import PersistedQueries
from gateway.readiness import healthz, readyz
from gateway.request_scope import RequestScopeMiddleware
from gateway.rules.credit_policy import CreditPolicy
from gateway.schema import build_schema
from gateway.settings import Profile, Settings, load_settings
from gateway.telemetry import scrape, tracing
from gateway.telemetry.metrics import Metrics

# What a browser page on an allowed origin may send (CORS preflight).
CORS_HEADERS = [
    "authorization",
    "content-type",
    "x-api-key",
    "apollo-require-preflight",
    "x-apollo-operation-name",
]


def create_app(settings: Settings | None = None) -> Starlette:
    """The gateway. Settings, the ownership file, the credit policy, the event routes and the
    persisted query manifest are validated here, before serving; the services (database, Redis,
    connectors) are built when the app starts."""
    settings = settings or load_settings()
    ownership = OwnershipMap.load(settings.ownership_file)
    policy = CreditPolicy.load(settings.credit_policy_file)
    routes = Routes.load(settings.event_routes_file, ACTIONS)
    production = settings.profile is Profile.PRODUCTION
    # In process until the services start; then in Redis, when there is one.
    windows = Windows()
    persisted = PersistedQueries(settings.persisted_queries)
    # The registered operations (the manifest, where there is one) are counted by name.
    registered = settings.persisted_queries.manifest
    metrics = Metrics(
        persisted.registered or (manifest.load(registered) if registered.is_file() else ())
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        services = Services.build(settings, ownership, policy, routes, metrics)
        await services.start()
        if services.redis is not None and settings.redis_url is not None:
            windows.share(services.redis, settings.redis_url)
            persisted.share(services.redis)
        app.state.services = services
        with collector.tuned(settings.gc_threshold):
            try:
                yield {}
            finally:
                await services.aclose()

    graphql = GraphQLView(
        build_schema(settings, windows, metrics),
        persisted=persisted,
        graphiql=not production,
        hide_suggestions=production,
        keep_alive_s=settings.http.keep_alive_s,
        metrics=metrics,
        windows=windows,
        limits=settings.limits,
    )
    http = settings.http
    app = Starlette(
        routes=[
            Route("/graphql", graphql),  # the view answers other methods (JSON 405)
            WebSocketRoute("/graphql", graphql),  # subscriptions, graphql-transport-ws
            Route("/webhooks/{system}", webhook, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *scrape.route(settings.metrics),
            *dashboards.routes(settings),
        ],
        middleware=[
            Middleware(AllowedHosts, allowed_hosts=http.allowed_hosts),
            Middleware(
                CORSMiddleware,
                allow_origins=http.cors_origins,
                allow_methods=["GET", "POST"],
                allow_headers=CORS_HEADERS,
                expose_headers=["Retry-After"],
            ),
            Middleware(SecurityHeaders, csp=STRICT_CSP if production else GRAPHIQL_CSP),
            Middleware(WebSocketOrigins, allowed_origins=http.cors_origins),
            Middleware(
                RequestScopeMiddleware,
                deadline_s=settings.request_deadline_s,
                max_body_bytes=settings.limits.max_body_bytes,
                # A subscription's stream lasts as long as its client listens.
                unbounded=streams,
            ),
            Middleware(AuthMiddleware),
            Middleware(RateLimit, windows=windows, rate=settings.limits.rate_limit),
        ],
        lifespan=lifespan,
    )
    if tracing.configure(settings.telemetry) is not None:
        tracing.trace_server(app)  # outermost: its span holds every layer's work
    return app


def worker_app() -> Starlette:
    """The gateway as one of ``opsgraph serve --workers N``'s processes builds it: settings
    from the environment, logs in the settings' format."""
    from gateway.telemetry.log_format import configure_logging

    settings = load_settings()
    configure_logging(settings)
    return create_app(settings)
