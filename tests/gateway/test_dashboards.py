"""The dashboards' HTTP side: the pages and their assets are the gateway's own (no CDN), the
front-end packages are served only by name, the persisted operations the pages send are
published by name, and the development sign-in exists in the development profile alone
and mints tokens the gateway then verifies like any other."""

from __future__ import annotations

import json
import re
import tomllib
from fnmatch import fnmatch

import pytest

from dashboards.operations import MANIFEST
from dashboards.web import NODE_MODULES, PAGES, STATIC, VENDOR
from tests.gateway.conftest import Bare
from tests.identity import identity

SECRET = "development-secret-of-32-characters!"
CREDITS = {"query": "{ creditRequests { totalCount } }"}
AUDIT = {"query": "{ auditLog { totalCount } }"}


def development(bare: Bare):  # type: ignore[no-untyped-def]
    return bare(profile="development", auth=identity().settings() | {"hs256_secret": SECRET})


def test_every_page_is_the_shell_with_the_strict_policy(bare: Bare) -> None:
    client = bare()
    for page in PAGES:
        response = client.get(f"/dashboards/{page}")
        assert response.status_code == 200
        assert response.text == (STATIC / "index.html").read_text()
        assert response.headers["content-security-policy"].startswith("default-src 'self'")
        assert "unsafe-inline" not in response.headers["content-security-policy"]
    home = client.get("/dashboards", follow_redirects=False)
    assert (home.status_code, home.headers["location"]) == (307, "/dashboards/customers")
    assert client.get("/dashboards/nothing").status_code == 404


def test_no_page_loads_anything_from_another_host() -> None:
    """Every script, style and import of the pages' own files is a path on the gateway."""
    sources = [*STATIC.rglob("*.html"), *STATIC.rglob("*.js"), *STATIC.rglob("*.css")]
    assert sources
    for path in sources:
        text = path.read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), path
        assert not re.search(r"""(import|from)\s*\(?\s*["'](https?:)?//""", text), path
        assert "url(http" not in text, path


def test_every_module_a_page_imports_exists() -> None:
    """A page's broken import is a blank page: each relative import resolves to a file."""
    for page in PAGES:  # the shell imports pages/<page>.js by name
        assert (STATIC / "js" / "pages" / f"{page}.js").is_file(), page
    for module in (STATIC / "js").rglob("*.js"):
        for target in re.findall(r"""from\s+['"](\.{1,2}/[^'"]+)['"]""", module.read_text()):
            assert (module.parent / target).resolve().is_file(), f"{module}: {target}"
    shell = (STATIC / "index.html").read_text() + (STATIC / "graphiql.html").read_text()
    for asset in re.findall(r"""(?:src|href)="(/dashboards/[^"]+)\"""", shell):
        if asset.startswith("/dashboards/vendor/"):
            assert asset.removeprefix("/dashboards/vendor/") in VENDOR, asset
        elif asset.startswith("/dashboards/static/"):
            assert (STATIC / asset.removeprefix("/dashboards/static/")).is_file(), asset
        else:  # the navigation
            assert asset.removeprefix("/dashboards/") in PAGES, asset


@pytest.mark.skipif(not NODE_MODULES.is_dir(), reason="npm ci --prefix dashboards has not run")
def test_the_pinned_packages_are_served_by_name_only(bare: Bare) -> None:
    client = bare()
    for name, relative in VENDOR.items():
        response = client.get(f"/dashboards/vendor/{name}")
        assert response.status_code == 200, name
        assert response.content == (NODE_MODULES / relative).read_bytes()
        kind = "text/css" if name.endswith(".css") else "javascript"
        assert kind in response.headers["content-type"], name
    unknown = client.get("/dashboards/vendor/package.json")
    assert unknown.status_code == 404
    assert unknown.json()["errors"][0]["extensions"] == {"code": "NOT_FOUND"}
    for beyond in ("react%2Fpackage.json", "..%2F..%2Fweb.py", "../web.py"):
        assert client.get(f"/dashboards/vendor/{beyond}").status_code == 404, beyond


def test_the_pages_learn_the_persisted_operations_by_name(bare: Bare) -> None:
    published = bare().get("/dashboards/operations.json").json()
    manifest = json.loads(MANIFEST.read_text())["operations"]
    fields = ("id", "type", "body")
    assert published == {o["name"]: {k: o[k] for k in fields} for o in manifest}
    assert {"CustomerPage", "CustomerFinance", "RequestCredit", "ApproveCredit"} <= set(published)


def test_production_has_no_development_sign_in_and_no_graphiql(bare: Bare) -> None:
    client = bare()
    assert client.get("/dashboards/config.json").json() == {
        "developmentSignIn": False,
        "roles": [],
        "graphiql": False,
    }
    refused = client.post("/dashboards/session", json={"role": "finance_approver"})
    assert refused.status_code == 404
    assert refused.json()["errors"][0]["extensions"] == {"code": "NOT_FOUND"}
    assert "eyJ" not in refused.text  # no JWT
    assert client.get("/graphiql").status_code == 404


def test_the_development_sign_in_mints_a_token_the_gateway_verifies(bare: Bare) -> None:
    client = development(bare)
    config = client.get("/dashboards/config.json").json()
    assert config["developmentSignIn"] is True
    assert "finance_approver" in config["roles"]
    signed = client.post("/dashboards/session", json={"role": "finance_approver"})
    assert signed.status_code == 200
    assert signed.headers["cache-control"] == "no-store"
    session = signed.json()
    assert (session["subject"], session["roles"]) == ("demo-finance_approver", ["finance_approver"])
    finance = {"authorization": f"Bearer {session['token']}"}
    assert client.post("/graphql", json=CREDITS, headers=finance).json() == {
        "data": {"creditRequests": {"totalCount": 0}}
    }
    agent = client.post("/dashboards/session", json={"role": "support_agent"}).json()
    refused = client.post(
        "/graphql", json=AUDIT, headers={"authorization": f"Bearer {agent['token']}"}
    )
    assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_the_development_sign_in_refuses_what_is_not_a_role(bare: Bare) -> None:
    client = development(bare)
    for body in ({"role": "root"}, {}, ["viewer"]):
        refused = client.post("/dashboards/session", json=body)
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT"}
    text = client.post("/dashboards/session", content=b"role=viewer")
    assert text.status_code == 415


def test_graphiql_in_development_is_the_local_page(bare: Bare) -> None:
    client = development(bare)
    for path in ("/graphiql", "/graphql"):
        page = client.get(path, headers={"accept": "text/html"})
        assert page.status_code == 200, path
        assert page.text == (STATIC / "graphiql.html").read_text()
        policy = page.headers["content-security-policy"]
        assert "script-src" not in policy  # scripts: default-src 'self' alone
        assert "unpkg" not in policy


def test_an_installed_gateway_carries_every_file_it_serves() -> None:
    """A wheel (the image's install) holds the package data pyproject.toml names: every
    front-end file the gateway serves must be in it."""
    pyproject = tomllib.loads((STATIC.parents[1] / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]["dashboards"]
    for relative in VENDOR.values():
        assert any(fnmatch(f"node_modules/{relative}", pattern) for pattern in data), relative
