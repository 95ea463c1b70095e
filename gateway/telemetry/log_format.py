"""Where log records go and how each becomes a line: ``configure_logging`` gives the root
logger one handler on stderr, which uvicorn's and opsgraph's loggers (``opsgraph.*``) reach.

``json`` writes one object a line: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
``message``, the ``trace_id`` and ``span_id`` of the span current when the record was made
(what finds a line from a trace and back), ``exception`` with its traceback, and any
``extra=`` fields. ``text`` writes the same in one readable line.

Nothing a line shows may be a secret, whoever wrote the record: each line is redacted
(``Redactor``) of the settings' secrets and of credentials by their shape (bearer tokens,
JWTs, opsgraph API keys). Written here rather than taken from python-json-logger: the
record-to-object mapping is a dozen lines, and the redaction and the trace ids, which are
the point, would have to be added to it anyway.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from gateway.settings import LogFormat, Settings

REDACTED = "[REDACTED]"
# Credentials by their shape, whatever their source: "Bearer <anything>", a JWT, the
# secret half of an opsgraph API key (og_<id>_<secret>: the id stays, to say which key).
_SHAPES = (
    # RFC 6750's b64token (and Basic's base64): never a quote or a backslash, so a JSON
    # line stays JSON.
    (re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/-]+=*"), r"\1 " + REDACTED),
    (re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]*"), REDACTED),
    (re.compile(r"\b(og_[0-9a-f]{16})_[\w-]{20,}"), r"\1_" + REDACTED),
)
# Attributes every LogRecord has; any other is an ``extra=`` field. uvicorn adds its
# message again with terminal colours.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}
# uvicorn's loggers, which it gives handlers of their own.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
# A secret shorter than this is not looked for: it would redact ordinary words.
MIN_SECRET = 6


class Redactor:
    """Replaces each of ``secrets`` (and what looks like a credential) in a text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        kept = {s for s in secrets if len(s) >= MIN_SECRET}
        # As a JSON line spells them too (a quote or a backslash escaped).
        kept |= {json.dumps(s)[1:-1] for s in kept}
        # Longest first, so that a secret containing another is replaced whole.
        found = sorted(kept, key=len, reverse=True)
        self._secrets = re.compile("|".join(map(re.escape, found))) if found else None

    def __call__(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub(REDACTED, text)
        for shape, replacement in _SHAPES:
            text = shape.sub(replacement, text)
        return text


def trace_ids() -> tuple[str, str] | None:
    """The current span's trace and span ids, in hex; None outside a recorded span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


class JsonFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ids = trace_ids()
        if ids is not None:
            line["trace_id"], line["span_id"] = ids
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        for name, value in record.__dict__.items():
            if name not in _STANDARD and name not in line:
                line[name] = value
        return self.redact(json.dumps(line, ensure_ascii=False, default=str))


class TextFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s")
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = trace_ids()
        if ids is not None:
            text += f" trace_id={ids[0]} span_id={ids[1]}"
        return self.redact(text)


def formatter(format: LogFormat, secrets: Iterable[str] = ()) -> logging.Formatter:
    redact = Redactor(secrets)
    return JsonFormatter(redact) if format is LogFormat.JSON else TextFormatter(redact)


def configure_logging(settings: Settings) -> None:
    """One handler on the root logger, in the settings' format and level, for opsgraph's
    loggers and uvicorn's alike. Call it once the uvicorn servers are made: making one
    gives uvicorn's loggers handlers of their own, which this takes away."""
    # What no line shows is not gathered for each record (the logging HOWTO's
    # "Optimization"): the caller's file and line, the thread and the process. With the
    # access log on, a record is made for every request.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(settings.log_format, settings.secrets()))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.telemetry.log_level)
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
