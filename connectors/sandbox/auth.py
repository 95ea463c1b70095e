"""Who may call a sandbox: one guard shape for every system's credential check.

A ``Guard`` reads the credential a request presents (``presented``: a function of the
request, ``None`` when there is none), compares it with the sandbox's secret in constant
time, and otherwise raises the vendor's own 401 (``refuse``, given what was presented, so
that Stripe can echo the key masked). Where it is presented is the vendor's::

    Stripe       Authorization: Bearer <key>, or Basic with the key as user name
    NetSuite     Authorization: Bearer <token>
    Salesforce   Authorization: Bearer <session id>
    Zendesk      Authorization: Basic {email}/token:{api token}
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from connectors.sandbox.errors import VendorError
from connectors.sandbox.types import Endpoint


def _authorization(request: Request) -> tuple[str, str]:
    """The scheme (lowercase, as schemes are case-insensitive) and its credentials."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return scheme.lower(), value.strip()


def bearer(request: Request) -> str | None:
    scheme, value = _authorization(request)
    return value if scheme == "bearer" else None


def basic(request: Request) -> tuple[str, str] | None:
    """The user name and password of Basic auth, if that is what the request carries."""
    scheme, value = _authorization(request)
    if scheme != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


@dataclass(frozen=True)
class Guard:
    secret: str
    presented: Callable[[Request], str | None]
    refuse: Callable[[str | None], VendorError]

    def check(self, request: Request) -> None:
        given = self.presented(request)
        if given is None or not hmac.compare_digest(given.encode(), self.secret.encode()):
            raise self.refuse(given)

    def protect(self, endpoint: Endpoint) -> Endpoint:
        async def guarded(request: Request) -> Response:
            self.check(request)
            return await endpoint(request)

        return guarded
