"""The dashboards' HTTP side: the pages (one shell, ``static/index.html``, whose script draws
the page its path names), their own scripts and styles, the pinned front-end packages they
load from ``node_modules`` (``npm ci --prefix dashboards``, run by ``make``), the persisted
operations they send, and, in the development profile only, a sign-in that mints a token
for a chosen role (the demo's identities; production pages take a token from the identity
provider).

Nothing here reads data: every page is a GraphQL client of ``/graphql`` with a bearer token,
through the same persisted operations, authorization and limits as any other client.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from dashboards.operations import MANIFEST
from gateway.auth import dev_tokens
from gateway.auth.scopes import Role
from gateway.settings import Profile, Settings

FOLDER = Path(__file__).parent
STATIC = FOLDER / "static"
NODE_MODULES = FOLDER / "node_modules"
GRAPHIQL_PAGE = STATIC / "graphiql.html"
# The pages the shell draws (``static/js/pages/<name>.js``).
PAGES = ("customers", "support", "approvals", "reconciliation", "operations")
# What the pages may load from the pinned packages, by the name they ask for: only these
# files are served, never the rest of node_modules.
VENDOR = {
    "graphql-sse.js": "graphql-sse/umd/graphql-sse.min.js",
    "uPlot.js": "uplot/dist/uPlot.iife.min.js",
    "uPlot.css": "uplot/dist/uPlot.min.css",
    "react.js": "react/umd/react.production.min.js",
    "react-dom.js": "react-dom/umd/react-dom.production.min.js",
    "graphiql.js": "graphiql/graphiql.min.js",
    "graphiql.css": "graphiql/graphiql.min.css",
}
Endpoint = Callable[[Request], Awaitable[Response]]
# A development sign-in lasts a working day.
SESSION_S = 8 * 3600
NOT_INSTALLED = (
    "The dashboards' front-end packages are not installed: run `make demo` (or "
    "`npm ci --prefix dashboards`), which needs Node.js and npm."
)


def routes(settings: Settings) -> list[BaseRoute]:
    """``/dashboards/...``: the pages, their assets, the operations and the sign-in."""
    development = settings.profile is Profile.DEVELOPMENT and bool(settings.auth.hs256_secret)
    pages = [Route(f"/{name}", _page, methods=["GET", "HEAD"]) for name in PAGES]
    ide = settings.profile is Profile.DEVELOPMENT
    return [
        # GraphiQL, in the development profile: a page a browser opens without a token (it
        # sends the one typed into its headers editor, or the tab's dashboards sign-in).
        *([Route("/graphiql", _graphiql, methods=["GET", "HEAD"])] if ide else []),
        Route("/dashboards", _home, methods=["GET", "HEAD"]),
        Mount(
            "/dashboards",
            routes=[
                Route("/", _home, methods=["GET", "HEAD"]),
                *pages,
                Route("/config.json", _config(settings, development), methods=["GET"]),
                Route("/operations.json", _operations, methods=["GET"]),
                Route("/vendor/{name}", _vendor, methods=["GET", "HEAD"]),
                Route("/session", _sign_in(settings), methods=["POST"])
                if development
                else Route("/session", _no_sign_in, methods=["POST"]),
                Mount("/static", StaticFiles(directory=STATIC)),
            ],
        ),
    ]


async def _home(request: Request) -> Response:
    return RedirectResponse("/dashboards/customers", status_code=307)


async def _page(request: Request) -> Response:
    # Pages change with the code: a browser asks again rather than run an old script.
    return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})


async def _graphiql(request: Request) -> Response:
    return FileResponse(GRAPHIQL_PAGE, headers={"cache-control": "no-cache"})


def _config(settings: Settings, development: bool) -> Endpoint:
    """What a page needs to know before it signs in: whether the development sign-in is
    there, and which roles it offers."""
    body = {
        "developmentSignIn": development,
        "roles": [role.value for role in Role] if development else [],
        "graphiql": settings.profile is Profile.DEVELOPMENT,
    }

    async def config(request: Request) -> Response:
        return JSONResponse(body, headers={"cache-control": "no-cache"})

    return config


async def _operations(request: Request) -> Response:
    """The persisted operations (Apollo's manifest, as the safelist loads it), by name: a
    page sends an operation's hash, and its text only when the gateway (automatic persisted
    queries) asks for it."""
    try:
        names = _published()
    except FileNotFoundError:
        unbuilt = "The persisted operations are not built: run `make manifest`."
        return _error(503, "NOT_INSTALLED", unbuilt)
    return JSONResponse(names, headers={"cache-control": "no-cache"})


@functools.cache
def _published() -> dict[str, dict[str, str]]:
    """The manifest by operation name, read once (the safelist too reads it at start); a
    missing manifest is not remembered."""
    manifest = json.loads(MANIFEST.read_text())
    return {o["name"]: {k: o[k] for k in ("id", "type", "body")} for o in manifest["operations"]}


async def _vendor(request: Request) -> Response:
    name = request.path_params["name"]
    relative = VENDOR.get(name)
    if relative is None:
        return _error(404, "NOT_FOUND", f"No front-end package file is called {name!r}.")
    path = NODE_MODULES / relative
    if not path.is_file():
        return _error(503, "NOT_INSTALLED", NOT_INSTALLED)
    return FileResponse(path, headers={"cache-control": "no-cache"})


def _sign_in(settings: Settings) -> Endpoint:
    """``POST {"role": "finance_approver"}`` -> a development token for that role, signed
    with the demo's own secret. Development profile only: production has no route here."""
    secret = settings.auth.hs256_secret

    async def sign_in(request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _error(415, "BAD_REQUEST", 'Send the role as JSON: {"role": "viewer"}.')
        try:
            given = json.loads(await request.body())
            role = Role(given["role"])
        except (ValueError, KeyError, TypeError):
            roles = ", ".join(r.value for r in Role)
            return _error(400, "BAD_USER_INPUT", f"role must be one of: {roles}.")
        token = dev_tokens.mint(
            secret,
            role,
            SESSION_S,
            issuer=settings.auth.issuer,
            audience=settings.auth.audience,
        )
        body = {"token": token, "subject": dev_tokens.subject(role), "roles": [role.value]}
        return JSONResponse(body, headers={"cache-control": "no-store"})

    return sign_in


async def _no_sign_in(request: Request) -> Response:
    return _error(
        404,
        "NOT_FOUND",
        "The development sign-in is off: sign in with a token from your identity provider.",
    )


def _error(status: int, code: str, message: str) -> Response:
    """Refusals as every other answer of the gateway words them."""
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status)
