"""Overload: a login burst against a live ``sekisho serve`` with the real argon2 cost.

A burst of 200 concurrent logins on 2 cores gets only 200, 401, 429 or 503 with the
catalogue body, none times out, and ``/healthz`` (and a static file) answers in under
100 ms throughout. Hashes queue for a slot up to ``hash_queue_timeout_seconds``; beyond it
the answer is ``503 service.busy`` with ``retry_after``.

The server runs in its own process, as deployed: in a thread of the test process it would
share the interpreter with pytest, whose heap makes every garbage collection pause the
server longer than the server's own would. Answer times are measured from a third process
(``live.LatencyProbe``), so the burst client's pauses are not charged to the server.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import live
from support.factories import seed_members

from sekisho.errors.catalogue import CATALOGUE
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
    # suite's cheap ones, and Python's threads on one CPU, as shipped; the rate limits stay
    # off (conftest) so logins reach the hasher.
    return {"argon2_memory_kib": 19456, "argon2_time_cost": 2, "argon2_parallelism": 1,
            "python_on_one_cpu": True}


async def members(settings: Settings, count: int) -> list[str]:
    """``count`` verified members sharing ``PASSWORD`` (at OWASP cost, the one logins will
    verify against); their emails."""
    emails = [f"burst{n}@example.jp" for n in range(count)]
    await seed_members(settings, emails, PASSWORD)
    return emails


@contextmanager
def live_server(settings: Settings, logs: Path) -> Iterator[live.ProcessServer]:
    """``sekisho serve`` with exactly these settings (as ``SEKISHO_*`` variables)."""
    with live.serve_process(live.settings_env(settings.model_dump()), log_dir=logs) as server:
        yield server


async def fire(url: str,
               logins: list[dict[str, str]]) -> tuple[list[Any], live.LatencyProbe, float]:
    """All ``logins`` at once, each on its own connection; health and static polled meanwhile.

    The burst client runs on a thread of its own at a lower CPU priority: deployed, the 200
    clients are not on the server's two cores, and here they must not take the CPU that
    the server's event loop would answer ``/healthz`` with."""
    with live.LatencyProbe(url, ("/healthz", STATIC), every=POLL_EVERY) as probe:
        await asyncio.sleep(0.1)  # a few answers before the burst, for comparison
        probe.mark()
        started = time.perf_counter()
        answers = await live.in_background_thread(lambda: asyncio.run(_burst(url, logins)))
        elapsed = time.perf_counter() - started
        await asyncio.sleep(0.1)
    return answers, probe, elapsed


async def _burst(url: str, logins: list[dict[str, str]]) -> list[Any]:
    limits = httpx.Limits(max_connections=len(logins), max_keepalive_connections=len(logins))
    async with httpx.AsyncClient(base_url=url, timeout=CLIENT_TIMEOUT, limits=limits) as http:
        async with asyncio.timeout(CLIENT_TIMEOUT + 15):
            return await asyncio.gather(
                *[http.post("/api/v1/login", json=body) for body in logins],
                return_exceptions=True)


def check_burst(name: str, answers: list[Any], probe: live.LatencyProbe, elapsed: float,
                server: live.ProcessServer) -> Counter[int]:
    """The guarantees of every burst; returns the count of each status."""
    failed = [repr(a) for a in answers if not isinstance(a, httpx.Response)]
    assert not failed, (f"{len(failed)} logins got no answer (timeout?): {failed[:5]}\n"
                        f"{server.output()}")
    responses: list[httpx.Response] = answers
    statuses = Counter(r.status_code for r in responses)
    print(f"\n{name}: {dict(sorted(statuses.items()))} in {elapsed:.2f} s; {probe.summary()}")
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
    assert not probe.failures, probe.failures[:5]
    for path, samples in probe.samples.items():
        assert len(samples) >= 5, f"{path} was polled only {len(samples)} times"
        at, slowest = probe.worst(path)
        assert slowest < FAST, (f"{path}: {slowest * 1000:.0f} ms at {at:+.2f} s into the burst "
                                f"({probe.summary()}; logins {dict(statuses)})")
    return statuses


def cpus_of_threads(pid: int) -> tuple[list[set[int]], list[set[int]]]:
    """The CPUs each thread of the server may run on: (the threads running Python, the
    hashing threads, told apart by their lower priority)."""
    python, hashing = [], []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/stat") as stat:
            niceness = int(stat.read().rsplit(")", 1)[1].split()[16])
        (hashing if niceness > 0 else python).append(os.sched_getaffinity(int(task)))
    return python, hashing


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


async def test_login_burst_gets_catalogue_answers_and_health_stays_fast(settings, backend,
                                                                        tmp_path):
    logins = burst_of_logins(await members(settings, MEMBERS), wrong_every=3)
    with live_server(settings, tmp_path / "logs") as server:
        answers, probe, elapsed = await fire(server.url, logins)
        python, hashing = cpus_of_threads(server.process.pid)
    statuses = check_burst(f"[{backend}] burst", answers, probe, elapsed, server)
    every = os.sched_getaffinity(0)
    # The event loop and the other Python threads kept one CPU; the hashers had them all.
    assert len(hashing) == settings.hash_concurrency and all(c == every for c in hashing)
    assert len(set(map(frozenset, python))) == 1 and len(python[0]) == 1, python
    # Logins queue for the hashing slots up to the shipped limit (5 s): many get in. (How
    # many depends on the machine: wrong passwords cost up to 3 hashes with typo correction.)
    assert statuses[200] >= 25 and statuses[401] >= 10, statuses


async def test_logins_beyond_the_queue_limit_are_told_busy(settings, backend, tmp_path):
    settings = settings.model_copy(update={"hash_concurrency": 1,
                                           "hash_queue_timeout_seconds": 0.2})
    logins = burst_of_logins(await members(settings, MEMBERS), wrong_every=None)
    with live_server(settings, tmp_path / "logs") as server:
        answers, probe, elapsed = await fire(server.url, logins)
    statuses = check_burst(f"[{backend}] busy", answers, probe, elapsed, server)
    assert statuses[503] >= 1 and statuses[200] >= 1, statuses
    busy = next(a for a in answers if a.status_code == 503)
    assert busy.json()["error"]["retry_after"] == 1  # round(0.2 s), at least 1 s


async def test_burst_against_the_shipped_settings(settings, backend, tmp_path):
    """The same burst with the waiting room on and the rate limits as shipped: the room, the
    per-IP login limit (the whole burst comes from one address) and the hasher's queue each
    turn some away, always with a catalogue answer, and /healthz stays fast."""
    shipped = settings.model_copy(update={"rate_limits": {}, "waiting_room_enabled": True})
    logins = burst_of_logins(await members(shipped, MEMBERS), wrong_every=3)
    with live_server(shipped, tmp_path / "logs") as server:
        answers, probe, elapsed = await fire(server.url, logins)
    statuses = check_burst(f"[{backend}] shipped", answers, probe, elapsed, server)
    refused = Counter(a.json()["error"]["code"] for a in answers if a.status_code == 429)
    assert refused["request.rate_limited"] >= 1, refused  # 60 logins a minute from one IP
    assert statuses[200] >= 1, statuses
