"""The floors under a cached customer 360, for ``bench.load``: no opsgraph code, only the
answer opsgraph gave to ``Customer360``, read from the file ``FLOOR_ANSWER`` names.

- ``bare``: strawberry on Starlette answering the ``Customer360`` document from that answer
  held in memory as Python dicts and lists (every field resolved by ``operator.getitem``),
  parsing and validating the document on every request;
- ``cached``: the same with strawberry's ``ParserCache`` and ``ValidationCache``, as the
  gateway's schema has them;
- ``raw``: a Starlette route that reads the request and returns the answer's bytes.

The schema has the shape of the ``C360`` fragment; its enums are plain strings (the same
JSON). Serve one with ``uvicorn bench.floors:<name>``; ``GET /ready`` answers 200.
"""

from __future__ import annotations

import json
import os
from functools import partial
from operator import getitem
from pathlib import Path
from typing import Any

import strawberry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig

ANSWER = Path(os.environ["FLOOR_ANSWER"]).read_bytes()
CUSTOMER: dict[str, Any] = json.loads(ANSWER)["data"]["customer"]


@strawberry.type
class Provenance:
    system: str
    externalId: str
    cached: bool
    stale: bool


@strawberry.type
class ExternalId:
    system: str
    id: str


@strawberry.type
class Money:
    amount: str
    currency: str
    minorUnits: str


@strawberry.type
class Account:
    id: str
    name: str
    segment: str
    owner: str
    strategic: bool
    renewalDate: str | None
    healthScore: int | None
    source: Provenance


@strawberry.type
class Plan:
    id: str
    name: str
    price: Money
    features: list[str]
    supportTier: str
    slaHours: int


@strawberry.type
class Subscription:
    id: str
    status: str
    quantity: int
    source: Provenance
    plan: Plan | None


@strawberry.type
class Entitlement:
    feature: str
    planId: str
    supportTier: str
    slaHours: int


@strawberry.type
class Posting:
    id: str
    amount: Money
    tax: Money


@strawberry.type
class Invoice:
    id: str
    number: str | None
    status: str
    total: Money
    postingStatus: str
    postings: list[Posting]


@strawberry.type
class InvoiceEdge:
    node: Invoice


@strawberry.type
class InvoiceConnection:
    totalCount: int
    edges: list[InvoiceEdge]


@strawberry.type
class Balance:
    receivable: Money
    source: Provenance


@strawberry.type
class Case:
    id: str
    subject: str
    priority: str
    status: str
    slaBreached: bool
    source: Provenance


@strawberry.type
class CaseEdge:
    node: Case


@strawberry.type
class CaseConnection:
    edges: list[CaseEdge]


@strawberry.type
class Identified:
    id: str


@strawberry.type
class Customer:
    id: str
    name: str
    externalIds: list[ExternalId]
    account: Account | None
    subscriptions: list[Subscription]
    entitlements: list[Entitlement]
    balance: Balance | None
    cases: CaseConnection
    credits: list[Identified]
    openExceptions: list[Identified]

    @strawberry.field
    def invoices(self, first: int = 10) -> InvoiceConnection:
        return getitem(self, "invoices")  # ``self`` is the customer's dict


@strawberry.type
class Query:
    @strawberry.field
    def customer(self, id: strawberry.ID) -> Customer | None:
        return CUSTOMER if id == CUSTOMER["id"] else None  # type: ignore[return-value]


def _schema(*extensions: Any) -> strawberry.Schema:
    # Fields are named as the answer's keys and read from its dicts: no model objects.
    config = StrawberryConfig(auto_camel_case=False, default_resolver=getitem)
    return strawberry.Schema(query=Query, config=config, extensions=list(extensions))


async def _ready(request: Request) -> Response:
    return Response("ready")


async def _raw(request: Request) -> Response:
    await request.body()
    return Response(ANSWER, media_type="application/json")


def _app(graphql: Route) -> Starlette:
    return Starlette(routes=[graphql, Route("/ready", _ready)])


bare = _app(Route("/graphql", GraphQL(_schema(), graphql_ide=None)))
caches = (partial(ParserCache, maxsize=256), partial(ValidationCache, maxsize=256))
cached = _app(Route("/graphql", GraphQL(_schema(*caches), graphql_ide=None)))
raw = _app(Route("/graphql", _raw, methods=["POST"]))
