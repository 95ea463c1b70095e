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
   parent that holds it) as its owner answered it, so the next read asks the owner. A
   delivery's cache entries are forgotten just before it is stored, and it is stored marked
   processed, in the one transaction (forgetting first costs nothing if the store then
   fails: the next read asks the owner, who changed before it sent the event). Then
   subscribers hear of it (``gateway.events.broadcast``): of the event, and of each
   customer whose records it names (``customerUpdated``); like the broadcast itself, this
   is at most once. An event the cache could not forget (the call failed; while Redis is
   down the cache forgets in process and replays to Redis later) is stored unmarked, and
   the next ``process_pending`` round (``Services``' background loop) forgets, marks and
   tells.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from cloudevents.http import CloudEvent
from opentelemetry.trace import SpanKind
from sqlalchemy import insert as sa_insert
from sqlalchemy import select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from connectors.billing import webhooks as billing
from connectors.errors import GatewayError, WebhookRejected
from connectors.models import ObjectKind, SystemName
from connectors.support import webhooks as support
from gateway.data.audit import AuditLog, Operation
from gateway.data.crosswalk import Crosswalk
from gateway.data.detached import stop
from gateway.data.reads import Reader
from gateway.events.broadcast import CUSTOMERS, EVENTS, Broadcast
from gateway.events.canonical import canonical, changes_of, restored, stored
from gateway.storage import codec
from gateway.storage.tables import InboundEvent, OutboxMessage
from gateway.telemetry.metrics import EventOutcome, Metrics
from gateway.telemetry.tracing import TRACEPARENT, current_traceparent, tracer

log = logging.getLogger("opsgraph.events")

TOLERANCE_S = 300
# The outbox topic of canonical events, which the relay moves to the stream.
OUTBOX_TOPIC = "events"
PENDING_BATCH = 100
# The kinds whose record is the customer itself in its system (their id is the customer's
# external id there); a record of any other kind names its customer by its parent.
CUSTOMER_RECORDS = frozenset({ObjectKind.CUSTOMER, ObjectKind.ACCOUNT, ObjectKind.BALANCE})
# A stored event not marked processed this long after it arrived (the cache could not
# forget what it names) is the pending round's.
PENDING_GRACE_S = 10.0
# At most this many deliveries are written in one transaction, and on PostgreSQL at most
# this many transactions at once.
BATCH = 200
WRITERS = 2
# How long stopping waits for the events received last to be marked and told.
STOP_S = 10.0

Verify = Callable[[bytes, Mapping[str, str], str], dict[str, Any]]
# What storing an event answers: its new inbox row (None: held already), and whether the
# cache forgot what it names (the row is then marked processed).
Added = tuple[int | None, bool]


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


class StoreUnavailable(Exception):
    """The delivery could not be stored (the gateway is stopping, or the database refused
    or dropped the batch): the vendor delivers it again (503)."""


# The group commit on PostgreSQL: one statement for any batch (its rows as arrays), sent by
# asyncpg on a connection of the engine's pool. It inserts what the inbox does not hold and,
# from what that insert returns, their outbox rows: one round trip, atomic as any statement
# is, where a transaction of two inserts was four. Through SQLAlchemy, that transaction
# took 2.6 ms of client CPU for ten deliveries. Written out here: SQLAlchemy Core has no
# INSERT ... SELECT FROM unnest() of array parameters that would reach asyncpg as it is.
# The rows go in key order (see ``_write``); the outbox's, in the inbox's.
GROUP_COMMIT = f"""
WITH inbox AS (
    INSERT INTO inbound_events (source, event_id, type, payload, received_at, processed_at)
    SELECT source, event_id, type, payload::json, $5, $6
    FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::text[])
        WITH ORDINALITY AS batch(source, event_id, type, payload, n)
    ORDER BY n
    ON CONFLICT (source, event_id) DO NOTHING
    RETURNING id, source, event_id, payload
), outbox AS (
    INSERT INTO outbox (topic, key, payload, created_at, attempts, traceparent)
    SELECT $7, source || ':' || event_id, payload, $5, 0, payload ->> '{TRACEPARENT}'
    FROM inbox
    ORDER BY id
)
SELECT id, source, event_id FROM inbox
"""


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
        metrics: Metrics | None = None,
    ) -> None:
        self.sessions = sessions
        self.reader = reader
        self.audit = audit
        self.broadcast = broadcast
        self.crosswalk = crosswalk
        self.metrics = metrics or Metrics()
        self._inbox = _Inbox(sessions, self._forget)
        # Events stored processed, waiting to be told.
        self._told: asyncio.Queue[CloudEvent] = asyncio.Queue()
        self._processing: asyncio.Task[None] | None = None
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
            self.metrics.event_received(system, EventOutcome.REJECTED)
            raise
        return await self.store(system, event)

    async def store(self, system: SystemName, event: CloudEvent) -> Received:
        """Stores a canonical event (a proved delivery's, a change feed's) once, and
        processes it: the cache forgets what it names before this answers; telling
        subscribers is the processor's (``start``), else done here too."""
        traceparent = current_traceparent()
        if traceparent is not None and event.get(TRACEPARENT) is None:
            # CloudEvents' distributed tracing extension: what the event causes, wherever
            # it is processed, joins the trace of what delivered it.
            event[TRACEPARENT] = traceparent
        row_id, forgotten = await self._inbox.add(system, event)
        outcome = EventOutcome.STORED if row_id is not None else EventOutcome.DUPLICATE
        self.metrics.event_received(system, outcome)
        if row_id is None:
            return Received(event["id"], event["type"], duplicate=True)
        if forgotten:
            now = datetime.now(UTC)  # forgotten as it was stored
            self.metrics.event_processed(system.value, event["type"], now, now)
            if self._processing is not None:
                self._told.put_nowait(event)
            else:
                await self._tell([event])
        return Received(event["id"], event["type"], duplicate=False)

    def start(self) -> None:
        """Tells in batches from now on, in a task of its own."""
        if self._processing is None:
            self._processing = asyncio.create_task(self._process_told())

    async def aclose(self) -> None:
        """Stops the processor once what it was given is told."""
        processing, self._processing = self._processing, None  # stores tell for themselves
        if processing is None:
            return
        try:
            async with asyncio.timeout(STOP_S):
                await self._told.join()
        except TimeoutError:  # processed: only their notices are lost
            log.warning("telling of the events received last did not end within %gs", STOP_S)
        await stop([processing], "event telling")

    async def _process_told(self) -> None:
        while True:
            batch = [await self._told.get()]
            while not self._told.empty() and len(batch) < PENDING_BATCH:
                batch.append(self._told.get_nowait())
            try:
                await self._tell(batch)
            except Exception:  # processed: only their notices are lost
                log.exception("telling of %d processed events failed", len(batch))
            finally:
                for _ in batch:
                    self._told.task_done()

    async def process_pending(self, grace_s: float = 0.0) -> int:
        """Processes the events stored at least ``grace_s`` ago and not processed (their
        process died in between, or the cache could not forget what they name); answers
        how many."""
        since = datetime.now(UTC) - timedelta(seconds=grace_s)
        async with self.sessions() as session:
            pending = list(
                await session.execute(
                    select(InboundEvent.id, InboundEvent.payload)
                    .where(InboundEvent.processed_at.is_(None), InboundEvent.received_at <= since)
                    .order_by(InboundEvent.id)
                    .limit(PENDING_BATCH)
                )
            )
        events = [(row_id, restored(payload)) for row_id, payload in pending]
        if await self._forget([event for _, event in events]):
            await self._mark(events)
        return len(pending)

    async def process_forever(self, interval_s: float) -> None:
        """``process_pending`` every ``interval_s`` until cancelled; a failed round is
        logged, and the next one tries again."""
        while True:
            try:
                await self.process_pending(PENDING_GRACE_S)
            except Exception:
                log.exception("processing stored events failed")
            await asyncio.sleep(interval_s)

    async def _forget(self, events: list[CloudEvent]) -> bool:
        """The cache forgets each record the events name, in one call; False if it could
        not (the next pending round tries again)."""
        # The cache holds each kind as its owner answers it; what another system says of a
        # kind it does not own (Zendesk's organizations) is not cached.
        named = [
            (change.kind, change.id, change.parent)
            for event in events
            for change in changes_of(event)
            if self.reader.owner(change.kind) is change.system
        ]
        try:
            await self.reader.invalidate_many(named)
        except GatewayError as failed:  # the cache is down
            log.warning("%d events not processed: %s", len(events), failed)
            return False
        return True

    async def _mark(self, batch: list[tuple[int, CloudEvent]]) -> None:
        """Marks the inbox's rows processed, in one statement, and tells subscribers of the
        events this process marked (another process's pending round may be marking them
        too)."""
        if not batch:
            return
        events = dict(batch)
        now = datetime.now(UTC)
        async with self.sessions.begin() as session:
            # On the session's connection: a Core statement, without the ORM's bulk update
            # (which would look for the rows in the session to keep them in step).
            connection = await session.connection()
            marked = await connection.execute(
                update(InboundEvent)
                .where(InboundEvent.id.in_(events), InboundEvent.processed_at.is_(None))
                .values(processed_at=now)
                .returning(
                    InboundEvent.id,
                    InboundEvent.source,
                    InboundEvent.type,
                    InboundEvent.received_at,
                )
            )
            rows = marked.all()
        for _, source, type_, received_at in rows:
            self.metrics.event_processed(source, type_, received_at, now)
        await self._tell([events[id_] for id_ in sorted(row[0] for row in rows)])

    async def _tell(self, told: list[CloudEvent]) -> None:
        """Tells subscribers of processed events, and of the customers they name."""
        if self.broadcast is None or not told:
            return
        try:
            customers = await self._customers(told)
        except Exception:  # marked already: the events are still told, their customers not
            log.exception("finding the customers of %d events failed", len(told))
            customers = {}
        notices: list[tuple[str, dict[str, Any]]] = []
        for event in told:
            notice = {k: event.get(k) for k in ("id", "source", "type", "subject", "time")}
            notices.append((EVENTS, notice))
            notices += [(CUSTOMERS, {"customer": c}) for c in customers.get(event["id"], [])]
        await self.broadcast.publish_many(notices)

    async def _customers(self, events: list[CloudEvent]) -> dict[str, list[str]]:
        """By event id, the opsgraph ids of the customers whose records each event names:
        the record itself for a customer's own (an account, a balance), else the parent
        whose list holds it (a subscription's billing customer, a case's organization)."""
        if self.crosswalk is None:
            return {}
        named: dict[str, set[tuple[SystemName, str]]] = {}
        for event in events:
            pairs = named.setdefault(event["id"], set())
            for c in changes_of(event):
                owner = c.id if c.kind in CUSTOMER_RECORDS else c.parent
                if owner:
                    pairs.add((c.system, owner))
        linked = await self.crosswalk.customer_ids({p for pairs in named.values() for p in pairs})
        return {
            event_id: sorted({linked[p] for p in pairs if p in linked})
            for event_id, pairs in named.items()
        }

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


class _Inbox:
    """Stores events in the inbox and the outbox, the deliveries that arrive together in one
    transaction (group commit): while one batch is being written the next gathers, so a
    busy gateway commits once for many deliveries and a quiet one at once. The write runs
    in a task of its own: a caller that gives up (its client went) leaves the others' batch
    alone. Written here: an asyncio batching helper that does this with duplicate detection
    per row was not found on PyPI."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        forget: Callable[[list[CloudEvent]], Awaitable[bool]],
    ) -> None:
        self.sessions = sessions
        self.forget = forget
        self._waiting: list[tuple[SystemName, CloudEvent, asyncio.Future[Added]]] = []
        self._writers: set[asyncio.Task[None]] = set()
        # A batch's write is mostly waiting (the commit's flush, then Redis): on PostgreSQL a
        # second writer gathers and writes the next batch meanwhile. SQLite has one writer.
        bind = sessions.kw.get("bind")
        self._postgres = bind is not None and bind.dialect.name == "postgresql"
        self._most = WRITERS if self._postgres else 1

    async def add(self, system: SystemName, event: CloudEvent) -> Added:
        """Has the cache forget what ``event`` names (``forget``, once for the batch) and
        stores it, marked processed if the cache forgot: its inbox row's id (None if the
        inbox held it already), and whether the cache forgot."""
        answer: asyncio.Future[Added] = asyncio.get_running_loop().create_future()
        self._waiting.append((system, event, answer))
        if len(self._writers) < self._most:
            # In a context of its own: not the first caller's deadline and request scope.
            writer = asyncio.create_task(self._write_all(), context=contextvars.Context())
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)  # cancelled before it began
        return await asyncio.shield(answer)

    async def _write_all(self) -> None:
        batch: list[tuple[SystemName, CloudEvent, asyncio.Future[Added]]] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:BATCH], self._waiting[BATCH:]
                for (_, _, answer), added in zip(batch, await self._added(batch), strict=True):
                    if answer.done():
                        continue
                    if isinstance(added, BaseException):
                        answer.set_exception(added)
                    else:
                        answer.set_result(added)
                batch = []
        except BaseException:
            # The process is stopping (cancelled): every caller still waiting is answered,
            # as a delivery that could not be stored, and nobody waits for nothing (those
            # waiting for a batch are the last writer's to answer).
            last = all(w.done() or w is asyncio.current_task() for w in self._writers)
            for _, _, answer in batch + (self._waiting if last else []):
                if not answer.done():
                    answer.set_exception(StoreUnavailable("the gateway is stopping"))
            if last:
                self._waiting = []
            raise
        finally:
            # Gone from the writers as its loop ends, not when its done-callback runs: a
            # delivery added in between would otherwise find the writers full and wait for
            # no one.
            current = asyncio.current_task()
            if current is not None:
                self._writers.discard(current)

    async def _added(
        self, batch: list[tuple[SystemName, CloudEvent, asyncio.Future[Added]]]
    ) -> list[Added | Exception]:
        """What storing each of the batch answers. A batch that fails is written again one
        delivery at a time, so that one bad delivery fails only itself."""
        # Forgotten first (a repeat of a stored delivery too: a vendor's retry is rare), so
        # that each is stored processed, without a second transaction to mark it.
        try:
            forgotten = await self.forget([event for _, event, _ in batch])
        except Exception:  # stored unmarked: the pending round forgets and marks them
            log.exception("forgetting what %d events name failed", len(batch))
            forgotten = False
        try:
            ids: list[int | None | Exception] = list(await self._write(batch, forgotten))
        except Exception as failed:
            if len(batch) == 1:
                return [failed]
            log.warning("writing %d events together failed, each alone now: %r", len(batch), failed)
            ids = []
            for one in batch:
                try:
                    ids += await self._write([one], forgotten)
                except Exception as alone:
                    ids.append(alone)
        return [id_ if isinstance(id_, Exception) else (id_, forgotten) for id_ in ids]

    async def _write(
        self, batch: list[tuple[SystemName, CloudEvent, asyncio.Future[Added]]], processed: bool
    ) -> list[int | None]:
        """Inserts the batch's events the inbox does not hold (marked ``processed``), and
        their outbox rows; each event's new row id, or None (held already, or earlier in
        this batch)."""
        now = datetime.now(UTC)
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for system, event, _ in batch:
            key = (system.value, str(event["id"]))
            if key not in rows:
                payload = stored(event)
                rows[key] = {
                    "source": key[0], "event_id": key[1], "type": event["type"],
                    "payload": payload, "received_at": now,
                    "processed_at": now if processed else None,
                }  # fmt: skip
        # In key order: two batches written at once that hold the same deliveries (a
        # vendor's retry racing its first try) wait for each other in one order, not each
        # for the other (a deadlock, which would fail both batches).
        ordered = [rows[key] for key in sorted(rows)]
        if self._postgres:
            new = await self._write_postgres(ordered, now, now if processed else None)
        else:
            new = await self._write_core(ordered)
        answered: list[int | None] = []
        for system, event, _ in batch:
            key = (system.value, str(event["id"]))
            answered.append(new.pop(key, None))  # the first of a key gets the row
        return answered

    async def _write_core(self, rows: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
        """The batch's rows through SQLAlchemy Core (SQLite): each new row's id by key."""
        async with self.sessions.begin() as session:
            # Core statements on the session's connection: the ORM's bulk insert would build
            # and check a mapping for every row, and nothing here needs an ORM object.
            connection = await session.connection()
            # One statement for any batch (executemany, compiled once): SQLAlchemy sends
            # it as multi-row INSERTs and gathers what RETURNING answers.
            inserted = await connection.execute(
                sqlite.insert(InboundEvent)
                .on_conflict_do_nothing(index_elements=["source", "event_id"])
                .returning(InboundEvent.id, InboundEvent.source, InboundEvent.event_id),
                rows,
            )
            new = {(source, event_id): id_ for id_, source, event_id in inserted}
            if new:
                by_key = {(row["source"], row["event_id"]): row for row in rows}
                await connection.execute(
                    sa_insert(OutboxMessage),
                    [_outbox_row(by_key[key]) for key in sorted(new, key=new.__getitem__)],
                )
        return new

    async def _write_postgres(
        self, rows: list[dict[str, Any]], now: datetime, processed_at: datetime | None
    ) -> dict[tuple[str, str], int]:
        """The batch's rows through asyncpg (``GROUP_COMMIT``), on a connection of the
        engine's pool: each new row's id by key."""
        engine: AsyncEngine = self.sessions.kw["bind"]
        async with engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            # The span SQLAlchemy's instrumentation would have made (``trace_engine``):
            # the statement goes around it.
            statement = {"db.system": "postgresql", "db.statement": GROUP_COMMIT.strip()}
            try:
                with tracer.start_as_current_span(
                    "INSERT inbound_events, outbox", kind=SpanKind.CLIENT, attributes=statement
                ):
                    inserted = await driver.fetch(
                        GROUP_COMMIT,
                        [row["source"] for row in rows],
                        [row["event_id"] for row in rows],
                        [row["type"] for row in rows],
                        [codec.dumps(row["payload"]) for row in rows],
                        now,
                        processed_at,
                        OUTBOX_TOPIC,
                    )
            except (
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
                asyncpg.InternalClientError,
                OSError,
            ) as failed:
                # Not a statement the server refused on a live connection (the server
                # dropped it: a restart): SQLAlchemy did not see it fail, so it is
                # invalidated here, not lent again.
                if driver.is_closed() or not isinstance(failed, asyncpg.PostgresError):
                    await connection.invalidate(failed)
                raise StoreUnavailable(
                    f"the database did not take the batch: {failed!r}"
                ) from failed
        return {(source, event_id): id_ for id_, source, event_id in inserted}


def _outbox_row(inbox_row: dict[str, Any]) -> dict[str, Any]:
    """The outbox row of an event stored in the inbox as ``inbox_row``."""
    payload = inbox_row["payload"]
    return {
        "topic": OUTBOX_TOPIC,
        "key": f"{inbox_row['source']}:{inbox_row['event_id']}",
        "payload": payload,
        "traceparent": payload.get(TRACEPARENT),
    }
