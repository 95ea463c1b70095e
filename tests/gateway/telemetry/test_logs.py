"""Log lines: JSON with the trace and span ids of the span they were written in, text in
the development profile, and never a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.settings import LogFormat, Profile, load_settings
from gateway.telemetry.log_format import (
    REDACTED,
    UVICORN_LOGGERS,
    configure_logging,
    formatter,
)
from tests.gateway.telemetry.spans import Spans
from tests.gateways import AUTH, Served

CONNECTOR_SECRET = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
WEBHOOK_SECRET = "whsec_Kp2yQ8LdVr0sZ"
DB_PASSWORD = "pg-pass-9271"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbm5hIn0.Zm9vYmFyYmF6cXV4"
API_KEY = "og_0123456789abcdef_c2VjcmV0LXNlY3JldC1zZWNyZXQ"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the root logger writes from here on, as JSON lines (the gateway served in a
    thread logs through it too)."""
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(formatter(LogFormat.JSON))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield written
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def parsed(written: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in written.getvalue().splitlines()]


def test_a_json_line_written_in_a_request_carries_its_trace_and_span(
    served: Served, spans: Spans, lines: io.StringIO
) -> None:
    url = served(telemetry={"enabled": True})
    spans.clear()
    query = 'query Missing { customer(id: "cust_nobody") { name } }'
    answer = httpx.post(f"{url}/graphql", json={"query": query}, headers=AUTH)
    assert answer.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    spans.wait(lambda found: found.named("POST /graphql"))

    (line,) = [line for line in parsed(lines) if line["logger"] == "opsgraph.errors"]
    (operation,) = spans.named("query Missing")
    assert line["level"] == "INFO" and line["message"].startswith('code="NOT_FOUND"')
    assert line["trace_id"] == f"{operation.context.trace_id:032x}"
    assert line["span_id"] == f"{operation.context.span_id:016x}"


def test_a_line_outside_any_span_has_no_trace(lines: io.StringIO) -> None:
    logging.getLogger("opsgraph.test").warning("idle %s", "now")
    (line,) = parsed(lines)
    assert set(line) == {"time", "level", "logger", "message"}
    assert (line["level"], line["logger"], line["message"]) == (
        "WARNING",
        "opsgraph.test",
        "idle now",
    )


def _settings() -> Any:
    return load_settings(
        database_url=f"postgresql+asyncpg://opsgraph:{DB_PASSWORD}@127.0.0.1/opsgraph",
        billing={"base_url": "http://127.0.0.1:1", "secret": CONNECTOR_SECRET},
        support={
            "base_url": "http://127.0.0.1:2",
            "secret": "zendesk-token-123",
            "webhook_secret": WEBHOOK_SECRET,
        },
    )


@pytest.mark.parametrize("format", [LogFormat.JSON, LogFormat.TEXT])
def test_no_secret_reaches_a_line(format: LogFormat) -> None:
    settings = _settings()
    secrets = settings.secrets()
    assert sorted(secrets) == sorted(
        [CONNECTOR_SECRET, "zendesk-token-123", WEBHOOK_SECRET, DB_PASSWORD]
    )
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(formatter(format, secrets))
    log = logging.getLogger("opsgraph.test.secrets")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("calling billing with %s", CONNECTOR_SECRET)
        log.warning("headers: %s", {"Authorization": f"Bearer {JWT}", "X-Api-Key": API_KEY})
        log.warning("signed with %r", WEBHOOK_SECRET, extra={"dsn": settings.database_url})
        try:
            raise RuntimeError(f"zendesk refused zendesk-token-123 (Basic {CONNECTOR_SECRET})")
        except RuntimeError:
            log.exception("upstream failed")
    finally:
        log.removeHandler(handler)
        log.propagate = True

    text = written.getvalue()
    for secret in [*secrets, JWT, "c2VjcmV0LXNlY3JldC1zZWNyZXQ"]:
        assert secret not in text
    assert text.count(REDACTED) >= 7
    assert "og_0123456789abcdef_" + REDACTED in text  # which key it was, not the key
    if format is LogFormat.JSON:
        assert [json.loads(line)["level"] for line in text.splitlines()] == ["WARNING"] * 3 + [
            "ERROR"
        ]


def test_the_profile_picks_the_format() -> None:
    assert load_settings().log_format is LogFormat.JSON  # production
    development = load_settings(profile=Profile.DEVELOPMENT)
    assert development.log_format is LogFormat.TEXT
    chosen = load_settings(profile=Profile.DEVELOPMENT, telemetry={"log_format": "json"})
    assert chosen.log_format is LogFormat.JSON


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Logging as it was before the test, whatever ``configure_logging`` did to it."""
    root = logging.getLogger()
    kept = [(root, root.handlers[:], root.level, root.propagate)]
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        kept.append((logger, logger.handlers[:], logger.level, logger.propagate))
    try:
        yield
    finally:
        for logger, handlers, level, propagate in kept:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


def test_configured_logging_writes_uvicorn_and_opsgraph_lines_alike(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(_settings())
    logging.getLogger("uvicorn.error").setLevel(logging.INFO)  # as `opsgraph serve` has it

    logging.getLogger("uvicorn.error").info("Serving on http://127.0.0.1:8000")
    logging.getLogger("opsgraph.redis").warning("Redis password %s refused", DB_PASSWORD)

    written = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["logger"], line["message"]) for line in written] == [
        ("uvicorn.error", "Serving on http://127.0.0.1:8000"),
        ("opsgraph.redis", f"Redis password {REDACTED} refused"),
    ]
