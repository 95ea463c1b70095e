"""The idempotency store on a migrated SQLite file and on PostgreSQL, with a clock the tests
move instead of sleeping."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from gateway.storage.database import create_engine, sessions
from gateway.storage.tables import IdempotencyRecord
from gateway.writes.errors import (
    ClaimLost,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
)
from gateway.writes.idempotency import Claim, Idempotency, Replay, fingerprint

KEEP_S = 3600
LEASE_S = 60
ARGS: dict[str, Any] = {
    "customerId": "c1",
    "amount": {"minor": 500, "currency": "EUR"},
    "lines": ["setup", "seats"],
    "note": None,
    "urgent": True,
}
RESPONSE: dict[str, Any] = {
    "credit": {"id": "cr_1", "amountMinor": 500, "lines": [1, 2]},
    "userErrors": [],
    "note": "crédit ✓",
}


class Clock:
    """The store's time, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(migrated_url: str, clock: Clock) -> AsyncIterator[Idempotency]:
    engine = create_engine(migrated_url)
    try:
        yield Idempotency(sessions(engine), keep_s=KEEP_S, lease_s=LEASE_S, clock=clock)
    finally:
        await engine.dispose()


async def _claim(store: Idempotency, principal: str = "alice", key: str = "k1") -> Claim:
    claimed = await store.claim(principal, key, "issueCredit", ARGS)
    assert isinstance(claimed, Claim)
    return claimed


async def _ten_claims(store: Idempotency) -> tuple[list[Claim], list[BaseException]]:
    """Ten claims of one key at once: the claims won, and what the others raised."""
    outcomes = await asyncio.gather(
        *(store.claim("alice", "k1", "issueCredit", ARGS) for _ in range(10)),
        return_exceptions=True,
    )
    claims = [o for o in outcomes if isinstance(o, Claim)]
    return claims, [o for o in outcomes if isinstance(o, BaseException)]


def _new(clock: Clock, principal: str, key: str, arguments: dict[str, Any]) -> Claim:
    """The claim of a free key, made at the clock's time."""
    printed = fingerprint("issueCredit", arguments)
    expires_at = clock.now + timedelta(seconds=KEEP_S)
    return Claim(principal, key, "issueCredit", printed, expires_at=expires_at)


async def test_a_first_claim_is_a_claim(store: Idempotency, clock: Clock) -> None:
    claimed = await store.claim("alice", "k1", "issueCredit", ARGS)
    assert claimed == _new(clock, "alice", "k1", ARGS)
    assert not claimed.resumed


async def test_a_completed_key_replays_the_stored_response(store: Idempotency) -> None:
    await store.complete(await _claim(store), RESPONSE)
    reordered = dict(reversed(ARGS.items()))
    assert await store.claim("alice", "k1", "issueCredit", reordered) == Replay(RESPONSE)


@pytest.mark.parametrize("completed", [False, True], ids=["in_progress", "completed"])
@pytest.mark.parametrize(
    ("operation", "arguments"),
    [("issueCredit", {**ARGS, "urgent": False}), ("refundPayment", ARGS)],
    ids=["other_input", "other_operation"],
)
async def test_the_same_key_with_other_input_is_refused(
    store: Idempotency, completed: bool, operation: str, arguments: dict[str, Any]
) -> None:
    claimed = await _claim(store)
    if completed:
        await store.complete(claimed, RESPONSE)
    with pytest.raises(IdempotencyKeyReused) as refused:
        await store.claim("alice", "k1", operation, arguments)
    assert refused.value.code == "IDEMPOTENCY_KEY_REUSED"


async def test_keys_are_scoped_per_principal(store: Idempotency, clock: Clock) -> None:
    await store.complete(await _claim(store, "alice"), RESPONSE)
    other = {**ARGS, "customerId": "c2"}
    claimed = await store.claim("bob", "k1", "issueCredit", other)
    assert claimed == _new(clock, "bob", "k1", other)


async def test_a_key_in_progress_is_refused_until_its_lease_runs_out(
    store: Idempotency, clock: Clock
) -> None:
    await _claim(store)
    clock.advance(LEASE_S - 1)
    with pytest.raises(IdempotencyInProgress) as refused:
        await store.claim("alice", "k1", "issueCredit", ARGS)
    assert (refused.value.code, refused.value.retryable) == ("IDEMPOTENCY_IN_PROGRESS", True)


async def test_concurrent_claims_give_exactly_one_claim(store: Idempotency) -> None:
    claims, refusals = await _ten_claims(store)
    assert len(claims) == 1
    assert [type(r) for r in refusals] == [IdempotencyInProgress] * 9


async def test_an_expired_lease_is_taken_over(store: Idempotency, clock: Clock) -> None:
    first = await _claim(store)
    clock.advance(LEASE_S)
    resumed = await store.claim("alice", "k1", "issueCredit", ARGS)
    assert resumed == replace(first, resumed=True)
    with pytest.raises(IdempotencyInProgress):  # the takeover holds a lease of its own
        await store.claim("alice", "k1", "issueCredit", ARGS)


async def test_concurrent_takeovers_give_exactly_one_claim(
    store: Idempotency, clock: Clock
) -> None:
    await _claim(store)
    clock.advance(LEASE_S)
    claims, refusals = await _ten_claims(store)
    assert [c.resumed for c in claims] == [True]
    assert [type(r) for r in refusals] == [IdempotencyInProgress] * 9


async def test_a_heartbeat_keeps_the_lease(store: Idempotency, clock: Clock) -> None:
    claimed = await _claim(store)
    clock.advance(LEASE_S - 1)
    await store.heartbeat(claimed)
    clock.advance(LEASE_S - 1)
    with pytest.raises(IdempotencyInProgress):
        await store.claim("alice", "k1", "issueCredit", ARGS)


async def test_a_released_key_can_be_claimed_again(store: Idempotency) -> None:
    first = await _claim(store)
    await store.release(first)
    assert await store.claim("alice", "k1", "issueCredit", ARGS) == first


async def test_a_claim_no_longer_held_cannot_complete_or_renew(store: Idempotency) -> None:
    claimed = await _claim(store)
    await store.release(claimed)
    with pytest.raises(ClaimLost):
        await store.complete(claimed, RESPONSE)
    with pytest.raises(ClaimLost):
        await store.heartbeat(claimed)


class Statements:
    """The SQL statements an engine ran, counted."""

    def __init__(self, store: Idempotency) -> None:
        self.count = 0
        engine = store.sessions.kw["bind"].sync_engine
        event.listen(engine, "before_cursor_execute", self._ran)

    def _ran(self, *_: object) -> None:
        self.count += 1


async def test_a_replay_is_answered_from_memory_once_the_process_has_seen_it(
    store: Idempotency, clock: Clock
) -> None:
    await store.complete(await _claim(store), RESPONSE)
    ran = Statements(store)
    assert await store.claim("alice", "k1", "issueCredit", ARGS) == Replay(RESPONSE)
    with pytest.raises(IdempotencyKeyReused):
        await store.claim("alice", "k1", "issueCredit", {**ARGS, "urgent": False})
    assert ran.count == 0
    # Another replica, on the same database: it reads the record once, then remembers it.
    replica = Idempotency(store.sessions, keep_s=KEEP_S, lease_s=LEASE_S, clock=clock)
    for _ in range(3):
        assert await replica.claim("alice", "k1", "issueCredit", ARGS) == Replay(RESPONSE)
    assert ran.count == 1


async def test_a_remembered_record_expires_with_the_row(store: Idempotency, clock: Clock) -> None:
    await store.complete(await _claim(store), RESPONSE)
    clock.advance(KEEP_S - 1)
    assert await store.claim("alice", "k1", "issueCredit", ARGS) == Replay(RESPONSE)
    clock.advance(1)
    assert await store.claim("alice", "k1", "issueCredit", ARGS) == _new(clock, "alice", "k1", ARGS)


async def test_only_the_records_used_last_are_remembered(migrated_url: str, clock: Clock) -> None:
    engine = create_engine(migrated_url)
    try:
        store = Idempotency(sessions(engine), keep_s=KEEP_S, clock=clock, remembered=2)
        for key in ("k1", "k2", "k3"):
            await store.complete(await _claim(store, key=key), RESPONSE)
        await store.claim("alice", "k2", "issueCredit", ARGS)  # k2 used: k3 is the oldest
        await store.complete(await _claim(store, key="k4"), RESPONSE)
        ran = Statements(store)
        for key in ("k2", "k4", "k1", "k3"):
            assert await store.claim("alice", key, "issueCredit", ARGS) == Replay(RESPONSE)
        assert ran.count == 2  # k1 and k3 were read again
    finally:
        await engine.dispose()


async def test_an_expired_record_is_absent(store: Idempotency, clock: Clock) -> None:
    await store.complete(await _claim(store), RESPONSE)
    clock.advance(KEEP_S)
    other = {**ARGS, "urgent": False}
    claimed = await store.claim("alice", "k1", "issueCredit", other)
    assert claimed == _new(clock, "alice", "k1", other)


async def test_purge_deletes_the_expired_records_and_counts_them(
    store: Idempotency, clock: Clock
) -> None:
    await store.complete(await _claim(store, key="k1"), RESPONSE)
    await _claim(store, key="k2")
    clock.advance(KEEP_S - 1)
    await _claim(store, key="k3")
    clock.advance(1)
    assert await store.purge() == 2
    assert await store.purge() == 0
    with pytest.raises(IdempotencyInProgress):  # k3 is kept
        await store.claim("alice", "k3", "issueCredit", ARGS)


async def test_the_background_purge_deletes_what_expired(store: Idempotency, clock: Clock) -> None:
    await _claim(store, key="k1")
    await _claim(store, key="k2")
    clock.advance(KEEP_S)
    await _claim(store, key="k3")

    async def kept() -> list[str]:
        async with store.sessions() as session:
            return sorted(await session.scalars(select(IdempotencyRecord.key)))

    purging = asyncio.create_task(store.purge_forever(3600))
    try:
        for _ in range(200):  # its first pass runs at once
            if await kept() == ["k3"]:
                break
            await asyncio.sleep(0.01)
        assert await kept() == ["k3"]
    finally:
        purging.cancel()


@pytest.mark.parametrize("key", ["k" * 255, "é" * 255, "clé ✓ 42"])
async def test_up_to_255_printable_characters_make_a_key(
    store: Idempotency, clock: Clock, key: str
) -> None:
    assert await _claim(store, key=key) == _new(clock, "alice", key, ARGS)


@pytest.mark.parametrize("key", ["", "k" * 256, "a\nb", "a\tb", "a\x7fb"])
async def test_other_keys_are_bad_user_input(key: str) -> None:
    # Refused before the database is asked: this one is never connected.
    store = Idempotency(sessions(create_engine("sqlite+aiosqlite://")))
    with pytest.raises(InvalidIdempotencyKey) as refused:
        await store.claim("alice", key, "issueCredit", ARGS)
    assert refused.value.code == "BAD_USER_INPUT"


def test_outbound_keys_are_deterministic_and_distinct() -> None:
    claim = Claim("alice", "k1", "issueCredit", fingerprint("issueCredit", ARGS))
    key = Idempotency.outbound_key(claim, "billing", "credit")
    assert re.fullmatch("og_[0-9a-f]{40}", key)
    # Pinned: a process after a deploy must send what the one before it sent for the write.
    assert key == "og_91b34e220139e276f103eb8be56e732812330a97"
    assert Idempotency.outbound_key(replace(claim, resumed=True), "billing", "credit") == key
    others = {
        Idempotency.outbound_key(replace(claim, principal="bob"), "billing", "credit"),
        Idempotency.outbound_key(replace(claim, key="k2"), "billing", "credit"),
        Idempotency.outbound_key(replace(claim, fingerprint="0" * 64), "billing", "credit"),
        Idempotency.outbound_key(claim, "erp", "credit"),
        Idempotency.outbound_key(claim, "billing", "refund"),
        Idempotency.outbound_key(claim, "billing"),
        # The parts are length-prefixed: moving a character across a boundary is another key.
        Idempotency.outbound_key(replace(claim, principal="alicek", key="1"), "billing", "credit"),
        Idempotency.outbound_key(claim, "billingc", "redit"),
    }
    assert len(others) == 8 and key not in others
