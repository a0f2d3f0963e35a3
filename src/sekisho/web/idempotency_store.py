"""Where duplicate-safe requests keep their outcomes: in process, or in Redis.

One entry per key (an ``Idempotency-Key`` of one caller on one endpoint, or one submitted
form): first an in-flight marker, which the request that wrote it replaces by the sealed
outcome when it finishes (or removes, when there is nothing worth replaying). The marker is
written only where nothing is (Redis ``SET NX``), so of concurrent duplicates exactly one
runs; the others wait for the outcome. A marker expires after ``LEASE_SECONDS``, so a process
that dies mid-request does not block its key for a day.

As with the lockout lanes (:mod:`sekisho.guard.lockout`), entries live in process on the
embedded default and in Redis when ``SEKISHO_REDIS_URL`` is set, so that a retry reaching
another process of the deployment is still recognised.

```mermaid
stateDiagram-v2
    [*] --> InFlight: claim (SET NX, LEASE_SECONDS)
    InFlight --> Kept: finish (an answer worth replaying)
    InFlight --> [*]: release (5xx, Retry-After, an exception), or the lease runs out
    Kept --> [*]: idempotency_ttl_seconds later (a form's page: form_page_ttl_seconds)
```
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from typing import Protocol, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from redis.asyncio import Redis
from starlette.responses import Response

from sekisho.clock import Clock
from sekisho.errors import SekishoError

LEASE_SECONDS = 60.0
"""How long an in-flight marker holds. Far above any request sekisho answers (hashing queues
time out after seconds), so only a dead process's marker ever expires."""
IN_PROGRESS_RETRY_SECONDS = 2
"""``retry_after`` of ``request.idempotency_in_progress``."""
MAX_KEPT_BODY = 64 * 1024
"""Larger answers are not kept (their repeats run again). No JSON answer of sekisho comes
close, nor does any page a form answers with."""
_MARKER, _SEALED = b"L", b"R"

# Replace the caller's own marker, and nothing else: after its lease ran out the key may
# belong to another request by now. An empty value removes the marker.
_SETTLE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if ARGV[2] == '' then return redis.call('DEL', KEYS[1]) end
  return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 0
"""


class IdempotencyStore(Protocol):
    async def claim(self, name: str, marker: bytes, lease: float) -> bytes | None:
        """Write ``marker`` (kept ``lease`` s) unless ``name`` holds something: return None if
        written, else what ``name`` holds (another request's marker, or an outcome)."""
        ...

    async def settle(self, name: str, marker: bytes, value: bytes | None, ttl: float) -> None:
        """If ``name`` still holds ``marker``, replace it by ``value`` (kept ``ttl`` s) or,
        with ``value`` None, remove it. Anything else under ``name`` is left alone."""
        ...

    async def close(self) -> None: ...


class MemoryIdempotencyStore:
    """Entries of a single ``serve`` process. Expired ones are dropped lazily; beyond
    ``limit`` entries the oldest go first (their keys would simply run again)."""

    def __init__(self, clock: Clock, limit: int = 100_000) -> None:
        self._clock = clock
        self._limit = limit
        self._entries: dict[str, tuple[float, bytes]] = {}

    # No await between reading and writing an entry: each method is atomic on the loop.
    async def claim(self, name: str, marker: bytes, lease: float) -> bytes | None:
        now = self._now()
        current = self._live(name, now)
        if current is not None:
            return current
        self._entries[name] = (now + lease, marker)
        if len(self._entries) > self._limit:
            self._trim(now)
        return None

    async def settle(self, name: str, marker: bytes, value: bytes | None, ttl: float) -> None:
        now = self._now()
        if self._live(name, now) != marker:
            return
        if value is None:
            del self._entries[name]
        else:
            self._entries[name] = (now + ttl, value)

    async def close(self) -> None:
        pass

    def _live(self, name: str, now: float) -> bytes | None:
        expires, value = self._entries.get(name, (0.0, b""))
        return value if expires > now else None

    def _trim(self, now: float) -> None:
        for name in [n for n, (expires, _) in self._entries.items() if expires <= now]:
            del self._entries[name]
        while len(self._entries) > self._limit:
            del self._entries[next(iter(self._entries))]

    def _now(self) -> float:
        return self._clock.now().timestamp()


class RedisIdempotencyStore:
    """Entries shared by every process through Redis."""

    def __init__(self, url: str, prefix: str = "sekisho:idem:") -> None:
        self.redis: Redis = Redis.from_url(url)
        self._prefix = prefix
        self._settle = self.redis.register_script(_SETTLE)

    async def claim(self, name: str, marker: bytes, lease: float) -> bytes | None:
        key = self._prefix + name
        while True:
            if await self.redis.set(key, marker, nx=True, px=_ms(lease)):
                return None
            current = cast("bytes | None", await self.redis.get(key))  # no decode_responses
            if current is not None:
                return current
            # The entry expired between SET NX and GET: try to claim it again.

    async def settle(self, name: str, marker: bytes, value: bytes | None, ttl: float) -> None:
        await self._settle(keys=[self._prefix + name], args=[marker, value or b"", _ms(ttl)])

    async def close(self) -> None:
        await self.redis.aclose()


def open_store(redis_url: str | None, clock: Clock) -> IdempotencyStore:
    """Redis when the deployment has one (shared by its processes), else in process."""
    return RedisIdempotencyStore(redis_url) if redis_url else MemoryIdempotencyStore(clock)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


Cookie = tuple[str, str | None, int | None]
"""A cookie queued for the edge middleware: see :func:`sekisho.web.cookies.queue_cookie`."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer the first request got, as it is replayed to its duplicates."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    cookies: list[Cookie] = field(default_factory=list)

    def response(self) -> Response:
        """The same answer again, marked as a replay (the header Stripe's API made common)."""
        response = Response(self.body, status_code=self.status)
        response.raw_headers = [*self.headers, (b"idempotent-replayed", b"true")]
        return response


@dataclass(frozen=True, slots=True)
class Claim:
    """This request holds its key: end with :meth:`IdempotencyLedger.finish` or
    :meth:`IdempotencyLedger.release`."""

    name: str
    seal: bytes
    marker: bytes
    fingerprint: str


class IdempotencyLedger:
    """Runs each keyed request once and keeps its outcome for ``ttl`` seconds.

    Entries are named and sealed (AES-GCM) with keys derived from the server secret *and*
    the caller's key, which the store never sees: outcomes hold session tokens and recovery
    codes, and whoever reads Redis must learn none of them. Request bodies are compared by a
    keyed SHA-256 for the same reason (a plain hash of a login body is a password oracle).
    """

    def __init__(self, store: IdempotencyStore, secret: bytes, ttl: float,
                 wait_seconds: float = 10.0) -> None:
        self.store = store
        self.ttl = ttl
        self.wait_seconds = wait_seconds
        """How long a duplicate waits for the first request before giving up (409)."""
        self._secret = secret

    def digest(self, data: bytes) -> str:
        """The fingerprint of a request body."""
        return self._mac(b"fingerprint", data).hex()

    async def begin(self, caller: str, method: str, path: str, key: str, fingerprint: str,
                    wait: float) -> Claim | Outcome:
        """Claim ``key`` for this request, or return the outcome to replay.

        A duplicate of a request still in flight polls for up to ``wait`` seconds.
        Raises ``request.idempotency_mismatch`` when the key was used with another body and
        ``request.idempotency_in_progress`` when the wait ran out.
        """
        parts = (caller.encode(), method.encode(), path.encode("utf-8", "surrogateescape"),
                 key.encode())
        name = self._mac(b"name", *parts).hex()
        seal = self._mac(b"seal", *parts)
        marker = _MARKER + json.dumps({"owner": secrets.token_hex(8), "fp": fingerprint}).encode()
        loop = asyncio.get_running_loop()
        deadline, pause = loop.time() + wait, 0.01
        while True:
            held = await self.store.claim(name, marker, LEASE_SECONDS)
            if held is None:
                return Claim(name, seal, marker, fingerprint)
            if held[:1] == _SEALED:
                opened = _unseal(seal, name, held)
                if opened is None:  # sealed under an earlier secret: useless, make room
                    await self.store.settle(name, held, None, 0)
                    continue
                if opened[0] != fingerprint:
                    raise SekishoError("request.idempotency_mismatch")
                return opened[1]
            if json.loads(held[1:])["fp"] != fingerprint:
                raise SekishoError("request.idempotency_mismatch")
            left = deadline - loop.time()
            if left <= 0:
                raise SekishoError("request.idempotency_in_progress",
                                   retry_after=IN_PROGRESS_RETRY_SECONDS)
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.25)

    async def finish(self, claim: Claim, outcome: Outcome, ttl: float | None = None) -> None:
        """Keep ``outcome`` for the duplicates of the claimed request, for ``ttl`` seconds
        (the ledger's own by default)."""
        await self.store.settle(claim.name, claim.marker,
                                _seal(claim.seal, claim.name, claim.fingerprint, outcome),
                                self.ttl if ttl is None else ttl)

    async def release(self, claim: Claim) -> None:
        """Nothing to keep: the next request with this key runs again."""
        await self.store.settle(claim.name, claim.marker, None, 0)

    async def close(self) -> None:
        await self.store.close()

    def _mac(self, label: bytes, *parts: bytes) -> bytes:
        mac = hmac.new(self._secret, b"sekisho idempotency " + label, hashlib.sha256)
        for part in parts:  # length-prefixed, so no two different tuples read the same
            mac.update(len(part).to_bytes(4, "big") + part)
        return mac.digest()


def _seal(key: bytes, name: str, fingerprint: str, outcome: Outcome) -> bytes:
    plain = json.dumps({
        "fp": fingerprint, "status": outcome.status,
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in outcome.headers],
        "body": base64.b64encode(outcome.body).decode(), "cookies": outcome.cookies,
    }).encode()
    nonce = os.urandom(12)
    return _SEALED + nonce + AESGCM(key).encrypt(nonce, plain, name.encode())


def _unseal(key: bytes, name: str, sealed: bytes) -> tuple[str, Outcome] | None:
    try:
        plain = AESGCM(key).decrypt(sealed[1:13], sealed[13:], name.encode())
    except InvalidTag:
        return None
    data = json.loads(plain)
    return data["fp"], Outcome(
        status=data["status"],
        headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in data["headers"]],
        body=base64.b64decode(data["body"]),
        cookies=[(n, v, age) for n, v, age in data["cookies"]])
