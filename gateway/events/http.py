"""``POST /webhooks/<system>``: where billing (Stripe) and support (Zendesk) deliver events.

No bearer token: a delivery proves itself with the vendor's signature
(``gateway.events.intake``). The answers, each JSON:

- 200 ``{"received": "<event id>", "duplicate": false}``: stored (and processed) before the
  answer; ``"duplicate": true``: the inbox already held it, nothing was done again;
- 400 ``{"error": {"code", "message"}}``: not proved or not an event
  (``WEBHOOK_SIGNATURE_INVALID``, ``WEBHOOK_TIMESTAMP_STALE``, ``WEBHOOK_MALFORMED``);
  the vendor should not deliver it again;
- 405 ``METHOD_NOT_ALLOWED``: anything but a POST;
- 404 ``NOT_FOUND``: no such system, or one this gateway takes no webhooks from (it has no
  webhook secret for it);
- 503 ``UNAVAILABLE`` with ``Retry-After``: it could not be stored; the vendor delivers
  it again later.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response

from connectors.errors import WebhookRejected
from connectors.models import SystemName
from gateway.events.intake import Intake, StoreUnavailable
from gateway.storage import codec

log = logging.getLogger("opsgraph.events")
RETRY_AFTER_S = 30


def _error(status: int, code: str, message: str, **headers: str) -> Response:
    body = codec.dumpb({"error": {"code": code, "message": message}})
    return Response(body, status, headers=headers, media_type="application/json")


async def webhook(request: Request) -> Response:
    if request.method != "POST":
        return _error(405, "METHOD_NOT_ALLOWED", "webhooks are delivered with POST", Allow="POST")
    intake: Intake = request.app.state.services.intake
    name = request.path_params["system"]
    system = next((s for s in SystemName if s.value == name), None)
    if system is None or not intake.accepts(system):
        return _error(404, "NOT_FOUND", f"no webhook endpoint for {name[:40]!r}")
    body = await request.body()
    try:
        received = await intake.receive(system, body, request.headers)
    except WebhookRejected as refused:
        return _error(400, refused.code, refused.message)
    except (SQLAlchemyError, OSError, StoreUnavailable) as failed:
        log.warning("webhook from %s not stored: %r", system.value, failed)
        return _error(
            503,
            "UNAVAILABLE",
            "the event could not be stored; deliver it again later",
            **{"Retry-After": str(RETRY_AFTER_S)},
        )
    answer = {"received": received.event_id, "duplicate": received.duplicate}
    return Response(codec.dumpb(answer), 200, media_type="application/json")
