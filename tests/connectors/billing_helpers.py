"""What the billing test modules share: the seeded world, a connector and an authenticated GET
against a sandbox, a loopback receiver for the sandbox's (or localstripe's) webhooks, and the
fixtures of the tests that write (a module takes them with ``fresh = billing_helpers.fresh``)."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.billing import BillingConnector, connect
from connectors.commands import CreateCustomer
from connectors.models import ConnectorConfig, SystemName
from connectors.sandbox.billing import create_app
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.seed import generate
from connectors.sandbox.serve import serve_in_thread
from tests.connectors.conftest import running_sandbox

SEEDED = generate(customers=8, seed=3, as_of=date(2026, 11, 1)).slice(SystemName.BILLING)
SECRET = "sandbox-secret"
WEBHOOK_SECRET = "whsec_test_billing"
NEW_CUSTOMER = CreateCustomer(
    name="Contract Co", email="ap@contract.example", currency="EUR", ref="cust_9001"
)


class Receiver:
    """A webhook endpoint on loopback that keeps what it was sent."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, str]] = []
        self._arrived = threading.Condition()

        async def hook(request: Request) -> Response:
            body = await request.body()
            with self._arrived:
                self.received.append((body, request.headers["stripe-signature"]))
                self._arrived.notify_all()
            return Response(status_code=204)

        self.running = serve_in_thread(Starlette(routes=[Route("/hook", hook, methods=["POST"])]))
        self.url = self.running.url + "/hook"

    def delivery_of(self, object_id: str, timeout: float = 5.0) -> tuple[bytes, str]:
        """The first delivery whose event is about ``object_id``, waiting for it."""

        def find() -> tuple[bytes, str] | None:
            for body, signature in self.received:
                if json.loads(body)["data"]["object"]["id"] == object_id:
                    return body, signature
            return None

        with self._arrived:
            self._arrived.wait_for(lambda: find() is not None, timeout)
            found = find()
        assert found is not None, f"no webhook for {object_id} within {timeout}s"
        return found


@contextmanager
def webhook_sandbox(receiver: Receiver) -> Iterator[tuple[str, httpx.Client]]:
    """A seeded sandbox that delivers its webhooks to ``receiver``, for the tests that write."""
    config = SandboxConfig(webhook_url=receiver.url, webhook_secret=WEBHOOK_SECRET)
    with running_sandbox(create_app, SEEDED, config) as running:
        yield running


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.running.stop()


@pytest.fixture(scope="module")
def fresh(receiver: Receiver) -> Iterator[tuple[str, httpx.Client]]:
    """A seeded sandbox of the module's own, delivering webhooks, for the tests that write."""
    with webhook_sandbox(receiver) as running:
        yield running


@pytest.fixture
async def billing(fresh: tuple[str, httpx.Client]) -> AsyncIterator[BillingConnector]:
    connector = _connector(fresh[0], timeout=2.0)
    yield connector
    await connector.aclose()


def _connector(url: str, secret: str = SECRET, **kw: Any) -> BillingConnector:
    return connect(ConnectorConfig(base_url=url, secret=secret, **kw))


def _get(admin: httpx.Client, path: str, secret: str = SECRET, **params: Any) -> httpx.Response:
    return admin.get(path, params=params, headers={"Authorization": f"Bearer {secret}"})
