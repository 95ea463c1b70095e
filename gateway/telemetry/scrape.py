"""``GET /metrics``: the app's metrics in Prometheus's text format.

Before writing them out, the gauges that are a shared truth are read afresh: each system's
breaker (shared between replicas through Redis), the reconciliation exceptions open and the
dead letters (both in the database). A read that fails or takes longer than ``REFRESH_S``
leaves its gauges as the last scrape set them, and the scrape still answers.

With ``metrics.token`` set, a scrape must send ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.errors import GatewayError
from gateway.data.services import Services
from gateway.events.routing import PREFIX
from gateway.settings import MetricsSettings
from gateway.workflows.engine import STOPPED

log = logging.getLogger("opsgraph.metrics")

REFRESH_S = 2.0


async def refresh(services: Services) -> None:
    """Sets the gauges read from the breakers and the database."""
    metrics = services.metrics
    try:
        async with asyncio.timeout(REFRESH_S):
            metrics.breakers(await services.registry.breakers())
            metrics.reconciliation(await services.book.open_by_kind())
            metrics.dead(await services.workflows.tally(status=STOPPED, workflow_prefix=PREFIX))
    except (TimeoutError, OSError, GatewayError) as failed:
        log.warning("metrics not refreshed: %r", failed)
    except Exception:  # a database error: the scrape answers what it has
        log.exception("metrics not refreshed")


def route(settings: MetricsSettings) -> list[Route]:
    """The ``/metrics`` route, unless the settings turn it off."""
    if not settings.enabled:
        return []
    expected = f"Bearer {settings.token}".encode() if settings.token else None

    async def metrics(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return Response(
                    "a bearer token is required\n",
                    401,
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                    media_type="text/plain",
                )
        services: Services = request.app.state.services
        await refresh(services)
        return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return [Route("/metrics", metrics)]
