"""Change feeds: the systems that send no webhooks (NetSuite, Salesforce) are polled with
their connector's ``changes(since)``, each from a watermark stored per system.

A poll reads batch after batch (at most ``MAX_BATCHES``) from the watermark; each change
becomes a canonical event (``canonical.from_change``) that goes through the intake like a
webhook's (inbox and outbox, de-duplicated, processed: the cache forgets what it names), and
the watermark moves to a batch's cursor only once that batch's events are stored. A poll
that fails keeps its watermark and records the error; the next poll resumes from the
watermark, and a window read twice gives the same event ids, which the inbox holds once.

A system polled for the first time starts from its changes now, not from its history: the
first poll walks to the current cursor and stores it, storing no events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors.errors import GatewayError
from connectors.models import SystemName
from gateway.data.registry import Registry
from gateway.events.canonical import from_change
from gateway.events.intake import Intake
from gateway.storage.tables import ChangeFeedWatermark
from gateway.telemetry.tracing import tracer

log = logging.getLogger("opsgraph.events")

# The systems whose changes are polled: they deliver no webhooks.
POLLED = (SystemName.ERP, SystemName.CRM)
# Batches read in one poll of one system; the rest waits for the next poll.
MAX_BATCHES = 20


@dataclass(frozen=True)
class Polled:
    """What one poll of one system did."""

    system: SystemName
    stored: int  # events new to the inbox
    cursor: str | None  # the watermark after the poll
    error: str | None = None  # why it stopped early; the watermark is where it got to


class ChangeFeeds:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        registry: Registry,
        intake: Intake,
        systems: Sequence[SystemName] = POLLED,
    ) -> None:
        self.sessions = sessions
        self.registry = registry
        self.intake = intake
        self.systems = [s for s in systems if s in registry.systems]

    async def poll(self, system: SystemName) -> Polled:
        """Reads ``system``'s changes since its watermark into the inbox."""
        connector = self.registry.get(system)
        async with self.sessions() as session:
            mark = await session.get(ChangeFeedWatermark, system.value)
        cursor = None if mark is None else mark.cursor
        baseline = mark is None
        stored = 0
        try:
            for _ in range(MAX_BATCHES):
                batch = await connector.changes(cursor)
                if not baseline:
                    for change in batch.events:
                        received = await self.intake.store(system, from_change(change))
                        stored += not received.duplicate
                cursor = batch.cursor
                await self._save(system, cursor, None)
                if not batch.has_more:
                    break
        except GatewayError as failed:
            log.warning("change feed of %s stopped at %r: %s", system.value, cursor, failed)
            await self._save(system, cursor, f"{failed.code}: {failed.message}")
            return Polled(system, stored, cursor, failed.code)
        if baseline:
            log.info("change feed of %s starts at %r", system.value, cursor)
        return Polled(system, stored, cursor)

    async def poll_all(self) -> list[Polled]:
        polled = []
        for system in self.systems:
            # A trace per poll: the events it finds are processed in it.
            with tracer.start_as_current_span(
                f"change_feed {system.value}", attributes={"connector.system": system.value}
            ):
                polled.append(await self.poll(system))
        return polled

    async def poll_forever(self, interval_s: float) -> None:
        """``poll_all`` every ``interval_s`` until cancelled, the first ``interval_s`` after
        start (a process starting is busy enough, and a restart loop must not poll the
        systems in a loop of its own)."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.poll_all()
            except Exception:  # a round that fails is the next round's to retry
                log.exception("polling the change feeds failed")

    async def _save(self, system: SystemName, cursor: str | None, error: str | None) -> None:
        """The watermark ``cursor`` (unchanged, when None: nothing was read yet), and the
        poll's error or none."""
        async with self.sessions.begin() as session:
            mark = await session.get(ChangeFeedWatermark, system.value)
            if mark is None:
                if cursor is None:
                    return
                session.add(ChangeFeedWatermark(system=system.value, cursor=cursor, error=error))
                return
            if cursor is not None:
                mark.cursor = cursor
            mark.error = error
            mark.polled_at = datetime.now(UTC)
