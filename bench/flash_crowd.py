"""A flash crowd at the login page and API, held by the waiting room.

    PYTHONPATH=src python3 bench/flash_crowd.py [--visitors 5000] [--arrival-seconds 10]
        [--duration 90] [--login-capacity N] [--capacity 200] [--plot flash_crowd.png] [--json]
        [--samples FILE]

1. Login capacity: unless ``--login-capacity`` is given, sekisho (room off) serves
   ``POST /api/v1/login`` to ``--connections`` clients in a closed loop for
   ``--measure-seconds``, at OWASP's argon2id parameters (m=19456 KiB, t=2, p=1), each login
   a member's first from a new browser, as in the crowd. Logins/s is the capacity.
2. The crowd: sekisho again in a process of its own on 127.0.0.1, its room admitting
   ``--admission-share`` of that capacity (admissions per minute = share x capacity x 60)
   with ``--capacity`` slots: by default 1.5 s worth of logins, since these visitors type
   nothing and every slot is a login in flight (the hashers must clear them well within
   ``hash_queue_timeout_seconds``, 5 s). ``--visitors`` visitors arrive at random moments within
   ``--arrival-seconds``, half as browsers (``GET /login``, then the login call once let
   through) and half as apps (``POST /api/v1/login`` until it is served). Waiting visitors
   come back after ``Retry-After`` with the ticket cookie, as the waiting page does. Each
   request opens its own connection (browsers drop idle ones long before a 2-30 s refresh).
   The run ends after ``--duration`` seconds; whoever is still waiting then is counted
   apart, not as a failure. The room is watched through ``GET /api/v1/admin/waiting-room``.

Reported: the share of requests answered without a 5xx or a time-out (target 100 %), time
to first byte of the answers to waiting visitors (target p99 < 100 ms), logins/s let through
against the login capacity, and FIFO violations (target 0): a visitor told to wait, on a
request sent after someone with a later ticket had been let through. Where the time goes: the
CPU of the server's event loop, hashing threads and other threads, of this bench and of every
other process (a shared machine), how late the server's event loop ran, and the hasher's
queue (``--samples`` keeps the half-second samples). With matplotlib
installed (``pip install matplotlib``), a PNG plots the queue and admissions over time;
without it the plot is skipped. Everything stays on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import gc
import itertools
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from login_throughput import machine_busy_seconds  # this directory, as the script runs

from sekisho.settings import Settings

HOST = "127.0.0.1"
PASSWORD = "kaede tsuki hoshi sora"
ADMIN = "bench-admin@example.jp"
OWASP = {"argon2_memory_kib": 19456, "argon2_time_cost": 2, "argon2_parallelism": 1}
TARGET_ANSWERED = 1.0
TARGET_TTFB_P99_MS = 100.0
_TICKET = re.compile(rb"^t\.[^.]+\.(\d+)\.")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def member_email(index: int) -> str:
    return f"crowd{index:05d}@example.jp"


# --- the server -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def server_settings(data_dir: Path, room: dict[str, Any]) -> dict[str, Any]:
    from sekisho.guard.limits import Action

    return {"data_dir": str(data_dir), "database_url": f"sqlite+aiosqlite:///{data_dir}/s.db",
            "secret_key": "bench-secret-key-" + "x" * 32, "run_outbox_worker": False,
            "rate_limits": {a.value: {"per_ip": None, "per_key": None} for a in Action},
            **OWASP, **{f"waiting_room_{k}": v for k, v in room.items()}}


async def seed(settings: Settings, visitors: int) -> None:
    """A member per visitor (no lockout lane sees two logins at once) and one admin."""
    from sekisho.core import build_core
    from sekisho.identity.models import Role
    from sekisho.identity.normalize import normalise_email

    core = build_core(settings)
    try:
        stored = await core.hasher.hash(PASSWORD)
        async with core.db.transaction() as db:
            for index in range(visitors):
                await core.accounts.create(db, email=normalise_email(member_email(index)),
                                           password_hash=stored, display_name=None,
                                           locale="ja", verified=True)
            await core.accounts.create(db, email=normalise_email(ADMIN), password_hash=stored,
                                       display_name=None, locale="ja", verified=True,
                                       role=Role.ADMIN)
    finally:
        await core.close()


def serve_child(config: dict[str, Any]) -> None:
    """The server process: ``create_app`` under uvicorn, with the waiting room. It writes
    how late its event loop runs (sampled every 50 ms) to ``config["lag"]``."""
    import uvicorn

    from sekisho.app import create_app

    settings = Settings(**config["settings"])
    app = create_app(settings)  # the room follows the waiting_room_* settings
    server = uvicorn.Server(uvicorn.Config(app, host=HOST, port=config["port"],
                                           log_level="warning", access_log=False,
                                           backlog=8192))

    async def serve() -> None:
        loop = asyncio.get_running_loop()

        async def probe() -> None:
            # A line at a time: uvicorn ends the process with the signal that stopped it.
            with open(config["lag"], "w", buffering=1) as out:
                while True:
                    due = loop.time() + 0.05
                    await asyncio.sleep(0.05)
                    out.write(f"{time.time()} {loop.time() - due}\n")

        task = asyncio.create_task(probe())
        try:
            await server.serve()
        finally:
            task.cancel()

    print("ready", flush=True)
    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(serve())


class Server:
    def __init__(self, settings: dict[str, Any], logs: Path) -> None:
        self.port = free_port()
        self.lag_file = logs / f"lag-{self.port}.txt"
        config = {"settings": settings, "port": self.port, "lag": str(self.lag_file)}
        self._out = open(logs / f"server-{self.port}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve-child", json.dumps(config)],
            stdout=subprocess.PIPE, stderr=self._out)
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"server did not start; see {self._out.name}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not listen")

    def cpu_seconds(self) -> tuple[float, float]:
        """(whole process, main thread = event loop) CPU seconds so far, from /proc."""
        def ticks(path: str) -> float:
            with open(path) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        pid = self.process.pid
        try:
            return ticks(f"/proc/{pid}/stat"), ticks(f"/proc/{pid}/task/{pid}/stat")
        except OSError:  # not Linux
            return float("nan"), float("nan")

    def threads(self) -> dict[str, float]:
        """CPU seconds so far of the hashing threads (the ones running at a lower priority),
        the event loop (the main thread) and the other threads (SQLite's, ...), from /proc."""
        pid = self.process.pid
        seconds = {"hashing": 0.0, "event_loop": 0.0, "other_threads": 0.0}
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                kind = ("event_loop" if task == str(pid) else
                        "hashing" if int(fields[16]) > 0 else "other_threads")
                seconds[kind] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
        return seconds

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._out.close()

    def lags(self) -> list[tuple[float, float]]:
        """(epoch seconds, how late the event loop ran) samples, once stopped."""
        try:
            lines = self.lag_file.read_text().splitlines()
        except OSError:
            return []
        return [(float(t), float(lag)) for t, lag in (line.split() for line in lines[:-1])]


@contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection in this bench while the crowd runs: with 5,000 visitors and
    every answer kept, a full collection paused the client for 170-190 ms, and every answer
    in flight meanwhile was charged that much time to first byte."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


# --- a lean HTTP/1.1 client (one connection per request) --------------------------------------

@dataclass
class Answer:
    status: int
    headers: dict[str, list[bytes]]
    body: bytes
    started: float
    ttfb: float
    total: float

    def header(self, name: str) -> bytes | None:
        values = self.headers.get(name)
        return values[0] if values else None


async def call(port: int, method: str, path: str, headers: dict[str, str], body: bytes,
               timeout: float) -> Answer:
    started = time.perf_counter()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "Connection: close",
             *(f"{k}: {v}" for k, v in headers.items())]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            first = await reader.read(65536)
            ttfb = time.perf_counter() - started
            rest = await reader.read()
        finally:
            writer.close()
    raw = first + rest
    head, _, content = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.split(b"\r\n")
    parsed: dict[str, list[bytes]] = {}
    for line in header_lines:
        name, _, value = line.partition(b":")
        parsed.setdefault(name.strip().lower().decode(), []).append(value.strip())
    return Answer(int(status_line.split()[1]), parsed, content, started, ttfb,
                  time.perf_counter() - started)


def keep_cookies(jar: dict[str, str], answer: Answer) -> None:
    for value in answer.headers.get("set-cookie", []):
        pair = value.split(b";", 1)[0].decode("latin-1")
        name, _, content = pair.partition("=")
        if b"max-age=0" in value.lower() or not content.strip('"'):
            jar.pop(name, None)
        else:
            jar[name] = content


def cookie_header(jar: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())} if jar else {}


# --- login capacity ---------------------------------------------------------------------------

async def measure_capacity(port: int, connections: int, seconds: float, members: int,
                           timeout: float) -> tuple[float, dict[int, int]]:
    statuses: dict[int, int] = {}
    done = 0
    next_member = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, next_member
        while time.perf_counter() < stop:
            index, next_member = next_member % members, next_member + 1
            body = json.dumps({"identifier": member_email(index), "password": PASSWORD})
            answer = await call(port, "POST", "/api/v1/login", {
                "Content-Type": "application/json", "Accept": "application/json"},
                body.encode(), timeout)
            statuses[answer.status] = statuses.get(answer.status, 0) + 1
            done += answer.status == 200

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return done / (time.perf_counter() - started), statuses


# --- the crowd --------------------------------------------------------------------------------

@dataclass
class Visitor:
    index: int
    page: bool
    arrive: float
    jar: dict[str, str] = field(default_factory=dict)
    number: int | None = None
    """Ticket number (arrival order at the room); None if let straight in."""
    waits: list[tuple[float, float]] = field(default_factory=list)
    """(sent, answered) of every request told to wait."""
    admitted_at: float | None = None
    logged_in_at: float | None = None


@dataclass
class Crowd:
    visitors: list[Visitor]
    answers: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    """Time-outs and connection errors, by kind."""
    queued_ttfb: list[float] = field(default_factory=list)
    other_ttfb: list[float] = field(default_factory=list)
    room: list[dict[str, Any]] = field(default_factory=list)
    """The admin API's view of the room, sampled every half second, with the hasher's
    figures from /metrics and the server's CPU so far."""
    epoch: float = 0.0
    """The first arrival's moment, in epoch seconds (for the server's own samples)."""
    loop_lag: list[tuple[float, float]] = field(default_factory=list)
    """(seconds since the first arrival, how late the server's event loop ran)."""


def _metrics(body: bytes) -> dict[str, float]:
    """The hasher's figures from a /metrics answer."""
    found = {}
    for line in body.decode().splitlines():
        name, _, value = line.partition(" ")
        if name in ("sekisho_hash_queue_depth", "sekisho_hash_busy_refusals_total",
                    "sekisho_hash_waits_total", "sekisho_hash_wait_seconds_total"):
            found[name.removeprefix("sekisho_").removesuffix("_total")] = float(value)
    return found


async def run_crowd(server: Server, args: argparse.Namespace, origin: float) -> Crowd:
    port = server.port
    rng = random.Random(args.seed)
    visitors = [Visitor(i, i % 2 == 0, rng.uniform(0, args.arrival_seconds))
                for i in range(args.visitors)]
    crowd = Crowd(visitors, epoch=time.time() + origin - time.perf_counter())
    deadline = origin + args.duration
    json_headers = {"Content-Type": "application/json", "Accept": "application/json"}

    async def one(visitor: Visitor) -> None:
        await asyncio.sleep(max(0.0, origin + visitor.arrive - time.perf_counter()))
        body = json.dumps({"identifier": member_email(visitor.index),
                           "password": PASSWORD}).encode()
        while time.perf_counter() < deadline:
            browsing = visitor.page and visitor.admitted_at is None
            try:
                if browsing:
                    answer = await call(port, "GET", "/login", {
                        "Accept": "text/html", **cookie_header(visitor.jar)}, b"", args.timeout)
                else:
                    answer = await call(port, "POST", "/api/v1/login", {
                        **json_headers, **cookie_header(visitor.jar)}, body, args.timeout)
            except (TimeoutError, OSError) as error:
                kind = type(error).__name__
                crowd.failures[kind] = crowd.failures.get(kind, 0) + 1
                await asyncio.sleep(1.0)
                continue
            crowd.answers += 1
            crowd.statuses[answer.status] = crowd.statuses.get(answer.status, 0) + 1
            keep_cookies(visitor.jar, answer)
            ticket = _TICKET.match(answer.header("sekisho-waiting-room") or b"")
            if answer.status == 429 and ticket:
                crowd.queued_ttfb.append(answer.ttfb)
                visitor.number = int(ticket.group(1))
                visitor.waits.append((answer.started - origin,
                                      answer.started + answer.total - origin))
                await asyncio.sleep(int(answer.header("retry-after") or b"1"))
                continue
            crowd.other_ttfb.append(answer.ttfb)
            if answer.status >= 500:
                await asyncio.sleep(int(answer.header("retry-after") or b"1"))
                continue
            if visitor.admitted_at is None:
                visitor.admitted_at = answer.started + answer.total - origin
            if not browsing:
                if answer.status == 200:
                    visitor.logged_in_at = answer.started + answer.total - origin
                return

    async def watch(token: str) -> None:
        while time.perf_counter() < deadline:
            try:
                answer = await call(port, "GET", "/api/v1/admin/waiting-room", {
                    "Accept": "application/json", "Authorization": f"Bearer {token}"}, b"",
                    args.timeout)
                sample = {"t": answer.started - origin, **json.loads(answer.body),
                          "machine_cpu": machine_busy_seconds(), "threads": server.threads()}
                metrics = await call(port, "GET", "/metrics", {}, b"", args.timeout)
                sample.update(_metrics(metrics.body))
                crowd.room.append(sample)
            except (TimeoutError, OSError, ValueError):
                pass
            await asyncio.sleep(0.5)

    admin = await call(port, "POST", "/api/v1/login", json_headers, json.dumps(
        {"identifier": ADMIN, "password": PASSWORD}).encode(), 30)
    token = json.loads(admin.body)["session_token"]
    watcher = asyncio.create_task(watch(token))
    await asyncio.gather(*(one(v) for v in visitors))
    await watcher
    return crowd


# --- analysis ---------------------------------------------------------------------------------

def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def fifo_violations(visitors: list[Visitor]) -> int:
    """Visitors told to wait on a request sent after a later ticket had been let through."""
    ticketed = sorted((v for v in visitors if v.number is not None), key=lambda v: v.number or 0)
    # Earliest admission among all later tickets, for each ticket (a suffix minimum).
    later_admitted = [float("inf")] * (len(ticketed) + 1)
    for i in range(len(ticketed) - 1, -1, -1):
        admitted = ticketed[i].admitted_at
        later_admitted[i] = min(later_admitted[i + 1],
                                admitted if admitted is not None else float("inf"))
    return sum(1 for i, v in enumerate(ticketed)
               if any(sent > later_admitted[i + 1] for sent, _ in v.waits))


@dataclass
class Report:
    visitors: int
    arrival_seconds: float
    duration: float
    login_capacity: float
    login_capacity_measured: bool
    admissions_per_minute: int
    slots: int
    requests: int
    statuses: dict[str, int]
    failures: dict[str, int]
    answered_share: float
    queued_answers: int
    queued_ttfb_p50_ms: float
    queued_ttfb_p99_ms: float
    queued_ttfb_max_ms: float
    other_ttfb_p99_ms: float
    let_straight_in: int
    given_tickets: int
    logged_in: int
    still_waiting: int
    logins_per_second_while_queueing: float
    fifo_violations: int
    longest_queue: int
    plot: str | None
    server_cores: float = float("nan")
    """CPU the server used during the crowd, in cores (all threads: hashing included)."""
    server_loop_cores: float = float("nan")
    """Of it, the event loop's thread (HTTP, the room, pages)."""
    client_cores: float = float("nan")
    """CPU this bench's own visitors used: on a small machine, taken from the server."""
    other_cores: float = float("nan")
    """CPU every other process on the machine used meanwhile (the bench is not alone on a
    shared machine: compare runs where this stayed near zero)."""
    capacity_cores: tuple[float, float, float] = (float("nan"),) * 3
    """While measuring the capacity: server, bench client, other processes (cores)."""
    capacity_threads: dict[str, float] = field(default_factory=dict)
    """While measuring the capacity: the server's hashing threads, event loop and other
    threads (cores), to hold against the same while people waited."""
    loop_lag_ms: tuple[float, float, float] = (float("nan"),) * 3
    """How late the server's event loop ran while people waited: p50, p99, max (every
    request, and every step of a login, waits this long for its turn)."""
    queueing_cores: dict[str, float] = field(default_factory=dict)
    """While people waited: cores used by the server's hashing threads, its event loop,
    the whole server, and the whole machine (from the half-second samples)."""


class CpuMeter:
    """Cores used between :meth:`start` and :meth:`stop` by the server, by this bench and by
    everything else on the machine."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._start = (0.0, 0.0, 0.0, 0.0, 0.0)
        self._threads: dict[str, float] = {}
        self.thread_cores: dict[str, float] = {}
        """After :meth:`stop`: the server's hashing threads, event loop and other threads."""

    def _read(self) -> tuple[float, float, float, float, float]:
        process, loop = self.server.cpu_seconds()
        return (time.perf_counter(), process, loop, time.process_time(), machine_busy_seconds())

    def start(self) -> None:
        self._start = self._read()
        self._threads = self.server.threads()

    def stop(self) -> tuple[float, float, float, float]:
        """(server, its event loop, this bench, other processes), in cores."""
        now = self._read()
        elapsed, server, loop, ours, machine = (b - a for a, b in zip(self._start, now,
                                                                         strict=True))
        self.thread_cores = {kind: (seconds - self._threads.get(kind, 0.0)) / elapsed
                             for kind, seconds in self.server.threads().items()}
        return (server / elapsed, loop / elapsed, ours / elapsed,
                (machine - server - ours) / elapsed)


def _window_cores(samples: list[dict[str, Any]], start: float, end: float) -> dict[str, float]:
    inside = [s for s in samples if start <= s["t"] <= end and "threads" in s]
    if len(inside) < 2 or inside[-1]["t"] <= inside[0]["t"]:
        return {}
    first, last = inside[0], inside[-1]
    span = last["t"] - first["t"]

    def used(keep: Any) -> float:
        return sum(v - first["threads"].get(k, 0.0) for k, v in last["threads"].items()
                   if keep(k)) / span

    return {**{kind: used(lambda k, kind=kind: k == kind) for kind in first["threads"]},
            "server": used(lambda k: True),
            "machine": (last["machine_cpu"] - first["machine_cpu"]) / span}


def analyse(crowd: Crowd, args: argparse.Namespace, capacity: float, measured: bool,
            admissions: int, plot: str | None) -> Report:
    visitors = crowd.visitors
    failures = sum(crowd.failures.values())
    bad = sum(n for status, n in crowd.statuses.items() if status >= 500) + failures
    logins = sorted(v.logged_in_at for v in visitors if v.logged_in_at is not None)
    queueing = [s["t"] for s in crowd.room if s.get("waiting", 0) > 0]
    rate = float("nan")
    if queueing:
        start, end = queueing[0], queueing[-1]
        count = bisect.bisect_right(logins, end) - bisect.bisect_left(logins, start)
        rate = count / max(end - start, 1e-9)
        cores = _window_cores(crowd.room, start, end)
        lags = [lag for t, lag in crowd.loop_lag if start <= t <= end]
    else:
        cores, lags = {}, []
    return Report(
        args.visitors, args.arrival_seconds, args.duration, capacity, measured, admissions,
        args.capacity, crowd.answers + failures,
        {str(k): n for k, n in sorted(crowd.statuses.items())}, crowd.failures,
        1 - bad / max(1, crowd.answers + failures), len(crowd.queued_ttfb),
        percentile(crowd.queued_ttfb, 0.5) * 1000, percentile(crowd.queued_ttfb, 0.99) * 1000,
        max(crowd.queued_ttfb, default=float("nan")) * 1000,
        percentile(crowd.other_ttfb, 0.99) * 1000,
        sum(1 for v in visitors if v.number is None and v.admitted_at is not None),
        sum(1 for v in visitors if v.number is not None), len(logins),
        sum(1 for v in visitors if v.admitted_at is None), rate, fifo_violations(visitors),
        max((s.get("waiting", 0) for s in crowd.room), default=0), plot,
        queueing_cores=cores, loop_lag_ms=(percentile(lags, 0.5) * 1000,
                                           percentile(lags, 0.99) * 1000,
                                           max(lags, default=float("nan")) * 1000))


def draw(crowd: Crowd, path: str, report: Report) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed (pip install matplotlib): no plot")
        return None
    samples = crowd.room
    times = [s["t"] for s in samples]
    figure, queue_axis = plt.subplots(figsize=(10, 5))
    queue_axis.plot(times, [s["waiting"] for s in samples], color="tab:blue", label="waiting")
    queue_axis.plot(times, [s["active"] + s["called"] for s in samples], color="tab:gray",
                    label="slots in use")
    queue_axis.set_xlabel("seconds since the first arrival")
    queue_axis.set_ylabel("visitors")
    rate_axis = queue_axis.twinx()
    admitted = [(b["t"], (b["admitted_total"] - a["admitted_total"]) / (b["t"] - a["t"]))
                for a, b in itertools.pairwise(samples) if b["t"] > a["t"]]
    rate_axis.plot([t for t, _ in admitted], [r for _, r in admitted], color="tab:orange",
                   label="admissions/s")
    logins = sorted(v.logged_in_at for v in crowd.visitors if v.logged_in_at is not None)
    seconds = range(int(report.duration) + 1)
    per_second = [bisect.bisect_left(logins, s + 1) - bisect.bisect_left(logins, s)
                  for s in seconds]
    rate_axis.plot(list(seconds), per_second, color="tab:green", label="logins/s")
    hashing = [(s["t"], s["hash_queue_depth"]) for s in samples if "hash_queue_depth" in s]
    rate_axis.plot([t for t, _ in hashing], [d for _, d in hashing], color="tab:purple",
                   linewidth=0.8, label="hash queue")
    rate_axis.axhline(report.login_capacity, color="tab:red", linestyle="--",
                      label="login capacity")
    rate_axis.set_ylabel("per second")
    lines = queue_axis.get_legend_handles_labels()
    more = rate_axis.get_legend_handles_labels()
    queue_axis.legend(lines[0] + more[0], lines[1] + more[1], loc="upper right")
    queue_axis.set_title(f"{report.visitors} visitors within {report.arrival_seconds:g} s; "
                         f"room: {report.slots} slots, {report.admissions_per_minute}/min")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def _table(rows: list[tuple[str, str, str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def render(report: Report) -> str:
    def verdict(ok: bool) -> str:
        return "meets" if ok else "misses"

    source = "measured" if report.login_capacity_measured else "given"
    rows = [
        ("measure", "value", "target"),
        ("-------", "-----", "------"),
        ("requests answered without 5xx or time-out",
         f"{report.answered_share:.2%} of {report.requests}",
         f">= {TARGET_ANSWERED:.0%}: {verdict(report.answered_share >= TARGET_ANSWERED)}"),
        ("statuses", ", ".join(f"{k}: {v}" for k, v in report.statuses.items())
         + (f"; failures {report.failures}" if report.failures else ""), ""),
        ("time to first byte, waiting answers",
         (f"p50 {report.queued_ttfb_p50_ms:.1f} ms, p99 {report.queued_ttfb_p99_ms:.1f} ms, "
          f"max {report.queued_ttfb_max_ms:.0f} ms (n={report.queued_answers})"),
         (f"p99 < {TARGET_TTFB_P99_MS:.0f} ms: "
          f"{verdict(report.queued_ttfb_p99_ms < TARGET_TTFB_P99_MS)}")),
        ("time to first byte, other answers (p99)", f"{report.other_ttfb_p99_ms:.0f} ms",
         "(logins: argon2)"),
        ("logins/s let through while people waited",
         (f"{report.logins_per_second_while_queueing:.1f}/s = "
          f"{report.logins_per_second_while_queueing / report.login_capacity:.0%} of the "
          f"login capacity ({report.login_capacity:.1f}/s, {source})"),
         f"room admits {report.admissions_per_minute / 60:.1f}/s"),
        ("FIFO violations", str(report.fifo_violations),
         f"0: {verdict(report.fifo_violations == 0)}"),
        ("visitors: straight in / given a ticket",
         f"{report.let_straight_in} / {report.given_tickets}", ""),
        ("logged in / still waiting at the end",
         f"{report.logged_in} / {report.still_waiting}", f"run bounded to {report.duration:g} s"),
        ("longest queue", str(report.longest_queue), ""),
        ("CPU during the crowd (cores)",
         (f"server {report.server_cores:.2f} (event loop {report.server_loop_cores:.2f}), "
          f"bench client {report.client_cores:.2f}, other processes {report.other_cores:.2f}"),
         f"of {os.cpu_count()}"),
        ("event loop lateness while people waited",
         "p50 {:.1f} ms, p99 {:.1f} ms, max {:.0f} ms".format(*report.loop_lag_ms), ""),
        ("CPU while people waited (cores)",
         ", ".join(f"{k} {v:.2f}" for k, v in report.queueing_cores.items()), ""),
        ("CPU measuring the capacity (cores)",
         "server {:.2f}, bench client {:.2f}, other processes {:.2f}".format(
             *report.capacity_cores)
         + "".join(f", {k} {v:.2f}" for k, v in report.capacity_threads.items()), ""),
    ]
    heading = (f"Flash crowd: {report.visitors} visitors within {report.arrival_seconds:g} s "
               f"at /login and /api/v1/login; one sekisho process, argon2id m=19456 t=2 p=1, "
               f"{os.cpu_count()} CPUs")
    plot = f"\nplot: {report.plot}" if report.plot else ""
    return f"{heading}\n{_table(rows)}{plot}"


# --- main -------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=textwrap.dedent(__doc__ or ""),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visitors", type=int, default=5000)
    parser.add_argument("--arrival-seconds", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=120.0,
                        help="seconds from the first arrival until the run stops (default 120)")
    parser.add_argument("--login-capacity", type=float,
                        help="logins/s this machine serves; measured when omitted")
    parser.add_argument("--measure-seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=16,
                        help="closed-loop clients measuring the login capacity (default 16)")
    parser.add_argument("--admission-share", type=float, default=1.0,
                        help="the room admits this share of the login capacity (default 1: "
                             "as fast as the service logs people in; a lower share caps "
                             "the logins below it)")
    parser.add_argument("--capacity", type=int,
                        help="the room's slots (waiting_room_capacity; default 1.5 s worth "
                             "of the login capacity)")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds a client waits for an answer (default 10)")
    parser.add_argument("--seed", type=int, default=5000)
    parser.add_argument("--plot", default="flash_crowd.png",
                        help="PNG path (needs matplotlib; default flash_crowd.png)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--samples", help="write the half-second samples of the room, the "
                                         "hasher and the CPU to this JSON file")
    parser.add_argument("--serve-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_child:
        serve_child(json.loads(args.serve_child))
        return
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    from sekisho.migrations.runner import upgrade

    with tempfile.TemporaryDirectory(prefix="sekisho-crowd-") as tmp:
        workdir = Path(tmp)
        base = server_settings(workdir, {})
        upgrade(base["database_url"])
        log(f"seeding {args.visitors} members")
        asyncio.run(seed(Settings(**base), args.visitors))
        capacity, measured = args.login_capacity, args.login_capacity is None
        if measured:
            log(f"measuring login capacity ({args.connections} clients, "
                f"{args.measure_seconds:g} s, room off)")
            server = Server(server_settings(workdir, {"enabled": False}), workdir)
            meter = CpuMeter(server)
            try:
                meter.start()
                capacity, statuses = asyncio.run(measure_capacity(
                    server.port, args.connections, args.measure_seconds, args.visitors,
                    args.timeout))
                server_cores, _, client_cores, other_cores = meter.stop()
                capacity_threads = meter.thread_cores
            finally:
                server.stop()
            log(f"  {capacity:.1f} logins/s ({statuses})")
        admissions = max(1, round(capacity * args.admission_share * 60))
        args.capacity = args.capacity or max(10, round(capacity * 1.5))
        room = {"enabled": True, "capacity": args.capacity,
                "admissions_per_minute": admissions, "pass_seconds": 600}
        log(f"crowd: {args.visitors} visitors within {args.arrival_seconds:g} s; room "
            f"{args.capacity} slots, {admissions}/min")
        server = Server(server_settings(workdir, room), workdir)
        meter = CpuMeter(server)
        try:
            meter.start()
            with collector_paused():
                crowd = asyncio.run(run_crowd(server, args, time.perf_counter() + 1.0))
            cores = meter.stop()
        finally:
            server.stop()
        crowd.loop_lag = [(t - crowd.epoch, lag) for t, lag in server.lags()]
        if args.samples:
            Path(args.samples).write_text(json.dumps(crowd.room))
    report = analyse(crowd, args, capacity, measured, admissions, None)
    (report.server_cores, report.server_loop_cores, report.client_cores,
     report.other_cores) = cores
    if measured:
        report.capacity_cores = (server_cores, client_cores, other_cores)
        report.capacity_threads = capacity_threads
    report.plot = draw(crowd, args.plot, report)
    print(json.dumps(asdict(report), indent=2) if args.json else render(report))
    ok = (report.answered_share >= TARGET_ANSWERED and report.fifo_violations == 0
          and report.queued_ttfb_p99_ms < TARGET_TTFB_P99_MS)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
