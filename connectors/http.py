"""Wire plumbing every HTTP connector shares: one ``httpx.AsyncClient``, and the mapping
from transport failures and status codes to the error tree. A connector supplies only how
its system phrases an error body (``describe``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

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


def _default_describe(response: httpx.Response) -> str:
    return f"HTTP {response.status_code}"


class HttpClient:
    def __init__(
        self,
        system: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        timeout: float = 10.0,
        describe: Callable[[httpx.Response], str] = _default_describe,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 16,
    ) -> None:
        self.system = system
        self.describe = describe
        self.calls = 0  # upstream requests sent; benchmarks and tests read it
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=dict(headers or {}),
            auth=auth,
            timeout=transports.timeout(timeout),
            transport=transport or transports.transport(max_connections),
        )

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        self.calls += 1
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
        status = response.status_code
        detail = self.describe(response)
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
        return response.json()

    async def aclose(self) -> None:
        await self._client.aclose()
