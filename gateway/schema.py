"""The GraphQL schema, assembled from the resolver modules. It is also an Apollo Federation
v2 subgraph, so a company can compose it into an existing supergraph."""

from __future__ import annotations

from functools import partial

import strawberry
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.tools import merge_types

from gateway.extensions.error_codes import ErrorCodes
from resolvers.customer import CustomerQuery
from resolvers.entitlement import EntitlementQuery
from resolvers.system import SystemQuery

Query = merge_types("Query", (SystemQuery, CustomerQuery, EntitlementQuery))


def build_schema() -> strawberry.federation.Schema:
    return strawberry.federation.Schema(
        query=Query,
        federation_version="2.11",
        extensions=[
            ErrorCodes,
            # Parsing and validating a document costs more than executing a small one.
            partial(ParserCache, maxsize=256),
            partial(ValidationCache, maxsize=256),
        ],
    )
