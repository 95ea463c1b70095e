"""Idempotency keys for mutations, with Stripe's semantics.

A client sends a key with a mutation and the gateway claims it for the principal before the
write runs. The first claim wins: inserting the record is the lock, because the primary key
(principal, key) admits one row, on SQLite as on PostgreSQL. The write runs and its
response is stored under the key; the same key with the same operation and input then
replays that response and writes nothing, and with another operation or input it is
refused.

While the write runs the key is in progress and a retry is told so, until the claim's
lease (``lease_s`` since the claim or its last heartbeat) runs out: the process that
claimed it is then taken to have died, and the retry takes the claim over (``resumed``).
That is safe because what is sent to a system of record carries ``outbound_key``, which is
the same for the takeover as for the first attempt: the system applies the write once.

A record is kept ``keep_s`` from its creation (Stripe keeps keys 24 hours); after that the
key is free again and ``purge`` deletes the record. A claim reads the record, then writes
only if the row is still what it read: no lock is held while it decides.

A completed record never changes until it expires, so the process keeps the most recent
ones in memory as well (``Completed``): a replay is then answered without a database round
trip, on the replica that wrote it or any that has replayed it once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import ColumnElement, Executable, and_, delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.storage.tables import IdempotencyRecord, utcnow
from gateway.writes.errors import (
    ClaimLost,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
)

MAX_KEY_LENGTH = 255
# A claim reads, then writes if the row is still what it read. Another claim changing the
# row in between sends it round again; a key that keeps changing is being worked on.
ATTEMPTS = 3

log = logging.getLogger("opsgraph.idempotency")


class IdempotencyStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class Claim:
    """The right to run the write of one key, held until it is completed or released."""

    principal: str
    key: str
    operation: str
    fingerprint: str
    resumed: bool = False  # taken over from a claim whose lease ran out
    expires_at: datetime | None = None  # of the record, once claimed


@dataclass(frozen=True, slots=True)
class Replay:
    """The response that the first write with this key and input stored."""

    response: dict[str, Any]


class Completed:
    """The ``size`` completed records used last, in memory: what each key's fingerprint
    was, what it answered and until when. Only completed records are kept, and they are
    read-only until they expire, so no entry ever disagrees with the database; an entry
    past its ``expires_at`` is as absent as the row the purge deletes."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._records: OrderedDict[tuple[str, str], tuple[str, dict[str, Any], datetime]] = (
            OrderedDict()
        )

    def get(self, principal: str, key: str, now: datetime) -> tuple[str, dict[str, Any]] | None:
        found = self._records.get((principal, key))
        if found is None:
            return None
        if found[2] <= now:
            del self._records[(principal, key)]
            return None
        self._records.move_to_end((principal, key))
        return found[0], found[1]

    def put(
        self, claim: Claim, response: dict[str, Any], expires_at: datetime | None = None
    ) -> None:
        expires_at = expires_at or claim.expires_at
        if expires_at is None or self.size <= 0:
            return
        self._records[(claim.principal, claim.key)] = (claim.fingerprint, response, expires_at)
        self._records.move_to_end((claim.principal, claim.key))
        while len(self._records) > self.size:
            self._records.popitem(last=False)


def check_key(key: str) -> None:
    """Raises ``InvalidIdempotencyKey`` unless ``key`` is 1-255 printable characters."""
    if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidIdempotencyKey()


def fingerprint(operation: str, arguments: Mapping[str, Any]) -> str:
    """What makes two requests the same: the SHA-256 of their canonical JSON.

    ``arguments`` are JSON values: str, int, bool, None, and lists and dicts of them. Key
    order does not matter; a float is hashed by its shortest repr, so ``1`` and ``1.0`` are
    different input; anything else (a date, a set, NaN) raises ``TypeError``/``ValueError``.
    """
    canonical = json.dumps(
        {"operation": operation, "arguments": dict(arguments)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    # A JSON string may carry a lone surrogate, which strict UTF-8 cannot encode.
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


class Idempotency:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        keep_s: float = 86400,
        lease_s: float = 60,
        remembered: int = 4096,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.keep = timedelta(seconds=keep_s)
        self.lease = timedelta(seconds=lease_s)
        self.clock = clock
        self.completed = Completed(remembered)

    async def claim(
        self, principal: str, key: str, operation: str, arguments: Mapping[str, Any]
    ) -> Claim | Replay:
        """A ``Claim`` to run the write, or the ``Replay`` of the one that ran. Raises
        ``InvalidIdempotencyKey``, ``IdempotencyKeyReused`` or ``IdempotencyInProgress``."""
        check_key(key)
        wanted = Claim(principal, key, operation, fingerprint(operation, arguments))
        remembered = self.completed.get(principal, key, self.clock())
        if remembered is not None:
            if remembered[0] != wanted.fingerprint:
                raise IdempotencyKeyReused()
            return Replay(remembered[1])
        for _ in range(ATTEMPTS):
            outcome = await self._claim_once(wanted)
            if outcome is not None:
                return outcome
        raise IdempotencyInProgress()

    async def complete(self, claim: Claim, response: Mapping[str, Any]) -> None:
        """Stores ``response`` under the claim's key: the same request replays it from now."""
        done = (
            update(IdempotencyRecord)
            .where(_held(claim))
            .values(
                status=IdempotencyStatus.COMPLETED.value,
                response=dict(response),
                updated_at=self.clock(),
            )
        )
        if not await self._change(done):
            raise ClaimLost(f"idempotency key {claim.key!r} is no longer held to complete")
        self.completed.put(claim, dict(response))

    async def release(self, claim: Claim) -> None:
        """Frees the key: the write failed before any effect reached a system of record,
        so the client may send it again with the same key. A key no longer held (purged,
        released already) is left as it is."""
        await self._change(delete(IdempotencyRecord).where(_held(claim)))

    async def heartbeat(self, claim: Claim) -> None:
        """Renews the claim's lease, for a write that runs longer than ``lease_s``."""
        renew = update(IdempotencyRecord).where(_held(claim)).values(updated_at=self.clock())
        if not await self._change(renew):
            raise ClaimLost(f"idempotency key {claim.key!r} is no longer held to renew")

    async def purge(self) -> int:
        """Deletes the records kept their ``keep_s``; how many."""
        return await self._change(
            delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= self.clock())
        )

    async def purge_forever(self, interval_s: float) -> None:
        """``purge`` every ``interval_s`` until cancelled; a failed pass is logged."""
        while True:
            try:
                await self.purge()
            except Exception:
                log.exception("purging expired idempotency records failed")
            await asyncio.sleep(interval_s)

    @staticmethod
    def outbound_key(claim: Claim, system: str, step: str = "") -> str:
        """The idempotency key sent to ``system`` for ``step`` of the claimed write (Stripe's
        and Zendesk's ``Idempotency-Key``, NetSuite's ``X-NetSuite-Idempotency-Key``).

        The same in every process and after a restart, so a retry or a takeover is applied
        once. It covers the fingerprint as well as principal and key: once the gateway has
        forgotten a key, the client may use it for other input, which a system that
        remembers keys longer must not answer with the old write's result. Each part is
        length-prefixed so that no two different tuples join to the same bytes.
        """
        digest = hashlib.sha256()
        for part in (claim.principal, claim.key, claim.fingerprint, system, step):
            raw = part.encode("utf-8", "surrogatepass")
            digest.update(b"%d:%b" % (len(raw), raw))
        return "og_" + digest.hexdigest()[:40]

    async def _claim_once(self, wanted: Claim) -> Claim | Replay | None:
        """One read and at most one write; None if the record changed between the two."""
        now = self.clock()
        async with self.sessions() as session:
            record = await session.get(IdempotencyRecord, (wanted.principal, wanted.key))
        if record is None or record.expires_at <= now:
            return await self._insert(wanted, now, replacing=record is not None)
        if record.fingerprint != wanted.fingerprint:
            raise IdempotencyKeyReused()
        if record.status == IdempotencyStatus.COMPLETED:
            # complete() stores a dict with the status, never None.
            response = cast(dict[str, Any], record.response)
            self.completed.put(wanted, response, record.expires_at)
            return Replay(response)
        if now < record.updated_at + self.lease:
            raise IdempotencyInProgress()
        return await self._take_over(wanted, record, now)

    async def _insert(self, wanted: Claim, now: datetime, *, replacing: bool) -> Claim | None:
        """Claims a free key; an expired record is deleted in the same transaction, if it
        is still expired (another claim may have replaced it since it was read)."""
        expired = delete(IdempotencyRecord).where(
            IdempotencyRecord.principal == wanted.principal,
            IdempotencyRecord.key == wanted.key,
            IdempotencyRecord.expires_at <= now,
        )
        try:
            async with self.sessions.begin() as session:
                if replacing and not await _rows(session, expired):
                    return None
                session.add(
                    IdempotencyRecord(
                        principal=wanted.principal,
                        key=wanted.key,
                        operation=wanted.operation,
                        fingerprint=wanted.fingerprint,
                        status=IdempotencyStatus.IN_PROGRESS.value,
                        created_at=now,
                        updated_at=now,
                        expires_at=now + self.keep,
                    )
                )
        except IntegrityError:  # another claim inserted it first
            return None
        return dataclasses.replace(wanted, expires_at=now + self.keep)

    async def _take_over(self, wanted: Claim, seen: IdempotencyRecord, now: datetime) -> Claim:
        """The claim of a dead process, if no other retry took it since it was ``seen``."""
        takeover = (
            update(IdempotencyRecord)
            .where(_held(wanted), IdempotencyRecord.updated_at == seen.updated_at)
            .values(updated_at=now)
        )
        if not await self._change(takeover):
            raise IdempotencyInProgress()
        return dataclasses.replace(wanted, resumed=True, expires_at=seen.expires_at)

    async def _change(self, statement: Executable) -> int:
        async with self.sessions.begin() as session:
            return await _rows(session, statement)


def _held(claim: Claim) -> ColumnElement[bool]:
    """The record of ``claim`` while its write runs."""
    return and_(
        IdempotencyRecord.principal == claim.principal,
        IdempotencyRecord.key == claim.key,
        IdempotencyRecord.fingerprint == claim.fingerprint,
        IdempotencyRecord.status == IdempotencyStatus.IN_PROGRESS.value,
    )


async def _rows(session: AsyncSession, statement: Executable) -> int:
    """How many rows ``statement`` changed, run as plain SQL in the session's transaction
    (the ORM's bulk forms would also look for the rows among loaded objects)."""
    connection = await session.connection()
    return (await connection.execute(statement)).rowcount
