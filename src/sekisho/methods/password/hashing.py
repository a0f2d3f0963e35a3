"""argon2id hashing off the event loop, with a bound on how many run at once.

A login flood must queue instead of starving every other request, and beyond
``hash_queue_timeout_seconds`` it is told ``service.busy``. Three things keep the rest of
the service fast while every core hashes:

* requests that will hash are admitted a few at a time (:meth:`PasswordHasher.admitted`); the
  rest wait parked, costing the event loop nothing, instead of all being worked on at once;
* at most ``concurrency`` hashes run at once, each on its own worker thread, which has the
  next one queued so it never waits for the event loop between two;
* those threads run at a lower CPU priority, so the event loop (health checks, static files,
  signed-in pages) is scheduled first whenever it has work;
* they may use every CPU, while the threads that run Python can be kept on one
  (:func:`python_on_one_cpu`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar


from sekisho.errors import SekishoError
from sekisho.methods.password.backends import Argon2Backend, select_backend

T = TypeVar("T")

# Niceness of hashing threads (Linux applies it per thread): the event loop always wins a core.
_HASH_THREAD_NICENESS = 10
# Requests admitted per hashing slot: enough to keep every slot busy while others look their
# account up, few enough that the event loop never has a crowd to serve.
_ADMITTED_PER_SLOT = 2
# Hashes handed to each hashing thread at once: the one it runs and the next, so it starts the
# next the moment it finishes, instead of waiting for the event loop to hand it over.
_QUEUED_PER_THREAD = 2


# When (event-loop time) the request being served must have its hash slot, or be told
# ``service.busy``: set on admission (:meth:`PasswordHasher.admitted`), so the wait for a
# place and the wait for a slot share one ``hash_queue_timeout_seconds``, not one each.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "sekisho_hash_deadline", default=None)


def _every_cpu() -> set[int] | None:
    with contextlib.suppress(AttributeError, OSError):  # not Linux
        return os.sched_getaffinity(0)
    return None


# The CPUs this process may use, read before :func:`python_on_one_cpu` narrows them.
_EVERY_CPU = _every_cpu()


def _hashing_thread() -> None:
    """A hashing thread's start: a lower priority, and every CPU (its creator, the event loop,
    may run on one)."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not permitted
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _HASH_THREAD_NICENESS)
    if _EVERY_CPU is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, _EVERY_CPU)


def python_on_one_cpu() -> int | None:
    """Keep the calling thread, and every thread it starts from now on, on one CPU: the one
    it runs on, or the first allowed (``python_on_one_cpu`` in the settings says why).
    Hashing threads take every CPU back when they start. Returns the CPU, or None where
    nothing changed (one CPU, not Linux, or not permitted: a tuning never stops the start)."""
    if _EVERY_CPU is None or len(_EVERY_CPU) < 2:
        return None
    cpu = _current_cpu()
    cpu = cpu if cpu in _EVERY_CPU else min(_EVERY_CPU)
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        return None
    return cpu


def _current_cpu() -> int | None:
    """The CPU the calling thread last ran on (field 39 of Linux's ``stat``)."""
    try:
        with open("/proc/thread-self/stat") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[36])
    except (OSError, ValueError, IndexError):
        return None


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    needs_rehash: bool = False
    matched: int = 0
    """Which candidate matched: 0 the password as typed, ``n`` the n-th alternative."""


class PasswordHasher:
    """argon2id (RFC 9106) with parameters from settings, recorded in each PHC string.

    Hashes made with older parameters still verify; :attr:`VerifyResult.needs_rehash`
    tells the caller to store a fresh hash after a successful login.
    """

    def __init__(self, *, memory_kib: int, time_cost: int, parallelism: int,
                 concurrency: int, queue_timeout: float, backend: str = "auto") -> None:
        self.backend: Argon2Backend = select_backend(memory_kib, time_cost, parallelism,
                                                     prefer=backend)
        """The argon2id implementation in use (see ``backends.py``); its PHC strings are
        standard, so every implementation verifies every other's hashes."""
        slots = max(1, concurrency)
        # asyncio's semaphores wake waiters in arrival order: the queue is first come, first
        # served.
        self._slots = asyncio.Semaphore(slots * _QUEUED_PER_THREAD)
        self._admission = asyncio.Semaphore(slots * _ADMITTED_PER_SLOT)
        self._queue_timeout = queue_timeout
        # Hashing has threads of its own, so hashes never take the threads other work needs.
        self._executor = ThreadPoolExecutor(slots, thread_name_prefix="sekisho-argon2",
                                            initializer=_hashing_thread)
        self.waiting = 0
        """Requests queued for admission or a hashing slot right now (the queue depth)."""
        self.waits = 0
        self.waited_seconds = 0.0
        """How many waits there were, and how long they took together (for the metrics)."""
        self.refused = 0
        """Requests that waited the whole queue timeout and were told ``service.busy``."""
        # Verifying against this costs exactly what a real check costs, so an unknown
        # identifier takes as long as a known one (no enumeration by timing).
        self._dummy_hash = self.backend.hash("sekisho-timing-equaliser")

    @property
    def parameters(self) -> str:
        b = self.backend
        return f"argon2id m={b.memory_kib} t={b.time_cost} p={b.parallelism}"

    async def hash(self, password: str) -> str:
        return await self._run(self.backend.hash, password)

    async def verify(self, stored_hash: str | None, password: str,
                     alternatives: Sequence[str] = ()) -> VerifyResult:
        """Check ``password``, then each alternative until one matches.

        All candidates are checked in one hashing slot, one after the other, so corrections
        never raise the number of hashes running at once. With no stored hash, every
        candidate is checked against a dummy hash: the same time, and the answer no.
        """
        candidates = (password, *alternatives)
        if stored_hash is None:
            await self._run(self._check, self._dummy_hash, candidates)
            return VerifyResult(ok=False)
        return await self._run(self._check, stored_hash, candidates)

    def _check(self, stored_hash: str, candidates: Sequence[str]) -> VerifyResult:
        for index, candidate in enumerate(candidates):
            if self.backend.verify(stored_hash, candidate):
                return VerifyResult(ok=True, matched=index,
                                    needs_rehash=self.backend.needs_rehash(stored_hash))
        return VerifyResult(ok=False)

    @contextlib.asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        """Wrap the part of a request that leads up to its hash (the account lookup and the
        hash itself): wait for one of a few places, so a flood queues here instead of
        crowding the event loop. The wait for the place and the wait for a hashing slot
        inside it share one queue timeout. The writes after the hash hold no place: the
        hashes, not the database, set how many logins finish in a second."""
        deadline = _deadline.set(asyncio.get_running_loop().time() + self._queue_timeout)
        try:
            await self._acquire(self._admission)
            try:
                yield
            finally:
                self._admission.release()
        finally:
            _deadline.reset(deadline)

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn`` on a hashing thread once a slot is free."""
        await self._acquire(self._slots)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self._slots.release()

    async def _acquire(self, limiter: asyncio.Semaphore) -> None:
        if not limiter.locked():
            await limiter.acquire()  # free: no wait to count
            return
        self.waiting += 1
        started = time.perf_counter()
        deadline = _deadline.get()
        if deadline is None:
            deadline = asyncio.get_running_loop().time() + self._queue_timeout
        try:
            async with asyncio.timeout_at(deadline):
                await limiter.acquire()
        except TimeoutError:
            self.refused += 1
            raise SekishoError("service.busy",
                               retry_after=max(1, round(self._queue_timeout))) from None
        finally:
            self.waiting -= 1
            self.waits += 1
            self.waited_seconds += time.perf_counter() - started

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

