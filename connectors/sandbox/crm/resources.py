"""The org's REST resources as the sandbox routes them: a request as a handler sees it
(``Call``), what the handler answers (``Answer``), and each resource (``Resource``): its
path under ``/services/data/vXX.X``, its handler and methods, whether a composite or batch
subrequest may name it, and the first version that serves it.

An HTTP request reaches a handler through Starlette's routes (``paths``); a composite
subrequest through the same paths (``Resources.run``), so that the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from starlette.routing import Match, Route

from connectors.sandbox.crm import errors
from connectors.sandbox.crm.documents import FIRST_VERSION, api_version
from connectors.sandbox.crm.errors import SalesforceError

PREFIX = "/services/data/v{version}"


@dataclass(frozen=True)
class Call:
    method: str
    version: int
    params: Mapping[str, str]  # from the path
    query: Mapping[str, str]
    headers: Mapping[str, str]  # names in lower case
    body: Any = None  # the JSON body of a POST or PATCH


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Call], Answer]


@dataclass(frozen=True)
class Resource:
    path: str  # after /services/data/vXX.X
    handler: Handler
    methods: tuple[str, ...] = ("GET",)
    in_composite: bool = True  # may be a composite subrequest
    in_batch: bool = True  # may be a composite batch subrequest
    since: int = FIRST_VERSION


def paths(resource: Resource) -> list[str]:
    """Salesforce takes a resource's path with a trailing slash or without."""
    path = PREFIX + resource.path
    return [path] if path.endswith(":path}") else [path, f"{path}/"]


def served(resource: Resource, given: str) -> int:
    """The version a request for ``resource`` names, if it is served and serves it."""
    found = api_version(given)
    if found < resource.since:
        raise errors.not_found()
    return found


class Resources:
    def __init__(self, resources: list[Resource]) -> None:
        self._resources = resources
        # A route per path, its handler as the endpoint: what a subrequest is found by.
        self._routes = [(Route(path, r.handler, methods=r.methods), r)
                        for r in resources for path in paths(r)]  # fmt: skip

    def __iter__(self) -> Iterator[Resource]:
        return iter(self._resources)

    def run(
        self, method: str, url: str, body: Any, headers: Mapping[str, str], *, batch: bool
    ) -> Answer:
        """A composite (``batch``: composite batch) subrequest, run by the handler its
        route names; one no route takes, or a resource a subrequest may not name, is the
        404 or 405 of an HTTP request no route takes."""
        parts = urlsplit(url)
        scope = {"type": "http", "path": unquote(parts.path), "method": method}
        refused = False
        try:
            for route, resource in self._routes:
                if not (resource.in_batch if batch else resource.in_composite):
                    continue
                match, child = route.matches(scope)
                if match is Match.FULL:
                    params = dict(child["path_params"])
                    given = served(resource, params.pop("version"))
                    call = Call(method, given, params, dict(parse_qsl(parts.query)), headers, body)
                    return resource.handler(call)
                refused = refused or match is Match.PARTIAL
            raise errors.unrouted(method, 405 if refused else 404)
        except SalesforceError as exc:
            return Answer(exc.status, exc.document)
