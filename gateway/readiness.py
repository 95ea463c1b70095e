"""Liveness and readiness: ``/healthz`` says the process is up; ``/readyz`` says it can serve
(database reachable and migrated to head, Redis reachable when configured)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.data.redis_guard import RedisUnavailable
from gateway.data.services import Services
from gateway.storage.migrate import current_revision, head_revision


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _database(services: Services) -> str:
    async with services.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    current, head = await current_revision(services.engine), head_revision()
    if current != head:
        return f"migrations at {current}, head is {head}: run `opsgraph migrate`"
    return "ok"


async def _redis(services: Services) -> str:
    if services.redis is None:
        return "not configured (in-process)"
    # Through the guard: bounded by the Redis timeout, and no call at all while it is down.
    try:
        await services.redis.ping()
    except RedisUnavailable as exc:
        return f"unreachable: {exc.error}"
    return "ok"


async def readyz(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    checks: dict[str, str] = {}
    for name, check in (("database", _database), ("redis", _redis)):
        try:
            async with asyncio.timeout(3):
                checks[name] = await check(services)
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            checks[name] = f"unreachable: {type(exc).__name__}"
    ready = all(v == "ok" or v.startswith("not configured") for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )
