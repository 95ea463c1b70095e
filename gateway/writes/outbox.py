"""Delivering the notifications the outbox holds: a CRM activity, a follow-up for the
account's customer-success manager, a comment on a support case. A workflow writes them in
the transaction of the step that decides them; delivering them never holds up an answer,
and a system that is down only delays them.

Each message is sent with a key of its own (``outbox:<id>``), so a delivery repeated after
a crash (sent, then the process died before it was marked) is applied once by its owner.
A message that fails is tried again on later rounds, ``MAX_ATTEMPTS`` times; one its owner
refuses (the case is closed) is given up at once, with the reason kept.

Only the notification topics are delivered here; the event stream of the events issue
will relay the rest of the outbox.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors.commands import CommentOnCase, LogAccountActivity, WriteCommand
from connectors.errors import GatewayError
from gateway.storage.tables import OutboxMessage
from gateway.telemetry.tracing import continued
from gateway.writes.credits import NOTIFY_CRM, NOTIFY_SUCCESS, NOTIFY_SUPPORT
from gateway.writes.pipeline import Writes

log = logging.getLogger("opsgraph.outbox")
NOTIFICATIONS = (NOTIFY_CRM, NOTIFY_SUCCESS, NOTIFY_SUPPORT)
MAX_ATTEMPTS = 10
BATCH = 50


def command_of(message: OutboxMessage) -> WriteCommand:
    given = message.payload
    if message.topic == NOTIFY_SUPPORT:
        return CommentOnCase(case_id=given["case_id"], body=given["body"], public=False)
    if message.topic in (NOTIFY_CRM, NOTIFY_SUCCESS):
        follow_up_on = given.get("follow_up_on")
        return LogAccountActivity(
            account_id=given["account_id"],
            subject=given["subject"],
            description=given["description"],
            external_ref=given["external_ref"],
            follow_up_on=date.fromisoformat(follow_up_on) if follow_up_on else None,
        )
    raise ValueError(f"no delivery for topic {message.topic!r}")


class Notifications:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], writes: Writes) -> None:
        self.sessions = sessions
        self.writes = writes

    async def deliver_due(self) -> int:
        """Sends what is waiting, oldest first; answers how many were delivered."""
        async with self.sessions() as session:
            waiting = list(
                await session.scalars(
                    select(OutboxMessage)
                    .where(
                        OutboxMessage.published_at.is_(None),
                        OutboxMessage.topic.in_(NOTIFICATIONS),
                        OutboxMessage.attempts < MAX_ATTEMPTS,
                    )
                    .order_by(OutboxMessage.id)
                    .limit(BATCH)
                )
            )
        delivered = 0
        for message in waiting:
            delivered += await self._deliver(message)
        return delivered

    async def _deliver(self, message: OutboxMessage) -> int:
        # In the trace of the step that queued it (its span a child of that step's).
        attributes: dict[str, str | int] = {"outbox.topic": message.topic, "outbox.id": message.id}
        with continued(f"outbox {message.topic}", message.traceparent, attributes):
            return await self._send(message)

    async def _send(self, message: OutboxMessage) -> int:
        try:
            await self.writes.apply(command_of(message), f"outbox:{message.id}")
        except GatewayError as error:
            given_up = not error.retryable
            log.warning(
                "outbox %s (%s) not delivered%s: %s",
                message.id,
                message.topic,
                ", given up" if given_up else "",
                error.message,
            )
            await self._mark(message.id, delivered=False, given_up=given_up)
            return 0
        await self._mark(message.id, delivered=True, given_up=False)
        return 1

    async def _mark(self, id_: int, *, delivered: bool, given_up: bool) -> None:
        async with self.sessions.begin() as session:
            row = await session.get(OutboxMessage, id_)
            if row is None:
                return
            row.attempts += 1
            if delivered:
                row.published_at = datetime.now(UTC)
            elif given_up:
                row.attempts = max(row.attempts, MAX_ATTEMPTS)

    async def run_forever(self, interval_s: float) -> None:
        while True:
            try:
                await self.deliver_due()
            except Exception:  # a round that fails is the next round's to retry
                log.exception("outbox delivery round failed")
            await asyncio.sleep(interval_s)
