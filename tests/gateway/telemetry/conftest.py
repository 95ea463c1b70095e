"""Fixtures of the telemetry tests (traces, metrics, logs)."""

from tests.gateway.telemetry.spans import spans  # noqa: F401 - the spans recorded
