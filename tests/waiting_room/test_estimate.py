"""The estimated wait: from how fast the line actually moves, never faster than the rate."""

from __future__ import annotations

import math

from sekisho.clock import FrozenClock, TokenSource
from sekisho.waiting_room.passes import RoomTokens
from sekisho.waiting_room.service import Admission, Place, WaitingRoom, WaitingRoomConfig
from sekisho.waiting_room.store import MemoryRoomStore

# Two slots, ten admissions a second: the rate allows far more than the slots let through
# when each visitor stays logged in... until released, one a second below.
CONFIG = WaitingRoomConfig(capacity=2, admissions_per_minute=600, pass_seconds=600)


def build() -> tuple[WaitingRoom, FrozenClock]:
    clock = FrozenClock()
    return WaitingRoom(CONFIG, MemoryRoomStore(), RoomTokens(b"k" * 32), clock,
                       TokenSource()), clock


async def queued(room: WaitingRoom, token: str | None = None) -> Place:
    place = await room.enter(room.read(token) if token else None)
    assert isinstance(place, Place)
    return place


async def test_the_estimate_follows_the_line_not_the_admission_rate():
    room, clock = build()
    slots = []
    for _ in range(2):
        admission = await room.enter(None)
        assert isinstance(admission, Admission)
        slots.append(admission.slot)
    places = [await queued(room) for _ in range(40)]
    last = places[-1]
    # No history yet: the admission rate (10/s) is all the room knows.
    assert last.eta_seconds == math.ceil(40 / 10)
    for _ in range(8):  # one slot frees a second: the line moves at 1/s
        clock.advance(1)
        await room.release(slots.pop(0))
        head = await room.enter(room.read(places.pop(0).token))
        assert isinstance(head, Admission)
        slots.append(head.slot)
        last = await queued(room, last.token)
    assert last.position == 32
    assert last.eta_seconds == 32  # 1 a second, not 10
    assert last.retry_after > math.ceil(32 / 10)


async def test_a_standstill_counts_as_a_tenth_of_the_rate_and_a_quiet_spell_forgets():
    room, clock = build()
    for _ in range(2):
        assert isinstance(await room.enter(None), Admission)
    place = [await queued(room) for _ in range(20)][-1]
    for _ in range(6):  # nobody leaves: the line stands still
        clock.advance(1)
        place = await queued(room, place.token)
    assert place.position == 20
    assert place.eta_seconds == 20  # at a tenth of 10/s
    clock.advance(4)  # nobody asked for 4 s: the samples start again
    place = await queued(room, place.token)
    assert place.eta_seconds == 2  # at the rate
