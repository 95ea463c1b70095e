"""Wire plumbing every HTTP connector shares: one ``httpx.AsyncClient`` that counts the
requests it sends, and the mapping from transport failures and status codes to the error
tree. A connector supplies only its ``errors`` module (``ErrorWords``): how its system
phrases an error body (``describe``) and, where its system means something else by a
status, the error that says so (``override``)."""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx
import orjson

from connectors import transport as transports
from connectors.errors import (
    UpstreamAuthError,
    UpstreamConflict,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from connectors.models import ConnectorConfig, SystemName


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class ErrorWords(Protocol):
    """How a system phrases a failed response: a connector's ``errors`` module."""

    def describe(self, response: httpx.Response) -> str:
        """The system's own words for the failure, safe to show (no request values)."""

    def override(self, response: httpx.Response) -> UpstreamError | None:
        """The error a response means where the system departs from the kit's mapping
        (``HttpClient.error_for``); None where it does not."""


class BearerToken(httpx.Auth):
    """An OAuth 2.0 access token, or any token sent as a bearer."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class RequestCounter:
    """An httpx ``request`` event hook counting the requests a client sends: every
    attempt, redirect and auth round trip that goes upstream."""

    def __init__(self) -> None:
        self.sent = 0

    async def __call__(self, request: httpx.Request) -> None:
        self.sent += 1

    def hooks(self) -> dict[str, list[Callable[..., Any]]]:
        """``event_hooks`` for an ``httpx.AsyncClient``."""
        return {"request": [self]}


class HttpClient:
    """The connector's client for ``system`` as ``config`` says (base URL, timeout,
    connections), JSON by default, counting each request it sends with ``counter``;
    ``transport`` replaces the network (tests)."""

    def __init__(
        self,
        system: SystemName,
        config: ConnectorConfig,
        errors: ErrorWords,
        counter: RequestCounter,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.system = system.value
        self.errors = errors
        self._client = httpx.AsyncClient(
            base_url=config.base_url,
            headers={"Accept": "application/json"},
            auth=auth,
            timeout=transports.timeout(config.timeout),
            transport=transport
            or transports.transport(config.max_connections, traced=config.traced),
            event_hooks=counter.hooks(),
        )

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(
                f"{self.system} did not answer in time", system=self.system, internal=repr(exc)
            ) from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(
                f"{self.system} is unreachable", system=self.system, internal=repr(exc)
            ) from exc
        if response.status_code >= 400 and response.status_code != 404:
            raise self.error_for(response)
        return response

    def error_for(self, response: httpx.Response) -> UpstreamError:
        special = self.errors.override(response)
        if special is not None:
            return special
        status = response.status_code
        detail = self.errors.describe(response)
        kw: dict[str, Any] = {"system": self.system, "internal": response.text[:2000]}
        if status == 429:
            return UpstreamRateLimited(
                f"{self.system} is rate limiting us: {detail}",
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
                **kw,
            )
        if status >= 500:
            return UpstreamUnavailable(f"{self.system} failed: {detail}", **kw)
        if status in (401, 403):
            return UpstreamAuthError(f"{self.system} refused our credentials: {detail}", **kw)
        if status == 404:
            return UpstreamNotFound(f"{self.system}: {detail}", **kw)
        if status in (300, 409):
            return UpstreamConflict(f"{self.system}: {detail}", **kw)
        return UpstreamRejected(f"{self.system} rejected the request: {detail}", **kw)

    async def json(self, method: str, url: str, **kwargs: Any) -> Any:
        """The decoded body; a 404 raises ``UpstreamNotFound``."""
        response = await self.request(method, url, **kwargs)
        if response.status_code == 404:
            raise self.error_for(response)
        return orjson.loads(response.content)  # the standard library's decoder is 3x slower

    async def aclose(self) -> None:
        await self._client.aclose()
