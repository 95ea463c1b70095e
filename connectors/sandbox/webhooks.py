"""Signed webhook delivery: a POST of the body with the vendor's signature headers, each in
a background task, so that a receiver that is down or slow is logged and never fails (or
holds up) the write that caused it. The signature is the vendor's (``sign``: body ->
headers), made when the delivery leaves, as a timestamped signature must be."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

import httpx

log = logging.getLogger(__name__)

Sign = Callable[[bytes], Mapping[str, str]]


class Webhooks:
    def __init__(self, url: str | None, sign: Sign, timeout_s: float = 10) -> None:
        self.url = url
        self.sign = sign
        self.timeout_s = timeout_s
        self._deliveries: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return self.url is not None

    def deliver(self, body: bytes) -> None:
        """Send ``body`` in the background (nothing, when no URL is configured)."""
        if self.url is None:
            return
        task = asyncio.get_running_loop().create_task(self._post(self.url, body))
        self._deliveries.add(task)  # the loop keeps only weak references
        task.add_done_callback(self._deliveries.discard)

    async def _post(self, url: str, body: bytes) -> None:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                answer = await client.post(url, content=body, headers=dict(self.sign(body)))
            if answer.status_code >= 300:
                log.warning("webhook to %s answered %s", url, answer.status_code)
        except httpx.HTTPError as exc:
            log.warning("webhook to %s not delivered: %r", url, exc)
