"""The Starlette app: ``/graphql`` (queries over GET and POST, mutations only over POST),
``/healthz``, ``/readyz``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from gateway.auth.middleware import AuthMiddleware
from gateway.data.services import Services
from gateway.graphql_view import GraphQLView
from gateway.ownership import OwnershipMap
from gateway.readiness import healthz, readyz
from gateway.request_scope import RequestScopeMiddleware
from gateway.schema import build_schema
from gateway.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> Starlette:
    """The gateway. Settings and the ownership file are validated here, before serving;
    the services (database, Redis, connectors) are built when the app starts."""
    settings = settings or load_settings()
    ownership = OwnershipMap.load(settings.ownership_file)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        services = Services.build(settings, ownership)
        await services.start()
        app.state.services = services
        try:
            yield {}
        finally:
            await services.aclose()

    graphql = GraphQLView(build_schema(), allow_queries_via_get=True)
    return Starlette(
        routes=[
            Route("/graphql", graphql),  # the view answers other methods (JSON 405)
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ],
        middleware=[
            Middleware(RequestScopeMiddleware, deadline_s=settings.request_deadline_s),
            Middleware(AuthMiddleware),
        ],
        lifespan=lifespan,
    )
