"""The room's state machine, in process and in Redis: the same cases, the same answers."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from sekisho.waiting_room.redis_store import RedisRoomStore
from sekisho.waiting_room.store import (
    Limits,
    MemoryRoomStore,
    RoomMode,
    RoomStore,
    Visit,
)

# 3 slots; one admission a second, two at once after a quiet spell; a called visitor's slot
# is kept 10 s, and a missed one can come back for 60 s.
LIMITS = Limits(capacity=3, rate=1.0, burst=2.0, pass_seconds=100, claim_seconds=10,
                keep_missed_seconds=60)
SEED = "fixed-seed"


@pytest.fixture(params=["memory", "redis"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """Every case runs in process and in Redis."""
    return None if request.param == "memory" else str(request.getfixturevalue("redis_url"))


@pytest.fixture
async def store(store_url: str | None) -> AsyncIterator[RoomStore]:
    if store_url is None:
        yield MemoryRoomStore()
        return
    shared = RedisRoomStore(store_url)
    yield shared
    await shared.close()


async def newcomer(store: RoomStore, now: float, limits: Limits = LIMITS) -> Visit:
    return await store.visit(now, None, limits, SEED)


async def again(store: RoomStore, visit: Visit, now: float, limits: Limits = LIMITS) -> Visit:
    assert visit.number is not None
    return await store.visit(now, (visit.generation, visit.number), limits, SEED)


async def test_newcomers_pass_until_the_budget_is_spent_then_queue_in_arrival_order(store):
    first, second = await newcomer(store, 0), await newcomer(store, 0)
    assert first.admitted and second.admitted and first.slot != second.slot
    assert first.expires_at == 100
    queued = [await newcomer(store, 0) for _ in range(4)]
    assert [(v.admitted, v.number, v.position, v.new_ticket) for v in queued] == \
        [(False, n, n, True) for n in (1, 2, 3, 4)]


async def test_refreshing_keeps_the_place_and_the_line_moves_in_order(store):
    await newcomer(store, 0)
    await newcomer(store, 0)
    queued = [await newcomer(store, 0) for _ in range(3)]
    for _ in range(3):  # refreshes in the same second: nothing changes, no new tickets
        assert [(v.number, v.position, v.new_ticket) for v in
                [await again(store, q, 0.5) for q in queued]] == [(1, 1, False), (2, 2, False),
                                                                  (3, 3, False)]
    # A second later one admission is due: the head is called, whoever's visit runs the pump.
    third = await again(store, queued[2], 1.0)
    assert (third.admitted, third.position) == (False, 2)
    assert (await again(store, queued[1], 1.0)).position == 1
    through = await again(store, queued[0], 1.0)
    assert through.admitted and through.slot == "1" and through.expires_at == 101
    # Another tab of the same browser, still holding the ticket, gets the same pass.
    assert await again(store, queued[0], 2.0) == replace(through)


async def test_capacity_holds_the_line_until_a_slot_is_released(store):
    wide = replace(LIMITS, burst=10.0)
    passes = [await newcomer(store, 0, wide) for _ in range(3)]
    assert all(p.admitted for p in passes)
    waiting = await newcomer(store, 0, wide)
    assert (waiting.admitted, waiting.position) == (False, 1)
    assert not (await again(store, waiting, 5, wide)).admitted  # budget, but no slot
    assert passes[0].slot is not None
    await store.release(passes[0].slot)
    assert (await again(store, waiting, 5, wide)).admitted
    status = await store.status(5)
    assert (status.active, status.waiting, status.admitted_total, status.tickets_issued) == \
        (3, 0, 4, 1)


async def test_passes_expire_and_free_their_slots(store):
    wide = replace(LIMITS, burst=10.0)
    for _ in range(3):
        await newcomer(store, 0, wide)
    waiting = await newcomer(store, 0, wide)
    assert not (await again(store, waiting, 99.9, wide)).admitted
    assert (await again(store, waiting, 100.0, wide)).admitted


async def test_a_visitor_called_while_away_gets_the_place_back(store):
    await newcomer(store, 0)
    await newcomer(store, 0)
    away, behind = await newcomer(store, 0), await newcomer(store, 0)
    # At 1 s the absent visitor is called; the slot is kept 10 s, then they are missed and
    # the next in line is called (and, being here, goes through).
    assert (await again(store, behind, 1)).position == 1
    assert (await again(store, behind, 10.9)).position == 1
    assert (await again(store, behind, 11)).admitted
    status = await store.status(12)
    assert (status.missed, status.active) == (1, 3)
    # Back after 20 s: the original place (nobody else waits now), called as soon as a slot
    # and the budget allow.
    back = await again(store, away, 30)
    assert (back.admitted, back.position, back.new_ticket) == (False, 1, False)
    assert (await again(store, away, 100)).admitted  # the first passes expired at 100


async def test_a_ticket_of_another_room_generation_is_a_newcomer(store):
    await newcomer(store, 0)
    await newcomer(store, 0)
    waiting = await newcomer(store, 0)
    stranger = await store.visit(0, ("elsewhere", waiting.number or 0), LIMITS, SEED)
    assert (stranger.number, stranger.position, stranger.new_ticket) == (2, 2, True)


async def test_a_held_room_queues_everyone_then_draws_the_early_places(store):
    wide = replace(LIMITS, capacity=100, burst=100.0)
    await store.hold(50.0)
    early = [await newcomer(store, 0, wide) for _ in range(30)]
    assert {(v.admitted, v.position, v.opens_at) for v in early} == {(False, None, 50.0)}
    assert (await store.status(10)).mode == RoomMode.HOLD
    # The first visit after the opening draws, then is served: a late newcomer waits behind
    # every early one (the budget admits 100 at once here, so the first 100 places pass).
    late = await newcomer(store, 50.0, replace(wide, burst=0.0))
    assert (late.number, late.position) == (31, 31)
    places = [(await again(store, v, 50.0, replace(wide, burst=0.0))).position for v in early]
    assert sorted(places) == list(range(1, 31))
    assert places != list(range(1, 31))  # one chance in 30! of failing
    status = await store.status(50.0)
    assert (status.mode, status.opens_at, status.waiting) == (RoomMode.OPEN, None, 31)


async def test_opening_by_hand_draws_at_once(store):
    await store.hold(None)
    early = [await newcomer(store, 0) for _ in range(10)]
    assert {v.opens_at for v in early} == {None}
    await store.open(5.0, SEED)
    places = [(await again(store, v, 5.0, replace(LIMITS, burst=0.0))).position for v in early]
    assert sorted(places) == list(range(1, 11))


async def test_both_stores_give_the_same_answers(redis_url):
    """A long random script of visits, returns, releases, holds and openings: the Lua script
    and the in-process store must agree on every answer."""
    memory, shared = MemoryRoomStore(generation="g"), RedisRoomStore(redis_url, generation="g")
    rng = random.Random(20260105)
    limits = replace(LIMITS, capacity=8, rate=2.0, burst=5.0, pass_seconds=30,
                     claim_seconds=4, keep_missed_seconds=20)
    now, tickets, slots = 0.0, [], []
    try:
        for step in range(600):
            now += rng.choice([0, 0, 0.1, 0.5, 1, 3])
            roll = rng.random()
            if roll < 0.02:
                opens = now + rng.choice([0, 5, 10])
                answers = [await s.hold(opens) for s in (memory, shared)]
            elif roll < 0.03:
                answers = [await s.open(now, f"seed{step}") for s in (memory, shared)]
            elif roll < 0.08 and slots:
                slot = slots.pop(rng.randrange(len(slots)))
                answers = [await s.release(slot) for s in (memory, shared)]
            else:
                ticket = ("g", rng.choice(tickets)) if tickets and roll < 0.7 else None
                answers = [await s.visit(now, ticket, limits, f"seed{step}")
                           for s in (memory, shared)]
                visit = answers[0]
                if visit.new_ticket and visit.number is not None:
                    tickets.append(visit.number)
                if visit.admitted and visit.slot is not None:
                    slots.append(visit.slot)
            assert answers[0] == answers[1], (step, answers)
            assert await memory.status(now) == await shared.status(now), step
    finally:
        await shared.close()
