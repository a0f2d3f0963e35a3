"""Paced starts: a burst of requests starts a few per turn of the event loop, in arrival
order. (What it is for, /healthz answering fast during a burst of logins, is asserted
against a live server in tests/guard/test_overload.py.)"""

from __future__ import annotations

import asyncio

import pytest

from sekisho.web.pacing import StartPacer

PER_TURN = 3
BURST = 10


async def turns_until(done: asyncio.Event, limit: int = 50) -> int:
    for turn in range(limit):
        if done.is_set():
            return turn
        await asyncio.sleep(0)  # one turn of the event loop
    raise AssertionError(f"not done after {limit} turns")


async def test_a_burst_starts_a_few_per_turn_in_arrival_order():
    pacer = StartPacer(PER_TURN)
    started: list[int] = []
    per_turn: list[int] = []
    everyone = asyncio.Event()

    async def request(n: int) -> None:
        await pacer.start()
        started.append(n)
        if len(started) == BURST:
            everyone.set()

    tasks = [asyncio.create_task(request(n)) for n in range(BURST)]
    while not everyone.is_set():
        before = len(started)
        await asyncio.sleep(0)
        per_turn.append(len(started) - before)
    await asyncio.gather(*tasks)
    assert started == list(range(BURST))
    assert max(per_turn) == PER_TURN
    assert sum(per_turn) == BURST


async def test_a_request_that_gave_up_waiting_takes_no_place():
    pacer = StartPacer(1)
    started: list[int] = []

    async def request(n: int) -> None:
        await pacer.start()
        started.append(n)

    tasks = [asyncio.create_task(request(n)) for n in range(4)]
    await asyncio.sleep(0)  # all four reached the pacer; the first one started
    tasks[1].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert started == [0, 2, 3]
    assert isinstance(results[1], asyncio.CancelledError)


async def test_a_quiet_loop_starts_a_request_without_waiting():
    pacer = StartPacer(PER_TURN)
    done = asyncio.Event()

    async def request() -> None:
        await pacer.start()
        done.set()

    # Each request alone, a turn apart: none ever waits for a later turn.
    for _ in range(PER_TURN * 3):
        done.clear()
        asyncio.create_task(request())
        assert await turns_until(done) == 1


def test_a_new_event_loop_starts_afresh():
    # The app served by one event loop, stopped in the middle of a turn (its end of turn
    # never runs), then by another, as test clients do: requests still start.
    pacer = StartPacer(1)
    old = asyncio.new_event_loop()

    async def start_then_stop() -> None:
        await pacer.start()
        asyncio.get_running_loop().stop()  # before the turn's end runs
        await asyncio.sleep(3600)

    task = old.create_task(start_then_stop())
    old.run_forever()
    task.cancel()
    old.close()

    async def two_requests() -> None:
        await asyncio.wait_for(asyncio.gather(pacer.start(), pacer.start()), timeout=2)

    asyncio.run(two_requests())


def test_at_least_one_start_per_turn():
    with pytest.raises(ValueError):
        StartPacer(0)
