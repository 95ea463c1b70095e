"""Stopping ends: a cancellation that a library swallows does not keep a loop going, and
a gateway started and stopped at once against real Redis stops every time."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.data.detached import stop
from gateway.data.redis_guard import RedisGuard, RedisUnavailable
from gateway.data.services import Services
from gateway.ownership import OwnershipMap
from gateway.settings import load_settings


async def _cancelled_soon(call: asyncio.Task[Any]) -> None:
    await asyncio.sleep(0.01)
    call.cancel()


@pytest.mark.parametrize("swallowed_as", ["an answer", "a Redis error"])
async def test_a_cancellation_a_redis_call_swallows_still_cancels_the_caller(
    swallowed_as: str,
) -> None:
    # What redis-py 8.2 does when cancelled while it takes or gives back a pooled
    # connection: the call ends as if the cancellation had not come.
    guard = RedisGuard(Redis(port=1), timeout_s=5, retry_s=5)

    async def swallowing() -> str:
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            if swallowed_as == "an answer":
                return "answered"
            raise ConnectionError("Connection closed by server.") from None
        return "slept"

    calls = 0

    async def loop_until_cancelled() -> None:
        nonlocal calls
        while calls < 100:  # so that a regression fails rather than hangs
            calls += 1
            try:
                await guard.run(swallowing)
            except RedisUnavailable:
                pass

    task = asyncio.create_task(loop_until_cancelled())
    await _cancelled_soon(task)
    await asyncio.wait({task}, timeout=5)
    assert task.cancelled()
    assert calls == 1
    assert guard.up and guard.failures == 0  # a cancellation is no Redis outage
    await guard.aclose()


async def test_a_cancellation_from_before_the_call_does_not_cancel_it() -> None:
    # A task that once absorbed a cancellation (without uncancel) still calls Redis.
    guard = RedisGuard(Redis(port=1), timeout_s=5, retry_s=5)

    async def absorbs_then_calls() -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            pass

        async def answer() -> str:
            return "PONG"

        return await guard.run(answer)

    task = asyncio.create_task(absorbs_then_calls())
    await _cancelled_soon(task)
    assert await task == "PONG"
    await guard.aclose()


async def test_stop_cancels_again_a_task_that_swallowed_the_first_cancellation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cancellations = 0

    async def swallows_once() -> None:
        nonlocal cancellations
        while True:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancellations += 1
                if cancellations == 2:
                    raise

    async def fails() -> None:
        raise ValueError("the last round failed")

    tasks = [asyncio.create_task(swallows_once()), asyncio.create_task(fails())]
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="opsgraph.detached"):
        await stop(tasks, "loops", within_s=5)
    assert cancellations == 2 and all(task.done() for task in tasks)
    assert [r.getMessage() for r in caplog.records] == [
        "loops: a task ended with ValueError('the last round failed')"
    ]


async def test_stop_leaves_behind_and_logs_what_does_not_end_in_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()

    async def never_ends() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                pass

    task = asyncio.create_task(never_ends())
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="opsgraph.detached"):
        await stop([task], "stubborn", within_s=0.2)
    assert not task.done()
    assert [r.getMessage() for r in caplog.records] == [
        "stubborn: 1 tasks did not stop within 0.2s"
    ]
    release.set()
    task.cancel()
    await asyncio.wait({task})


async def test_a_gateway_stopped_as_soon_as_it_started_stops_every_time(
    redis_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Its loops are then in their first Redis calls, taking connections from the pool:
    # where redis-py swallowed the cancellation and stopping waited forever.
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'opsgraph.db'}",
        redis_url=redis_url,
        redis_timeout_s=5,
        erp={"base_url": "http://127.0.0.1:9", "secret": "sandbox-secret"},
    )
    ownership = OwnershipMap.load(settings.ownership_file)
    with caplog.at_level(logging.WARNING, logger="opsgraph.detached"):
        for round_ in range(40):
            replicas = [Services.build(settings, ownership) for _ in range(2)]
            for services in replicas:
                await services.start()
            await asyncio.sleep(0.002 * (round_ % 5))
            for services in replicas:
                async with asyncio.timeout(60):  # a failure, not a hang, if it regresses
                    await services.aclose()
                assert all(task.done() for task in services._background)
    assert [r.getMessage() for r in caplog.records if "did not stop" in r.getMessage()] == []
