"""The ``/_sandbox`` admin routes every sandbox shares: the operator's (tests, the demo,
benchmarks, ``fleet``), never faulted and never counted::

    GET  /_sandbox/faults          the current faults
    PUT  /_sandbox/faults          replace them (JSON body, fields of ``faults.Faults``)
    GET  /_sandbox/stats           {"requests": {"GET /v1/customers": 3, ...}, "total": 3,
                                    "in_flight": 0, "max_in_flight": 1}
    POST /_sandbox/stats/reset     zero the counters (requests in flight stay counted)
    POST /_sandbox/seed            {"records": [canonical JSON records]} (``connectors.codec``)
    POST /_sandbox/bulk            {"invoices": N, "seed": S}: the sandbox makes its side of
                                   the reconciliation benchmark's world
                                   (``bulk.BenchWorld(N, S)``) itself, in its store, instead
                                   of a million records sent as JSON; answers how many of
                                   each it holds ({"customers": ..., "invoices": ...}). 404
                                   from a sandbox with no side in it (CRM, support)
    GET  /_sandbox/webhooks        {"url": where signed events are delivered, or null}
    PUT  /_sandbox/webhooks        {"url": "http://127.0.0.1:<port>/..." or null}: deliver
                                   there from now on (a loopback URL only); 404 from a
                                   sandbox that delivers none (ERP, CRM)

Anything else under ``/_sandbox/`` is a 404 ``{"error": "no such admin route"}``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors import codec

if TYPE_CHECKING:
    from connectors.sandbox.faults import SandboxMiddleware

PREFIX = "/_sandbox/"


def _json(answer: Any, status: int = 200) -> Response:
    return Response(json.dumps(answer), status, media_type="application/json")


def app(sandbox: SandboxMiddleware) -> Starlette:
    """The admin routes over ``sandbox``'s faults, counters and seeder."""

    async def faults(request: Request) -> Response:
        if request.method == "PUT":
            try:
                sandbox.set_faults(json.loads(await request.body() or b"{}"))
            except (TypeError, ValueError) as exc:
                return _json({"error": str(exc)}, 400)
        return _json(dataclasses.asdict(sandbox.faults))

    async def stats(request: Request) -> Response:
        return _json(sandbox.stats())

    async def reset_stats(request: Request) -> Response:
        sandbox.reset_stats()
        return _json(sandbox.stats())

    async def seed(request: Request) -> Response:
        try:
            records = [codec.from_json(r) for r in json.loads(await request.body())["records"]]
            sandbox.seeder(records)
        except (KeyError, TypeError, ValueError) as exc:
            return _json({"error": f"bad seed: {exc}"}, 400)
        return _json({"seeded": len(records)})

    async def bulk(request: Request) -> Response:
        if sandbox.bulk is None:
            return _json({"error": "this sandbox has no side in the bench world"}, 404)
        try:
            asked = json.loads(await request.body() or b"{}")
            invoices, seed = asked["invoices"], asked.get("seed", 1)
            if not all(type(n) is int for n in (invoices, seed)):
                raise TypeError("invoices and seed are integers")
            made = sandbox.bulk(invoices, seed)
        except (KeyError, TypeError, ValueError) as exc:
            shape = '{"invoices": N, "seed": S}'
            return _json({"error": f"bad bulk: {exc}; the body is {shape}"}, 400)
        return _json(made)

    async def webhooks(request: Request) -> Response:
        delivery = sandbox.webhooks
        if delivery is None:
            return _json({"error": "this sandbox delivers no webhooks"}, 404)
        if request.method == "PUT":
            try:
                url = json.loads(await request.body() or b"{}")["url"]
            except (KeyError, TypeError, ValueError):
                return _json({"error": 'the body is {"url": <loopback URL or null>}'}, 400)
            if url is not None and not _loopback(url):
                return _json({"error": f"not a loopback http URL: {url!r}"}, 400)
            delivery.url = url
        return _json({"url": delivery.url})

    async def unknown(request: Request, exc: Exception) -> Response:
        return _json({"error": "no such admin route"}, 404)

    return Starlette(
        routes=[
            Route(PREFIX + "faults", faults, methods=["GET", "PUT"]),
            Route(PREFIX + "stats", stats, methods=["GET"]),
            Route(PREFIX + "stats/reset", reset_stats, methods=["POST"]),
            Route(PREFIX + "seed", seed, methods=["POST"]),
            Route(PREFIX + "bulk", bulk, methods=["POST"]),
            Route(PREFIX + "webhooks", webhooks, methods=["GET", "PUT"]),
        ],
        exception_handlers={HTTPException: unknown},
    )


def _loopback(url: object) -> bool:
    """Sandboxes deliver nowhere but this machine."""
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and parts.hostname in ("127.0.0.1", "localhost", "::1")
