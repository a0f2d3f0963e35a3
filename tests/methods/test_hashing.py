"""argon2id hashing: PHC format with parameters, bounded concurrency, and service.busy."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from sekisho.errors import SekishoError
from sekisho.methods.password import hashing
from sekisho.methods.password.hashing import PasswordHasher


def hasher(concurrency: int = 1, queue_timeout: float = 5.0) -> PasswordHasher:
    return PasswordHasher(memory_kib=1024, time_cost=1, parallelism=1,
                          concurrency=concurrency, queue_timeout=queue_timeout)


async def test_hash_records_parameters_and_verifies():
    h = hasher()
    stored = await h.hash("パスワード")
    assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert (await h.verify(stored, "パスワード")).ok
    assert not (await h.verify(stored, "ぱすわーど")).ok
    assert not (await h.verify(None, "anything")).ok
    assert not (await h.verify("not-a-hash", "anything")).ok


async def test_older_parameters_ask_for_rehash():
    old = await hasher().hash("secret words")
    new = PasswordHasher(memory_kib=2048, time_cost=2, parallelism=1, concurrency=1,
                         queue_timeout=5)
    result = await new.verify(old, "secret words")
    assert result.ok and result.needs_rehash


async def test_concurrency_is_bounded_and_overflow_is_busy():
    h = PasswordHasher(memory_kib=65536, time_cost=3, parallelism=1, concurrency=1,
                       queue_timeout=0.05)
    stored = await h.hash("x")
    results = await asyncio.gather(*[h.verify(stored, "x") for _ in range(6)],
                                   return_exceptions=True)
    busy = [r for r in results if isinstance(r, SekishoError)]
    assert busy and all(e.code == "service.busy" and e.retry_after for e in busy)
    assert any(not isinstance(r, Exception) and r.ok for r in results)
    assert h.waiting == 0


async def test_event_loop_stays_responsive_while_hashing():
    h = PasswordHasher(memory_kib=65536, time_cost=3, parallelism=1, concurrency=2,
                       queue_timeout=30)
    stored = await h.hash("x")
    started = time.perf_counter()
    await h.verify(stored, "x")
    one_hash = time.perf_counter() - started
    gaps: list[float] = []

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(20):
            before = loop.time()
            await asyncio.sleep(0.005)
            gaps.append(loop.time() - before)

    await asyncio.gather(ticker(), *[h.verify(stored, "x") for _ in range(6)])
    # Were hashes run on the loop, some tick would wait a whole hash (or several).
    assert max(gaps) < max(one_hash / 2, 0.03), (max(gaps), one_hash)


async def test_the_waits_for_a_place_and_a_slot_share_one_timeout(monkeypatch):
    h = hasher(concurrency=1, queue_timeout=1.0)
    release = threading.Event()
    monkeypatch.setattr(h.backend, "hash", lambda password: release.wait(10) and "")
    holders = [asyncio.Event() for _ in range(2)]

    async def hold_place(done: asyncio.Event) -> None:
        async with h.admitted():
            await done.wait()

    try:
        # Every place is taken, and every hashing slot is busy (or queued) for longer than
        # the timeout; a place frees up after 0.6 s.
        held = [asyncio.create_task(hold_place(done)) for done in holders]
        busy = [asyncio.create_task(h.hash("x")) for _ in range(2)]
        await asyncio.sleep(0.05)
        asyncio.get_running_loop().call_later(0.6, holders[0].set)
        started = time.perf_counter()
        with pytest.raises(SekishoError) as refused:
            async with h.admitted():
                await h.hash("y")
        waited = time.perf_counter() - started
    finally:
        release.set()
        for done in holders:
            done.set()
    assert refused.value.code == "service.busy"
    # One timeout in all (1.0 s), not the place's 0.6 s and then another second for a slot.
    assert 1.0 <= waited < 1.4, waited
    await asyncio.gather(*held, *busy)


@pytest.mark.parametrize("concurrency", [0, -3])
async def test_concurrency_at_least_one(concurrency):
    assert (await hasher(concurrency=concurrency).verify(None, "x")).ok is False


def test_keeping_python_on_one_cpu_never_stops_the_start(monkeypatch):
    # A container may forbid changing the CPUs a thread runs on: nothing changes, no error.
    def refused(_pid: int, _cpus: object) -> None:
        raise PermissionError("operation not permitted")

    monkeypatch.setattr(hashing, "_EVERY_CPU", {0, 1})
    monkeypatch.setattr(hashing.os, "sched_setaffinity", refused)
    assert hashing.python_on_one_cpu() is None
