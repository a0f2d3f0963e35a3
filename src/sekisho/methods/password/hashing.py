"""argon2id hashing off the event loop, with a bound on how many run at once.

A login flood must queue for hashing slots instead of starving every other request
(and beyond ``hash_queue_timeout_seconds`` it is told ``service.busy``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import anyio
import anyio.to_thread
from argon2 import PasswordHasher as _Argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from sekisho.errors import SekishoError

T = TypeVar("T")


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
                 concurrency: int, queue_timeout: float) -> None:
        self._argon2 = _Argon2(memory_cost=memory_kib, time_cost=time_cost,
                               parallelism=parallelism)
        self._limiter = anyio.CapacityLimiter(max(1, concurrency))
        self._queue_timeout = queue_timeout
        # Threads for hashing are bounded by the slot limiter above, not by anyio's default
        # thread limiter, so hashes cannot exhaust the threads other work needs.
        self._threads = anyio.CapacityLimiter(max(1, concurrency))
        self.waiting = 0
        """Requests queued for a hashing slot right now (the hash queue depth)."""
        # Verifying against this costs exactly what a real check costs, so an unknown
        # identifier takes as long as a known one (no enumeration by timing).
        self._dummy_hash = self._argon2.hash("sekisho-timing-equaliser")

    @property
    def parameters(self) -> str:
        p = self._argon2
        return f"argon2id m={p.memory_cost} t={p.time_cost} p={p.parallelism}"

    async def hash(self, password: str) -> str:
        return await self._run(self._argon2.hash, password)

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
            try:
                self._argon2.verify(stored_hash, candidate)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                continue
            return VerifyResult(ok=True, matched=index,
                                needs_rehash=self._argon2.check_needs_rehash(stored_hash))
        return VerifyResult(ok=False)

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn`` in a worker thread once a slot is free, waiting at most the queue timeout."""
        self.waiting += 1
        try:
            with anyio.fail_after(self._queue_timeout):
                await self._limiter.acquire()
        except TimeoutError:
            raise SekishoError("service.busy", retry_after=max(1, round(self._queue_timeout))) from None
        finally:
            self.waiting -= 1
        try:
            return await anyio.to_thread.run_sync(fn, *args, limiter=self._threads)
        finally:
            self._limiter.release()

