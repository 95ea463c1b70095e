"""The browser tests' world: the real demo (``opsgraph demo``) in a process of its own, and
Debian's Chromium driven by Playwright. Every request a page makes to another host is
refused and recorded, since the pages must work with no internet; screenshots are saved
under ``$OPSGRAPH_ARTIFACTS/screenshots`` (``artifacts/`` at the repository's root unless
set) for CI to keep.

Chromium is installed by ``make`` (``/usr/bin/chromium``, Debian's package; never
``playwright install``, which downloads a build of its own). Without it the tests fail under
``CI=true``, as for an unreachable service, and skip elsewhere.

The demo and the browser live for the package (``tests/browser``) only: Playwright's sync
API runs its own event loop, and is closed before the async tests elsewhere run theirs.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Route,
    expect,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError

from gateway.auth import dev_tokens
from gateway.auth.scopes import Role
from gateway.demo import SANDBOX_OFFSET
from tests.conftest import unavailable
from tests.world import cli_env, free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("OPSGRAPH_ARTIFACTS") or ROOT / "artifacts")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# The demo's own defaults: the world a newcomer sees after `make demo`.
CUSTOMERS, SEED = 12, 7
# The gateway's port and its four sandboxes' (gateway.demo).
DEMO_PORTS = (0, *range(SANDBOX_OFFSET, SANDBOX_OFFSET + 4))
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
# Where the pages must be usable (issue #13): a laptop and a phone.
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
}
# How long a page may take to settle against the demo (Playwright's default is 30 s).
TIMEOUT_MS = 15_000
# sessionStorage's key for a signed-in page: {"token", "subject", "roles"}, as
# POST /dashboards/session answers it.
SESSION_KEY = "opsgraph.session"

expect.set_options(timeout=TIMEOUT_MS)


@dataclass(frozen=True)
class Demo:
    """The running demo: its URL and its state directory."""

    url: str
    state_dir: Path

    def token(self, role: Role) -> str:
        """The development token ``make demo`` wrote for ``role``."""
        tokens: dict[str, str] = json.loads((self.state_dir / "tokens.json").read_text())
        return tokens[role.value]

    def manifest(self) -> dict[str, Any]:
        """What the demo seeded (``seed-manifest.json``): customers and their external ids,
        every system's records, the discrepancies planted."""
        seeded: dict[str, Any] = json.loads((self.state_dir / "seed-manifest.json").read_text())
        return seeded

    def breached_customer(self) -> str:
        """The opsgraph id of the customer whose support case breached its SLA."""
        seeded = self.manifest()
        breached = {
            record["organization_id"]
            for record in seeded["records"]["support"]
            if record["@type"] == "Case" and record["sla_breached"]
        }
        (customer,) = (c for c in seeded["customers"] if c["external_ids"]["support"] in breached)
        return str(customer["id"])


@dataclass
class Tab:
    """A browser context with what its pages did that a test asserts on: every request to
    another host (refused) and every console error or uncaught exception."""

    context: BrowserContext
    off_host: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.context.route("**/*", self._route)

    def new_page(self) -> Page:
        page = self.context.new_page()
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        return page

    def sign_in(self, demo: Demo, role: Role) -> None:
        """Store a session for ``role`` in every page this context opens on the demo before
        its scripts run, as the dashboards' sign-in would: for tests whose subject is not
        the sign-in itself."""
        session = {
            "token": demo.token(role),
            "subject": dev_tokens.subject(role),
            "roles": [role.value],
        }
        origin, key, value = demo.url, SESSION_KEY, json.dumps(session)
        self.context.add_init_script(
            f"if (location.origin === {json.dumps(origin)}) "
            f"sessionStorage.setItem({json.dumps(key)}, {json.dumps(value)});"
        )

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({message.location.get('url')})")

    def _route(self, route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            self.off_host.append(f"{route.request.method} {route.request.url}")
            route.abort("blockedbyclient")


Tabs = Callable[..., Tab]
# Whether a test's own body failed, for its fixtures to see at teardown.
FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[None]:
    report: pytest.TestReport = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


@pytest.fixture(scope="package")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """``opsgraph demo`` on free ports, ready; stopped with one SIGINT at the end, as
    Ctrl-C would. Its output is kept as the artifact ``demo.log``."""
    state_dir = tmp_path_factory.mktemp("demo")
    port = free_port(DEMO_PORTS)
    url = f"http://127.0.0.1:{port}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / "demo.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "demo", "--state-dir", str(state_dir),
             "--customers", str(CUSTOMERS), "--seed", str(SEED), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=cli_env(COLUMNS="200"),
            cwd=ROOT,
        )  # fmt: skip
        try:
            if not wait_ready(url, process):
                pytest.fail(
                    f"the demo did not become ready:\n{log_path.read_text()[-3000:]}",
                    pytrace=False,
                )
            yield Demo(url, state_dir)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    if not CHROMIUM.exists():
        missing = FileNotFoundError(f"{CHROMIUM} is missing; `make pytest` installs it")
        unavailable("Chromium", missing)
    try:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
    except PlaywrightError as exc:
        unavailable("Chromium", exc)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def tabs(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Tabs]:
    """Opens browser contexts (``tabs()`` at 1280x800, ``tabs(phone=True)`` at 390x844 as a
    phone), each its own cookies and storage, as a second person signing in would need;
    closed after the test, once every page of a failed test is saved as a screenshot."""
    opened: list[Tab] = []

    def open_tab(*, phone: bool = False) -> Tab:
        context = browser.new_context(**(PHONE if phone else DESKTOP))
        context.set_default_timeout(TIMEOUT_MS)
        opened.append(Tab(context))
        return opened[-1]

    yield open_tab
    failed = request.node.stash.get(FAILED, False)
    for t, tab in enumerate(opened):
        for p, page in enumerate(tab.context.pages if failed else ()):
            shot(page, f"failed-{request.node.name}-{t}-{p}")
        tab.context.close()


def shot(page: Page, name: str) -> Path:
    """A full-page screenshot saved as ``screenshots/<name>.png`` among the artifacts."""
    path = ARTIFACTS / "screenshots" / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    page.screenshot(path=path, full_page=True)
    return path
