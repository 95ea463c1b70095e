"""The floor under webhook intake: a bare Starlette app that proves a Stripe delivery with the
Stripe SDK's verifier (as the gateway does) and answers 200, storing nothing. ``bench.events``
serves it with uvicorn and loads it with the same wrk run as the gateway: what HTTP and the
signature check alone cost on this machine."""

from __future__ import annotations

import os

import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SECRET = os.environ.get("FLOOR_WEBHOOK_SECRET", "")


async def webhook(request: Request) -> Response:
    body = await request.body()
    try:
        stripe.WebhookSignature.verify_header(
            body, request.headers.get("stripe-signature", ""), SECRET, 300
        )
    except stripe.SignatureVerificationError:
        return JSONResponse({"error": "signature"}, 400)
    return JSONResponse({"received": True})


app = Starlette(routes=[Route("/webhooks/billing", webhook, methods=["POST"])])
