"""Stripe Events: one per write, kept for ``GET /v1/events`` and delivered as webhooks.

A delivery is a POST of the Event JSON with ``Stripe-Signature: t=<unix>,v1=<hex>``, the
HMAC-SHA256 of ``"<t>.<body>"`` under the endpoint's secret. It runs in a background task:
a receiver that is down or slow is logged and never fails the write that caused it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable

import httpx

from connectors.sandbox.billing.documents import API_VERSION, Doc
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.store import Store

log = logging.getLogger(__name__)


def signature(payload: str, secret: str, stamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{stamp}.{payload}".encode(), hashlib.sha256)
    return f"t={stamp},v1={digest.hexdigest()}"


class EventLog:
    def __init__(self, store: Store, config: SandboxConfig, new_id: Callable[[str], str]) -> None:
        self.store = store
        self.config = config
        self.new_id = new_id
        self._deliveries: set[asyncio.Task[None]] = set()

    def emit(self, type_: str, obj: Doc, request_id: str, idempotency_key: str | None) -> Doc:
        event: Doc = {
            "id": self.new_id("evt_"), "object": "event", "api_version": API_VERSION,
            "created": int(time.time()), "data": {"object": obj}, "livemode": False,
            "pending_webhooks": 1 if self.config.webhook_url else 0,
            "request": {"id": request_id, "idempotency_key": idempotency_key},
            "type": type_,
        }  # fmt: skip
        self.store.put("event", event["id"], event)
        if self.config.webhook_url:
            task = asyncio.get_running_loop().create_task(self._deliver(event))
            self._deliveries.add(task)  # the loop keeps only weak references
            task.add_done_callback(self._deliveries.discard)
        return event

    async def _deliver(self, event: Doc) -> None:
        payload = json.dumps(event, indent=2)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature(payload, self.config.webhook_secret, int(time.time())),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                answer = await client.post(
                    str(self.config.webhook_url), content=payload, headers=headers
                )
            if answer.status_code >= 300:
                log.warning("webhook %s answered %s", event["id"], answer.status_code)
        except httpx.HTTPError as exc:
            log.warning("webhook %s not delivered: %r", event["id"], exc)
