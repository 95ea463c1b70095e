"""Single flight: callers of one key share one call; a caller that leaves never takes the
call from the others; the call stops when nobody waits for it any more."""

from __future__ import annotations

import asyncio

import pytest

from connectors import deadline
from connectors.flight import FlightCancelled, SingleFlight


class Upstream:
    """A call that counts how often it starts and how it ends."""

    def __init__(self, answer: str = "answer", seconds: float = 0.05) -> None:
        self.answer, self.seconds = answer, seconds
        self.started = self.finished = self.cancelled = 0
        self.deadlines: list[float | None] = []

    async def __call__(self) -> str:
        self.started += 1
        self.deadlines.append(deadline.remaining())
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.finished += 1
        return self.answer


async def test_callers_of_one_key_share_one_call() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    upstream = Upstream()
    answers = await asyncio.gather(*(flights.run("k", upstream) for _ in range(32)))
    assert answers == ["answer"] * 32
    assert (upstream.started, upstream.finished) == (1, 1)
    assert len(flights) == 0


async def test_one_call_can_answer_several_keys() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    upstream = Upstream()
    flight = flights.start(["a", "b"], upstream)
    assert flights.get("a") is flight and flights.get("b") is flight and len(flights) == 1
    assert await flight.wait() == "answer"
    assert flights.get("a") is None


async def test_a_caller_that_gives_up_leaves_the_call_to_the_others() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    upstream = Upstream(seconds=0.2)
    impatient = asyncio.ensure_future(flights.run("k", upstream))
    patient = asyncio.ensure_future(flights.run("k", upstream))
    await asyncio.sleep(0.05)
    impatient.cancel()
    assert await patient == "answer"
    assert impatient.cancelled()
    assert (upstream.started, upstream.finished, upstream.cancelled) == (1, 1, 0)


async def test_the_call_stops_when_its_last_caller_leaves() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    upstream = Upstream(seconds=5)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await flights.run("k", upstream)
    await asyncio.sleep(0)  # the cancellation reaches the call
    assert (upstream.started, upstream.cancelled) == (1, 1)
    assert flights.get("k") is None  # the next caller starts afresh
    upstream.seconds = 0
    assert await flights.run("k", upstream) == "answer"
    assert upstream.started == 2


async def test_a_call_cancelled_from_outside_is_an_exception_for_its_callers() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    flight = flights.start(["k"], Upstream(seconds=5))
    waiting = asyncio.ensure_future(flight.wait())
    await asyncio.sleep(0.01)
    flight._task.cancel()  # as the event loop does at shutdown
    with pytest.raises(FlightCancelled):
        await waiting


async def test_the_call_runs_outside_its_starters_deadline() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    upstream = Upstream(seconds=0)
    with deadline.within(0.5):
        assert deadline.remaining() is not None
        await flights.run("k", upstream)
    assert upstream.deadlines == [None]
