"""Webhook intake: a delivery is proved, stored, then processed.

1. **Proved** with the vendor's own scheme (Stripe's signature through the Stripe SDK's
   verifier, Zendesk's HMAC over timestamp and body), both with a 300 s tolerance. A bad
   signature, an old timestamp, a body that is not an event: 400, written to the audit log
   (``webhook.rejected``), and nothing stored.
2. **Stored** before the answer: the canonical event (``gateway.events.canonical``) in the
   inbox (``inbound_events``, unique by source and event id) and in the outbox, for the
   stream, in one transaction. A delivery the inbox already holds (a vendor's retry, a
   replayed request) is answered 200 and stored or processed nothing again. A database
   that cannot take it: 503, and the vendor delivers again.
3. **Processed**: the entity cache forgets each record the event names (and the list of its
   parent that holds it) as its owner answered it, so the next read asks the owner; then
   the event is marked processed, and subscribers hear of it (``gateway.events.broadcast``):
   of the event, and of each customer whose records it names (``customerUpdated``).
   An event stored by a process that died before processing it is processed by the next
   ``process_pending`` round (``Services``' background loop).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloudevents.http import CloudEvent
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors.billing import webhooks as billing
from connectors.errors import GatewayError, WebhookRejected
from connectors.models import ChangeEvent, ObjectKind, SystemName
from connectors.support import webhooks as support
from gateway.data.audit import AuditLog, Operation
from gateway.data.crosswalk import Crosswalk
from gateway.data.reads import Reader
from gateway.events.broadcast import CUSTOMERS, EVENTS, Broadcast
from gateway.events.canonical import canonical, changes_of, restored, stored
from gateway.storage.tables import InboundEvent, OutboxMessage

log = logging.getLogger("opsgraph.events")

TOLERANCE_S = 300
# The outbox topic of canonical events, which the relay moves to the stream.
OUTBOX_TOPIC = "events"
PENDING_BATCH = 100

Verify = Callable[[bytes, Mapping[str, str], str], dict[str, Any]]


def _verify_billing(body: bytes, headers: Mapping[str, str], secret: str) -> dict[str, Any]:
    return billing.verify(body, headers.get("stripe-signature", ""), secret, TOLERANCE_S)


def _verify_support(body: bytes, headers: Mapping[str, str], secret: str) -> dict[str, Any]:
    signature = headers.get(support.SIGNATURE_HEADER.lower(), "")
    timestamp = headers.get(support.TIMESTAMP_HEADER.lower(), "")
    return support.verify(body, signature, timestamp, secret, TOLERANCE_S)


# The systems that deliver webhooks; NetSuite and Salesforce are polled (change feeds).
VERIFIERS: dict[SystemName, Verify] = {
    SystemName.BILLING: _verify_billing,
    SystemName.SUPPORT: _verify_support,
}


@dataclass(frozen=True)
class Received:
    """What became of a delivery that was proved."""

    event_id: str
    type: str
    duplicate: bool  # the inbox held it already: nothing was done again


class Intake:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        reader: Reader,
        audit: AuditLog,
        secrets: Mapping[SystemName, str],
        broadcast: Broadcast | None = None,
        crosswalk: Crosswalk | None = None,
    ) -> None:
        self.sessions = sessions
        self.reader = reader
        self.audit = audit
        self.broadcast = broadcast
        self.crosswalk = crosswalk
        # Only the systems given a webhook secret take deliveries.
        self.secrets = {s: secret for s, secret in secrets.items() if secret and s in VERIFIERS}

    def accepts(self, system: SystemName) -> bool:
        return system in self.secrets

    async def receive(
        self, system: SystemName, body: bytes, headers: Mapping[str, str]
    ) -> Received:
        """Proves, stores and processes one delivery. Raises ``WebhookRejected`` (audited)
        for one that is not proved or not an event."""
        try:
            event = canonical(system, VERIFIERS[system](body, headers, self.secrets[system]))
        except WebhookRejected as refused:
            self._rejected(system, refused)
            raise
        return await self.store(system, event)

    async def store(self, system: SystemName, event: CloudEvent) -> Received:
        """Stores a canonical event (a proved delivery's, a change feed's) once, and
        processes it."""
        payload = stored(event)
        inbox = InboundEvent(
            source=system.value, event_id=event["id"], type=event["type"], payload=payload
        )
        try:
            async with self.sessions.begin() as session:
                session.add(inbox)
                key = f"{system.value}:{event['id']}"
                session.add(OutboxMessage(topic=OUTBOX_TOPIC, key=key, payload=payload))
        except IntegrityError:
            return Received(event["id"], event["type"], duplicate=True)
        await self._process(inbox.id, event)
        return Received(event["id"], event["type"], duplicate=False)

    async def process_pending(self) -> int:
        """Processes the events stored and not processed (their process died in between);
        answers how many."""
        async with self.sessions() as session:
            pending = list(
                await session.execute(
                    select(InboundEvent.id, InboundEvent.payload)
                    .where(InboundEvent.processed_at.is_(None))
                    .order_by(InboundEvent.id)
                    .limit(PENDING_BATCH)
                )
            )
        for row_id, payload in pending:
            await self._process(row_id, restored(payload))
        return len(pending)

    async def process_forever(self, interval_s: float) -> None:
        """``process_pending`` every ``interval_s`` until cancelled; a failed round is
        logged, and the next one tries again."""
        while True:
            try:
                await self.process_pending()
            except Exception:
                log.exception("processing stored events failed")
            await asyncio.sleep(interval_s)

    async def _process(self, row_id: int, event: CloudEvent) -> None:
        """Processes the inbox's row ``row_id``, which holds ``event``: the cache forgets
        what it names, the row is marked, and subscribers are told, by whichever process
        marks it (another may be processing it too: the pending round)."""
        changes = changes_of(event)
        try:
            for change in changes:
                # The cache holds each kind as its owner answers it; what another system
                # says of a kind it does not own (Zendesk's organizations) is not cached.
                if self.reader.owner(change.kind) is change.system:
                    await self.reader.invalidate(change.kind, change.id, parent=change.parent)
        except GatewayError as failed:  # the cache is down: the next round tries again
            log.warning("event %s %s not processed: %s", event["source"], event["id"], failed)
            return
        async with self.sessions.begin() as session:
            marked = await session.execute(
                update(InboundEvent)
                .where(InboundEvent.id == row_id, InboundEvent.processed_at.is_(None))
                .values(processed_at=datetime.now(UTC))
            )
        if self.broadcast is not None and getattr(marked, "rowcount", 0) == 1:
            notice = {k: event.get(k) for k in ("id", "source", "type", "subject", "time")}
            await self.broadcast.publish(EVENTS, notice)
            for customer in await self._customers(changes):
                await self.broadcast.publish(CUSTOMERS, {"customer": customer})

    async def _customers(self, changes: list[ChangeEvent]) -> list[str]:
        """The opsgraph ids of the customers whose records ``changes`` name: the record
        itself for a customer's own (an account, a balance), else the parent whose list
        holds it (a subscription's billing customer, a case's organization)."""
        if self.crosswalk is None:
            return []
        named = {(c.system, c.parent or c.id) for c in changes if c.kind is not ObjectKind.PLAN}
        found = []
        for system, external_id in sorted(named):
            identity = await self.crosswalk.by_external_id(system, external_id, entities=None)
            if identity is not None:
                found.append(identity.id)
        return sorted(set(found))

    def _rejected(self, system: SystemName, refused: WebhookRejected) -> None:
        log.info("webhook from %s rejected: %s", system.value, refused.message)
        operation = Operation(f"webhook/{system.value}", "webhook")
        self.audit.record(
            "webhook.rejected",
            None,
            operation,
            {"outcome": refused.code, "reason": refused.message},
            object_kind="webhook",
            object_id=system.value,
        )
