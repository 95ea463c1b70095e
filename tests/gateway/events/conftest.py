"""Fixtures of the events tests."""

from tests.gateway.telemetry.spans import spans  # noqa: F401 - the spans recorded
