"""A sandbox's API as one app: the vendor's routes, its own JSON error for a request none of
them takes, any ``VendorError`` a handler raises answered in the vendor's words, and the
fault injection and admin routes of ``faults.SandboxMiddleware`` in front.

A request no route takes (an unknown path, or a known one with another method) never gets
Starlette's text 404 or 405: the API's ``unrouted(request, status)`` answers it, as its
vendor does (Stripe, for one, checks the key first and then answers 404 for both).
"""

from __future__ import annotations

from typing import Protocol

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from connectors.models import Record
from connectors.sandbox.errors import VendorError
from connectors.sandbox.faults import Fault, SandboxMiddleware


class Api(Protocol):
    """What each system's ``api`` module provides (``StripeApi``, ``NetSuiteApi``,
    ``SalesforceApi``, ``ZendeskApi``)."""

    def routes(self) -> list[BaseRoute]: ...

    async def unrouted(self, request: Request, status: int) -> Response:
        """The answer to a request no route takes: ``status`` is Starlette's 404 or 405."""
        ...

    def seed(self, records: list[Record]) -> None: ...


def app(api: Api, fault: Fault) -> SandboxMiddleware:
    async def unrouted(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return await api.unrouted(request, status)

    async def refused(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, VendorError):  # registered for VendorError alone
            raise exc
        return exc.response()

    routed = Starlette(
        routes=api.routes(),
        exception_handlers={HTTPException: unrouted, VendorError: refused},
    )
    # Billing and support deliver signed events (their ``webhooks``); ERP and CRM do not.
    webhooks = getattr(api, "webhooks", None)
    # Billing and the ERP make the reconciliation benchmark's world (``bulk``); the others not.
    bulk = getattr(api, "bulk", None)
    return SandboxMiddleware(routed, seeder=api.seed, fault=fault, webhooks=webhooks, bulk=bulk)
