"""Overload: a login burst against a live server with the real argon2 cost.

A burst of 200 concurrent logins on 2 cores gets only 200, 401, 429 or 503 with the
catalogue body, none times out, and ``/healthz`` (and a static file) answers in under
100 ms throughout. Hashes queue for a slot up to ``hash_queue_timeout_seconds``; beyond it
the answer is ``503 service.busy`` with ``retry_after``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest
from support import live

from sekisho.core import build_core
from sekisho.errors.catalogue import CATALOGUE
from sekisho.identity.normalize import normalise_email
from sekisho.settings import Settings

BURST = 200
MEMBERS = 40  # 5 logins each: the burst stays within every lockout lane's threshold
ANSWERS = {200, 401, 429, 503}
FAST = 0.1  # seconds: the bound on /healthz and static answers during the burst
POLL_EVERY = 0.02
CLIENT_TIMEOUT = 30.0  # generous: "none times out" means the client never gives up
STATIC = "/static/sekisho.css"
PASSWORD = "kaede tsuki hoshi"
WRONG = "sora mori yama"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # OWASP's argon2id parameters (m=19 MiB, t=2, p=1), the shipped default, not the
    # suite's cheap ones; the rate limits stay off (conftest) so logins reach the hasher.
    return {"argon2_memory_kib": 19456, "argon2_time_cost": 2, "argon2_parallelism": 1}


async def members(settings: Settings, count: int) -> list[str]:
    """``count`` verified members sharing ``PASSWORD``, made through the app's own services on
    the database the server will use; their emails. The argon2 hash (OWASP cost, the one
    logins will verify against) is computed once and stored for all of them."""
    core = build_core(settings)
    try:
        stored = await core.hasher.hash(PASSWORD)
        emails = [f"burst{n}@example.jp" for n in range(count)]
        async with core.db.transaction() as db:
            for email in emails:
                await core.accounts.create(db, email=normalise_email(email), password_hash=stored,
                                           display_name=None, locale="ja", verified=True)
        return emails
    finally:
        await core.db.dispose()


class Poller:
    """GETs each of ``paths`` every ``POLL_EVERY`` seconds, each from its own thread and
    connection, so what it measures is the server's answer time, not the burst client's
    event loop. ``samples[path]`` holds ``(when, latency)`` pairs, ``when`` in seconds from
    :attr:`origin` (the start of the burst once :meth:`mark` is called)."""

    def __init__(self, url: str, paths: tuple[str, ...] = ("/healthz", STATIC)) -> None:
        self.url = url
        self.paths = paths
        self.samples: dict[str, list[tuple[float, float]]] = {path: [] for path in paths}
        self.failures: list[str] = []
        self.origin = time.perf_counter()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._poll, args=(path,), daemon=True,
                                          name=f"poll {path}") for path in paths]

    def _poll(self, path: str) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as http:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    answer = http.get(path)
                except httpx.HTTPError as error:
                    self.failures.append(f"{path}: {error!r}")
                else:
                    self.samples[path].append((started, time.perf_counter() - started))
                    if answer.status_code != 200:
                        self.failures.append(f"{path}: HTTP {answer.status_code}")
                self._stop.wait(POLL_EVERY)

    def __enter__(self) -> Poller:
        self.origin = time.perf_counter()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def mark(self) -> None:
        self.origin = time.perf_counter()

    def worst(self, path: str) -> tuple[float, float]:
        """The slowest answer: (seconds from origin, latency)."""
        started, latency = max(self.samples[path], key=lambda sample: sample[1])
        return started - self.origin, latency


async def fire(url: str, logins: list[dict[str, str]]) -> tuple[list[Any], Poller, float]:
    """All ``logins`` at once on their own connections, with health and static polled meanwhile."""
    limits = httpx.Limits(max_connections=len(logins), max_keepalive_connections=len(logins))
    async with httpx.AsyncClient(base_url=url, timeout=CLIENT_TIMEOUT, limits=limits) as http:
        with Poller(url) as poller:
            await asyncio.sleep(0.1)  # a few answers before the burst, for comparison
            poller.mark()
            started = time.perf_counter()
            async with asyncio.timeout(CLIENT_TIMEOUT + 15):
                answers = await asyncio.gather(
                    *[http.post("/api/v1/login", json=body) for body in logins],
                    return_exceptions=True)
            elapsed = time.perf_counter() - started
            await asyncio.sleep(0.1)
    return answers, poller, elapsed


def check_burst(answers: list[Any], poller: Poller) -> Counter[int]:
    """The guarantees of every burst; returns the count of each status."""
    failed = [repr(a) for a in answers if not isinstance(a, httpx.Response)]
    assert not failed, f"{len(failed)} logins got no answer (timeout?): {failed[:5]}"
    responses: list[httpx.Response] = answers
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= ANSWERS, statuses
    for response in responses:
        if response.status_code == 200:
            assert response.json()["session_token"]
            continue
        error = response.json()["error"]
        assert error["code"] in CATALOGUE, error
        assert CATALOGUE[error["code"]].status == response.status_code, error
        assert error["message"] and error["remedy"] and error["reference"], error
        if response.status_code == 401:
            assert error["code"] == "login.invalid_credentials", error
        if response.status_code in (429, 503):
            assert error["retry_after"] > 0, error
            assert response.headers["Retry-After"] == str(error["retry_after"])
        if response.status_code == 503:
            assert error["code"] == "service.busy", error
    assert not poller.failures, poller.failures[:5]
    for path, samples in poller.samples.items():
        assert len(samples) >= 5, f"{path} was polled only {len(samples)} times"
        at, slowest = poller.worst(path)
        assert slowest < FAST, (f"{path}: {slowest * 1000:.0f} ms at {at:+.2f} s into the "
                                f"burst (slowest of {len(samples)} answers)")
    return statuses


def report(backend: str, name: str, statuses: Counter[int], poller: Poller,
           elapsed: float) -> None:
    print(f"\n[{backend}] {name}: {dict(sorted(statuses.items()))} in {elapsed:.2f} s; "
          + ", ".join(f"{path} max {poller.worst(path)[1] * 1000:.1f} ms at "
                      f"{poller.worst(path)[0]:+.2f} s ({len(poller.samples[path])} polls)"
                      for path in poller.paths))


def burst_of_logins(emails: list[str], *, wrong_every: int | None) -> list[dict[str, str]]:
    """``BURST`` logins over ``emails``, each at most ``len(emails) / BURST`` times, so no
    lockout lane (5 attempts in flight or failed per identifier) refuses any of them.
    With ``wrong_every``, every ``wrong_every``-th password is wrong, and every tenth
    identifier is one nobody has (the same hashing cost, and 401)."""
    logins = []
    for n in range(BURST):
        if wrong_every and n % 10 == 9:
            logins.append({"identifier": f"nobody{n}@example.jp", "password": WRONG})
            continue
        wrong = wrong_every is not None and n % wrong_every == 0
        logins.append({"identifier": emails[n % len(emails)],
                       "password": WRONG if wrong else PASSWORD})
    return logins


async def test_login_burst_gets_catalogue_answers_and_health_stays_fast(settings, backend):
    logins = burst_of_logins(await members(settings, MEMBERS), wrong_every=3)
    with live.serve_in_thread(settings) as server:
        answers, poller, elapsed = await fire(server.url, logins)
    statuses = check_burst(answers, poller)
    report(backend, "burst", statuses, poller, elapsed)
    # Logins queue for the hashing slots up to the (default, 5 s) limit: many get in.
    assert statuses[200] >= 50 and statuses[401] >= 20, statuses


async def test_logins_beyond_the_queue_limit_are_told_busy(settings, backend):
    settings = settings.model_copy(update={"hash_concurrency": 1,
                                           "hash_queue_timeout_seconds": 0.2})
    logins = burst_of_logins(await members(settings, MEMBERS), wrong_every=None)
    with live.serve_in_thread(settings) as server:
        answers, poller, elapsed = await fire(server.url, logins)
    statuses = check_burst(answers, poller)
    report(backend, "busy", statuses, poller, elapsed)
    assert statuses[503] >= 1 and statuses[200] >= 1, statuses
    busy = next(a for a in answers if a.status_code == 503)
    assert busy.json()["error"]["retry_after"] == 1  # round(0.2 s), at least 1 s
