"""Refusals benchmark: how long a served gateway takes to refuse abusive requests over real
HTTP, against the floor every request pays (``{ __typename }`` as a viewer) in the same run.

    .venv/bin/python -m bench.refusals [--repeat 7] [--unrefused]

A gateway on a fresh SQLite database and no systems of record is served by uvicorn on a
loopback port, with its default limits except the per-principal request rate and cost
budget, raised so that the benchmark does not refuse itself. Each request is sent
``--repeat`` times; the table gives the answer's status and ``errors[0].extensions.code``,
the median and the slowest client-side time, the bytes sent and answered, and how far the
process's peak RSS (gateway and client: one process) rose while the request was sent.
Every document is made unique by a numbered comment, so no parser or validation cache
answers for a repetition, as none would for an attacker who varies their documents.

``--unrefused`` starts a second gateway with every ``max_*`` limit raised to the most
``LimitSettings`` allows and sends it the requests that then fit: the "unrefused" columns
show what a refusal saves. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import resource
import secrets
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from annotated_types import Le
from rich.console import Console
from rich.table import Table

from gateway.app import create_app
from gateway.auth import dev_tokens
from gateway.auth.scopes import Role
from gateway.settings import LimitSettings, Settings, load_settings
from gateway.storage.migrate import upgrade

HOST = "127.0.0.1"
# The benchmark's own requests must not spend the viewer's windows.
UNLIMITED_RATES = {"rate_limit": "1000000/minute", "cost_budget": "1000000000/minute"}
# The most every limit may be; ``default_list_size`` is an assumption, not a limit.
MOST = {
    name: bound.le
    for name, setting in LimitSettings.model_fields.items()
    if name.startswith("max_")
    for bound in setting.metadata
    if isinstance(bound, Le)
}
ENTITIES = "query($r: [_Any!]!) { _entities(representations: $r) { __typename } } # {n}"


@dataclass(frozen=True)
class Attack:
    """One request: ``document`` with ``{n}`` for the repetition's number (in a comment) and
    ``variables`` as JSON text. ``unrefused``: also sent to the gateway whose limits are all
    at their most."""

    name: str
    document: str
    variables: str | None = None
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)
    anonymous: bool = False
    unrefused: bool = False

    def body(self, n: int) -> bytes:
        # Spliced, not held as objects: 100,000 representations as dicts would sit in the
        # collector's oldest generation, and the gateway shares this process's collector.
        query = json.dumps(self.document.replace("{n}", str(n)))
        variables = "" if self.variables is None else f', "variables": {self.variables}'
        return f'{{"query": {query}{variables}}}'.encode()


@dataclass
class Figures:
    status: int
    code: str
    timings_ms: list[float]
    sent: int
    answered: int
    rss_kb: int


def representations(count: int) -> str:
    return json.dumps({"r": [{"__typename": "Customer", "id": f"c{i}"} for i in range(count)]})


FLOOR = Attack("{ __typename } (the floor)", "{ __typename } # {n}", unrefused=True)


def attacks() -> list[Attack]:
    floor = FLOOR.document
    aliases = " ".join(f"a{i}: __typename" for i in range(10_000))
    directives = " @skip(if: false)" * 1000
    return [
        FLOOR,
        Attack("10,000 aliases", f"{{ {aliases} }} # {{n}}", unrefused=True),
        Attack("6 MB query", "{ __typename } # {n} " + "x" * 6_000_000),
        Attack("1,000 directives on one field", f"{{ __typename{directives} }} # {{n}}"),
        Attack("100,000 _entities representations", ENTITIES, representations(100_000)),
        Attack("201 _entities representations", ENTITIES, representations(201), unrefused=True),
        Attack("fields 1,000 deep", "{ a" * 1000 + " }" * 1000 + " # {n}", unrefused=True),
        Attack("20,000 junk tokens", "{ " + "x " * 20_000 + "} # {n}"),
        Attack("cross-site GET (no preflight)", "{ __typename }", method="GET"),
        Attack("foreign Host header", floor, headers={"host": "attacker.example"}),
        Attack("anonymous (no Authorization)", floor, anonymous=True),
    ]  # fmt: skip


def settings(database_url: str, secret: str, limits: dict[str, object]) -> Settings:
    """A development gateway with no systems of record: ``{ __typename }`` and refusals
    never call one."""
    return load_settings(
        database_url=database_url,
        profile="development",
        auth={"hs256_secret": secret},
        limits={**limits, **UNLIMITED_RATES},
        # No systems to probe; the probe's first round would run during the first requests.
        health_interval_s=3600,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def served(gateway: Settings) -> Iterator[str]:
    """``gateway`` served from a background thread until the block ends; yields its URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(gateway), host=HOST, port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the gateway did not start")
        time.sleep(0.01)
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def send(client: httpx.Client, url: str, token: str, attack: Attack, body: bytes) -> httpx.Response:
    headers = {**attack.headers}
    if not attack.anonymous:
        headers["authorization"] = f"Bearer {token}"
    if attack.method == "GET":
        return client.get(f"{url}/graphql", params={"query": attack.document}, headers=headers)
    headers["content-type"] = "application/json"
    return client.post(f"{url}/graphql", content=body, headers=headers)


def measure(client: httpx.Client, url: str, token: str, attack: Attack, repeat: int) -> Figures:
    # Encoded before the clock starts: the client's JSON is not the gateway's time.
    bodies = [attack.body(n) for n in range(repeat)]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    timings: list[float] = []
    for body in bodies:
        started = time.perf_counter()
        response = send(client, url, token, attack, body)
        timings.append((time.perf_counter() - started) * 1000)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak
    return Figures(
        status=response.status_code,
        code=error_code(response),
        timings_ms=timings,
        sent=len(bodies[-1]) if attack.method == "POST" else len(str(response.request.url)),
        answered=len(response.content),
        rss_kb=grown,
    )


def error_code(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return "(not JSON)"
    return str(errors[0].get("extensions", {}).get("code", "?")) if errors else "-"


def measured(url: str, token: str, chosen: list[Attack], repeat: int) -> dict[str, Figures]:
    with httpx.Client(timeout=120) as client:
        for n in range(20):  # warm: connection, lazy imports, the first database session
            send(client, url, token, FLOOR, FLOOR.body(-1 - n))
        return {attack.name: measure(client, url, token, attack, repeat) for attack in chosen}


def size(count: int) -> str:
    for unit, scale in (("MB", 1_000_000), ("kB", 1000)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def main(repeat: int, unrefused: bool) -> None:
    console = Console()
    chosen = attacks()
    secret = secrets.token_hex(32)
    token = dev_tokens.mint(secret, Role.VIEWER)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'opsgraph.db'}"
        upgrade(url)
        with served(settings(url, secret, {})) as gateway:
            figures = measured(gateway, token, chosen, repeat)
        opened: dict[str, Figures] = {}
        if unrefused:
            with served(settings(url, secret, dict(MOST))) as gateway:
                opened = measured(gateway, token, [a for a in chosen if a.unrefused], repeat)

    floor = statistics.median(figures[FLOOR.name].timings_ms)
    table = Table(title=f"refusals over HTTP: {repeat} requests each, client-side ms")
    columns = ["request", "status", "code", "median", "max", "x floor", "sent", "answered"]
    columns += ["peak RSS +MB"]
    if unrefused:
        columns += ["unrefused code", "unrefused ms", "unrefused answered", "unrefused RSS +MB"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("request", "code") else "right")
    for attack in chosen:
        f = figures[attack.name]
        median = statistics.median(f.timings_ms)
        row = [
            attack.name, str(f.status), f.code, f"{median:.1f}", f"{max(f.timings_ms):.1f}",
            f"{median / floor:.1f}", size(f.sent), size(f.answered), f"{f.rss_kb / 1024:.1f}",
        ]  # fmt: skip
        if unrefused and (o := opened.get(attack.name)) is not None:
            row += [
                f"{o.status} {o.code}", f"{statistics.median(o.timings_ms):.1f}",
                size(o.answered), f"{o.rss_kb / 1024:.1f}",
            ]  # fmt: skip
        table.add_row(*row)
    console.print(table)
    console.print(
        "peak RSS +MB: how far the process's high-water mark rose while the request was sent "
        "(0: not above an earlier peak); code '-': the answer has no errors"
    )
    if unrefused:
        most = ", ".join(f"{name}={value:,}" for name, value in MOST.items())
        console.print(f"unrefused gateway: {most}", soft_wrap=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--unrefused", action="store_true", help="also time a gateway with every limit at its most"
    )
    args = parser.parse_args()
    main(args.repeat, args.unrefused)
