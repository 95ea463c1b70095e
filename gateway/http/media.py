"""The media type of an answer, from the request's ``Accept``: the GraphQL-over-HTTP
spec's ``application/graphql-response+json`` when the client accepts it at least as much
as ``application/json``, else ``application/json`` (also with no ``Accept``, ``*/*``, or
nothing the gateway can answer in: the spec's watershed rule).

The two differ in status codes: with ``application/json`` a well-formed request is
answered 200 whatever GraphQL says about it; with ``application/graphql-response+json`` a
request that ran nothing (it did not parse, did not validate, its variables did not fit,
a limit refused it) is answered 400."""

from __future__ import annotations

from enum import StrEnum


class Media(StrEnum):
    JSON = "application/json"
    GRAPHQL_RESPONSE = "application/graphql-response+json"


def negotiate(accept: str | None) -> Media:
    graphql_response = json = 0.0
    for part in (accept or "").split(","):
        media_type, *parameters = (piece.strip() for piece in part.split(";"))
        quality = _quality(parameters)
        media_type = media_type.lower()
        if media_type == Media.GRAPHQL_RESPONSE:
            graphql_response = max(graphql_response, quality)
        elif media_type in (Media.JSON, "application/*", "*/*"):
            json = max(json, quality)
    if graphql_response > 0 and graphql_response >= json:
        return Media.GRAPHQL_RESPONSE
    return Media.JSON


def _quality(parameters: list[str]) -> float:
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return min(1.0, max(0.0, float(value)))
            except ValueError:
                return 0.0
    return 1.0
