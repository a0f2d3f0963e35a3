"""Login throughput at OWASP's argon2id parameters (m=19456 KiB, t=2, p=1), using every core.

    python3 bench/login_throughput.py [--database-url postgresql+asyncpg://postgres@127.0.0.1/postgres]
                                      [--connections 16] [--login-seconds 15] [--json]

1. Raw: hashes per second of each argon2id implementation installed here (argon2-cffi as
   built, PyNaCl's libsodium, pyca/cryptography's OpenSSL), with 1 thread and with one
   thread per core, plus the CPU time of one hash.
2. HTTP: sekisho under uvicorn in a process of its own on 127.0.0.1 (rate limits off, no
   outbox worker), ``--members`` verified members sharing one password. ``wrk`` (Debian's
   package, installed when missing and run as root) or, failing that, an asyncio client in
   this process keeps ``--connections`` requests in flight: ``POST /api/v1/login`` round-robin
   over the members, then ``GET /api/v1/session`` with one member's bearer token. Reported:
   requests/s, p50/p99 latency, status counts (all must be 200), the server's CPU time per
   request (event-loop thread and the others: hashing and SQLite threads), and logins/s as a
   share of the raw rate of the backend the server hashes with. The logins run in
   ``--rounds`` slices, each right after a raw measurement of that backend (the server idle
   meanwhile): on a shared VM whose speed moves by a fifth within a minute, a raw rate taken
   at another time says little about the logins, so the share compares the two over the
   same minutes, and each round's share is shown.

SQLite always; PostgreSQL as well with ``--database-url`` (the URL only serves to reach the
server: the bench creates, uses and drops its own database, ``--pg-database``, default
``sekisho_bench``). Everything stays on loopback; a run takes about a minute (1.5 with
PostgreSQL). The "other processes" columns tell whether anything else shared the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sekisho.methods.password.backends import (
    Argon2Backend,
    Argon2CffiBackend,
    available_backends,
    measure,
    select_backend,
)
from sekisho.settings import Settings

PASSWORD = "kaede tsuki hoshi sora"
HOST = "127.0.0.1"
OWASP = {"memory_kib": 19456, "time_cost": 2, "parallelism": 1}
TARGET_LOGINS = 120.0
TARGET_SHARE = 0.85
BUSY_WARNING = 0.25  # cores used by other processes beyond which figures are suspect


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- raw hashing ------------------------------------------------------------------------------

@dataclass
class RawRate:
    backend: str
    name: str
    releases_gil: bool
    threads: int
    rate: float
    cpu_ms_per_hash: float
    other_processes_cores: float
    """Cores kept busy meanwhile by other processes (see :attr:`Load.other_processes_cores`)."""


def raw_rates(seconds: float, thread_counts: list[int]) -> list[RawRate]:
    results = []
    for backend in available_backends(**OWASP):
        for threads in thread_counts:
            busy, ours, started = machine_busy_seconds(), time.process_time(), time.monotonic()
            rate, cpu = measure(backend.hash, seconds, threads, PASSWORD)
            others = max(0.0, ((machine_busy_seconds() - busy) - (time.process_time() - ours))
                         / (time.monotonic() - started))
            log(f"  raw {backend.name}, {threads} thread(s): {rate:.1f}/s")
            results.append(RawRate(backend.key, backend.name, backend.releases_gil, threads,
                                   rate, cpu * 1000, others))
    return results


# --- the server -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def bench_settings(data_dir: Path, database_url: str) -> dict[str, Any]:
    """Settings (by field name) of the server under test: OWASP hashing, no rate limits, no
    waiting room (this measures what the room should admit; bench/flash_crowd.py measures
    the room)."""
    from sekisho.guard.limits import Action

    return {
        "data_dir": str(data_dir), "database_url": database_url,
        "secret_key": "bench-secret-key-" + "x" * 32,
        "argon2_memory_kib": OWASP["memory_kib"], "argon2_time_cost": OWASP["time_cost"],
        "argon2_parallelism": OWASP["parallelism"],
        "rate_limits": {action.value: {"per_ip": None, "per_key": None} for action in Action},
        "run_outbox_worker": False, "waiting_room_enabled": False,
    }


def member_email(index: int) -> str:
    return f"bench{index:04d}@example.jp"


async def create_members(settings: Settings, count: int) -> None:
    """``count`` verified members with one password (one hash: salts need not differ here)."""
    from sekisho.core import build_core
    from sekisho.identity.normalize import normalise_email

    core = build_core(settings)
    try:
        password_hash = await core.hasher.hash(PASSWORD)
        async with core.db.transaction() as db:
            for index in range(count):
                await core.accounts.create(db, email=normalise_email(member_email(index)),
                                           password_hash=password_hash, display_name=None,
                                           locale="ja", verified=True)
    finally:
        await core.db.dispose()


def serve_child(config: dict[str, Any]) -> None:
    """The server process: ``create_app`` under uvicorn, as ``sekisho serve`` runs it."""
    import uvicorn

    from sekisho.app import create_app
    from sekisho.observability.logs import log_config

    settings = Settings(**config["settings"])
    app = create_app(settings)
    hasher = app.state.core.hasher
    backend = getattr(hasher, "backend", None)
    if not isinstance(backend, Argon2Backend):
        # hashing.PasswordHasher as it was before backends: argon2-cffi, whatever its build.
        backend = Argon2CffiBackend(settings.argon2_memory_kib, settings.argon2_time_cost,
                                    settings.argon2_parallelism)
    print(json.dumps({"backend": backend.key, "name": backend.name}), flush=True)
    # As ``sekisho serve`` runs it: sekisho's own JSON access log (with request ids) when
    # the access log is on, uvicorn's off.
    uvicorn.run(app, host=HOST, port=config["port"], proxy_headers=False,
                log_level=config["log_level"], access_log=False,
                log_config=log_config(settings.log_format, config["log_level"].upper()))


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    backend: str
    backend_name: str
    logs: Path

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

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(settings: dict[str, Any], logs: Path, *, access_log: bool) -> Server:
    port = free_port()
    config = {"settings": settings, "port": port, "access_log": access_log,
              "log_level": "info" if access_log else "warning"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEKISHO_")}
    out, err = logs / "server.out", logs / "server.err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, __file__, "--serve-child", json.dumps(config)], env=env,
            stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n"
                               f"{err.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                info = json.loads(out.read_text().splitlines()[0])
                return Server(url, process, info["backend"], info["name"], logs)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not answer /healthz within 60 s:\n"
                       f"{err.read_text(errors='replace')[-3000:]}")


# --- load generators --------------------------------------------------------------------------

@dataclass
class Load:
    requests: int
    seconds: float
    rate: float
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]
    errors: int
    """Connection errors and time-outs (not HTTP statuses)."""
    generator: str
    generator_cpu_ms_per_request: float = float("nan")
    server_cpu_ms_per_request: float = float("nan")
    server_loop_cpu_ms_per_request: float = float("nan")
    """CPU of the server's main thread (the event loop: HTTP, FastAPI, ORM) per request."""
    server_other_cpu_ms_per_request: float = float("nan")
    """CPU of the server's other threads (argon2 hashing, SQLite connections) per request."""
    postgres_cores: float = 0.0
    """Cores kept busy meanwhile by PostgreSQL's processes (runs on PostgreSQL only)."""
    other_processes_cores: float = float("nan")
    """Cores kept busy meanwhile by anything else (other work on the machine): figures taken
    while this is high are not the machine's best."""

    @property
    def all_ok(self) -> bool:
        return self.errors == 0 and set(self.statuses) == {"200"}

    @classmethod
    def combine(cls, slices: list[Load]) -> Load:
        """Slices of one load as one: totals, rates and CPU over all of them; p50 the slices'
        median p50 and p99 their highest (wrk reports percentiles, not every latency)."""
        requests = sum(s.requests for s in slices)
        seconds = sum(s.seconds for s in slices)

        def per_request(name: str) -> float:
            return sum(getattr(s, name) * s.requests for s in slices) / max(1, requests)

        def over_time(name: str) -> float:
            return sum(getattr(s, name) * s.seconds for s in slices) / seconds

        p50s = sorted(s.p50_ms for s in slices)
        return cls(requests, seconds, requests / seconds, p50s[len(p50s) // 2],
                   max(s.p99_ms for s in slices),
                   _sum_statuses([kv for s in slices for kv in s.statuses.items()]),
                   sum(s.errors for s in slices), slices[0].generator,
                   per_request("generator_cpu_ms_per_request"),
                   per_request("server_cpu_ms_per_request"),
                   per_request("server_loop_cpu_ms_per_request"),
                   per_request("server_other_cpu_ms_per_request"),
                   over_time("postgres_cores"), over_time("other_processes_cores"))


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    bodies: list[str] = field(default_factory=list)
    """Sent round-robin; none for a GET."""
    cookies: list[str] = field(default_factory=list)
    """A ``Cookie`` header to send with each body (the same index), if any."""


_WRK_SCRIPT = """
local bodies = {bodies}
local cookies = {cookies}
local headers = {headers}
local method, path = {method}, {path}
local next_body = 0
statuses = {{}}
local threads = {{}}

function setup(thread)
  table.insert(threads, thread)
end

function request()
  local body = nil
  if #bodies > 0 then
    next_body = next_body % #bodies + 1
    body = bodies[next_body]
    if #cookies > 0 then headers["Cookie"] = cookies[next_body] end
  end
  return wrk.format(method, path, headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {{}}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counts[#counts + 1] = string.format('"%d": %d', status, n)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"errors": %d, "statuses": {{%s}}}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, table.concat(counts, ", ")))
end
"""


def _lua(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid Lua string literal here
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{_lua(k)}] = {_lua(v)}" for k, v in value.items()) + "}"
    return "{" + ", ".join(_lua(item) for item in value) + "}"


def find_wrk(install: bool) -> str | None:
    found = shutil.which("wrk")
    if found or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    log("  installing wrk (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "install", "-y", "-qq", "wrk"],
                    ["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        try:
            subprocess.run(command, env=env, capture_output=True, timeout=180, check=False)
        except subprocess.TimeoutExpired:
            return None
        if shutil.which("wrk"):
            break
    return shutil.which("wrk")


def _sum_statuses(counts: list[tuple[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for status, n in counts:
        total[status] = total.get(status, 0) + n
    return total


def run_wrk(wrk: str, url: str, request: Request, connections: int, seconds: float,
            workdir: Path) -> Load:
    script = workdir / "bench.lua"
    script.write_text(_WRK_SCRIPT.format(
        bodies=_lua(request.bodies), cookies=_lua(request.cookies),
        headers=_lua(request.headers), method=_lua(request.method),
        path=_lua(request.path)))
    before = os.times()
    done = subprocess.run(
        [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script),
         url], capture_output=True, text=True, timeout=seconds + 60, check=False)
    after = os.times()
    lines = [line for line in done.stdout.splitlines() if line.startswith("WRK_RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    found = json.loads(lines[-1].removeprefix("WRK_RESULT "))
    elapsed = found["duration_us"] / 1e6
    requests = found["requests"]
    cpu = (after.children_user + after.children_system
           - before.children_user - before.children_system)
    return Load(requests, elapsed, requests / elapsed, found["p50_us"] / 1000,
                found["p99_us"] / 1000, _sum_statuses(list(found["statuses"].items())),
                found["errors"], "wrk", cpu / max(1, requests) * 1000)


async def _python_load(url: str, request: Request, connections: int, seconds: float
                       ) -> tuple[list[float], list[tuple[str, int]], int]:
    """Keep-alive HTTP/1.1 connections, each sending the next request when its answer is in."""
    port = int(url.rsplit(":", 1)[1])
    encoded = []
    for index, body in enumerate(request.bodies or [""]):
        head = [f"{request.method} {request.path} HTTP/1.1", f"Host: {HOST}:{port}",
                *(f"{k}: {v}" for k, v in request.headers.items())]
        if request.cookies:
            head.append(f"Cookie: {request.cookies[index]}")
        if request.bodies:
            head.append(f"Content-Length: {len(body.encode())}")
        encoded.append(("\r\n".join(head) + "\r\n\r\n" + body).encode())
    latencies: list[float] = []
    statuses: list[tuple[str, int]] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    turn = 0

    async def client() -> None:
        nonlocal errors, turn
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while time.perf_counter() < deadline:
                payload = encoded[turn % len(encoded)]
                turn += 1
                started = time.perf_counter()
                writer.write(payload)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                statuses.append((head.split(b" ", 2)[1].decode(), 1))
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return latencies, statuses, errors


def run_python(url: str, request: Request, connections: int, seconds: float) -> Load:
    before = os.times()
    started = time.perf_counter()
    latencies, statuses, errors = asyncio.run(_python_load(url, request, connections, seconds))
    elapsed = time.perf_counter() - started
    after = os.times()
    ordered = sorted(latencies) or [float("nan")]
    cpu = after.user + after.system - before.user - before.system
    return Load(len(latencies), elapsed, len(latencies) / elapsed,
                ordered[len(ordered) // 2] * 1000,
                ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
                _sum_statuses(statuses), errors, "python asyncio",
                cpu / max(1, len(latencies)) * 1000)


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (/proc/stat; NaN elsewhere)."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
    except OSError:
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU seconds used so far by the running processes named ``postgres`` (0 elsewhere)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, _, rest = text.partition(" (")[2].rpartition(")")
        if name == "postgres":
            fields = rest.split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def load(server: Server, request: Request, connections: int, seconds: float, wrk: str | None,
         workdir: Path, *, postgres: bool = False) -> Load:
    total_before, loop_before = server.cpu_seconds()
    busy_before = machine_busy_seconds()
    pg_before = postgres_cpu_seconds() if postgres else 0.0
    if wrk:
        result = run_wrk(wrk, server.url, request, connections, seconds, workdir)
    else:
        result = run_python(server.url, request, connections, seconds)
    busy_after = machine_busy_seconds()
    pg_after = postgres_cpu_seconds() if postgres else 0.0
    total_after, loop_after = server.cpu_seconds()
    per = 1000 / max(1, result.requests)
    result.server_cpu_ms_per_request = (total_after - total_before) * per
    result.server_loop_cpu_ms_per_request = (loop_after - loop_before) * per
    result.server_other_cpu_ms_per_request = (
        result.server_cpu_ms_per_request - result.server_loop_cpu_ms_per_request)
    ours = (total_after - total_before
            + result.generator_cpu_ms_per_request * result.requests / 1000)
    # Clock ticks and processes that exit meanwhile can make either slightly negative.
    result.postgres_cores = max(0.0, (pg_after - pg_before) / result.seconds)
    result.other_processes_cores = max(
        0.0, (busy_after - busy_before - ours - (pg_after - pg_before)) / result.seconds)
    return result


# --- one database -----------------------------------------------------------------------------

@dataclass
class HttpResult:
    database: str
    backend: str
    backend_name: str
    connections: int
    login: Load
    session: Load
    rounds: list[tuple[float, float]]
    """(raw hashes/s of the server's backend with one thread per core, logins/s) of each
    round, measured one right after the other."""

    @property
    def raw_rate(self) -> float:
        return sum(raw for raw, _ in self.rounds) / len(self.rounds)

    @property
    def share(self) -> float:
        """Logins/s over the rounds ÷ the raw rate over the same rounds."""
        return self.login.rate / self.raw_rate


async def _pg_admin(admin_url: str, statements: list[str]) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


def http_run(database: str, admin_url: str | None, pg_database: str, args: argparse.Namespace,
             wrk: str | None) -> HttpResult:
    from sekisho.migrations.runner import upgrade

    with tempfile.TemporaryDirectory(prefix="sekisho-bench-") as tmp:
        workdir = Path(tmp)
        if admin_url is None:
            url = f"sqlite+aiosqlite:///{workdir / 'sekisho.db'}"
        else:
            drop = f'DROP DATABASE IF EXISTS "{pg_database}" WITH (FORCE)'
            asyncio.run(_pg_admin(admin_url, [drop, f'CREATE DATABASE "{pg_database}"']))
            url = admin_url.rsplit("/", 1)[0] + f"/{pg_database}"
        try:
            upgrade(url)
            settings = bench_settings(workdir, url)
            members = max(args.members, args.connections + 1)
            asyncio.run(create_members(Settings(**settings), members))
            server = start_server(settings, workdir, access_log=not args.no_access_log)
            try:
                log(f"  {database}: server pid {server.process.pid} on {server.url}, "
                    f"hashing with {server.backend_name}")
                return _drive(database, server, members, args, wrk, workdir)
            finally:
                server.stop()
        finally:
            if admin_url is not None:
                asyncio.run(_pg_admin(admin_url, [drop]))


def _drive(database: str, server: Server, members: int, args: argparse.Namespace,
           wrk: str | None, workdir: Path) -> HttpResult:
    json_headers = {"Content-Type": "application/json", "Accept": "application/json"}
    # The last member is kept out of the rotation: its session is the one read back.
    answer = httpx.post(f"{server.url}/api/v1/login", headers=json_headers, timeout=30,
                        json={"identifier": member_email(members - 1), "password": PASSWORD})
    answer.raise_for_status()
    token = answer.json()["session_token"]
    # Members log in from their own browsers, as most do: each presents the device cookie
    # its first login earned (and that first login's new-device mail is out of the way).
    bodies = [json.dumps({"identifier": member_email(i), "password": PASSWORD})
              for i in range(members - 1)]
    cookies = []
    for body in bodies:
        first = httpx.post(f"{server.url}/api/v1/login", headers=json_headers, timeout=30,
                           content=body)
        first.raise_for_status()
        cookies.append(f"sekisho_known={first.cookies['sekisho_known']}")
    logins = Request("POST", "/api/v1/login", json_headers, bodies, cookies)
    session = Request("GET", "/api/v1/session",
                      {"Accept": "application/json", "Authorization": f"Bearer {token}"})
    postgres = database == "postgresql"
    if args.warmup_seconds > 0:
        load(server, logins, args.connections, args.warmup_seconds, wrk, workdir,
             postgres=postgres)
    threads = os.cpu_count() or 1
    backend = select_backend(**OWASP, prefer=server.backend)
    rounds, slices = [], []
    for _ in range(args.rounds):
        raw_rate = measure(backend.hash, args.raw_seconds, threads, PASSWORD)[0]
        slices.append(load(server, logins, args.connections, args.login_seconds / args.rounds,
                           wrk, workdir, postgres=postgres))
        rounds.append((raw_rate, slices[-1].rate))
        log(f"  {database}: raw {raw_rate:.1f}/s, then {slices[-1].rate:.1f} logins/s "
            f"({slices[-1].rate / raw_rate:.0%})")
    login = Load.combine(slices)
    log(f"  {database}: {login.rate:.1f} logins/s, p50 {login.p50_ms:.0f} ms, "
        f"p99 {login.p99_ms:.0f} ms, {login.statuses}")
    current = load(server, session, args.connections, args.session_seconds, wrk, workdir,
                   postgres=postgres)
    log(f"  {database}: {current.rate:.0f} session GETs/s, p50 {current.p50_ms:.1f} ms, "
        f"{current.statuses}")
    return HttpResult(database, server.backend, server.backend_name, args.connections, login,
                      current, rounds)


# --- report -----------------------------------------------------------------------------------

def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column)
              for column in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def report(machine: dict[str, Any], raw: list[RawRate], http: list[HttpResult]) -> str:
    heading = (f"argon2id m={OWASP['memory_kib']} KiB t={OWASP['time_cost']} "
               f"p={OWASP['parallelism']}; {machine['cpus']} CPUs ({machine['cpu']}), "
               f"load average before {machine['load_before']}")
    parts = [heading]
    if raw:
        parts += ["", "Raw hashing", _table(
            ["implementation", "threads", "hashes/s", "CPU ms/hash", "releases GIL",
             "other processes (cores)"],
            [[r.name, str(r.threads), f"{r.rate:.1f}", f"{r.cpu_ms_per_hash:.1f}",
              "yes" if r.releases_gil else "no", f"{r.other_processes_cores:.2f}"]
             for r in raw])]
    for h in http:
        on_pg = h.database == "postgresql"
        header = ["request", "req/s", "p50 ms", "p99 ms", "statuses", "server CPU ms/req",
                  "of it event loop", "generator CPU ms/req",
                  *(["PostgreSQL (cores)"] if on_pg else []), "other processes (cores)"]
        rows = []
        for label, result in (("POST /api/v1/login", h.login), ("GET /api/v1/session", h.session)):
            statuses = ", ".join(f"{k}: {v}" for k, v in sorted(result.statuses.items()))
            if result.errors:
                statuses += f", errors: {result.errors}"
            rows.append([label, f"{result.rate:.1f}", f"{result.p50_ms:.1f}",
                         f"{result.p99_ms:.1f}", statuses,
                         f"{result.server_cpu_ms_per_request:.2f}",
                         f"{result.server_loop_cpu_ms_per_request:.2f}",
                         f"{result.generator_cpu_ms_per_request:.2f}",
                         *([f"{result.postgres_cores:.2f}"] if on_pg else []),
                         f"{result.other_processes_cores:.2f}"])
        meets = h.login.rate >= TARGET_LOGINS and h.share >= TARGET_SHARE
        title = (f"HTTP on {h.database}: {h.connections} connections ({h.login.generator}), "
                 f"server hashing with {h.backend_name}")
        each = ", ".join(f"{login:.0f} ÷ {raw:.0f}" for raw, login in h.rounds)
        verdict = (f"logins/s = {h.share:.0%} of the raw rate ({h.raw_rate:.1f}/s with "
                   f"{machine['cpus']} threads, measured between the rounds: {each}); "
                   f"target >= {TARGET_LOGINS:.0f}/s and >= {TARGET_SHARE:.0%}: "
                   f"{'meets' if meets else 'misses'}")
        parts += ["", title, _table(header, rows), verdict]
    busiest = max([r.other_processes_cores for r in raw]
                  + [x.other_processes_cores for h in http for x in (h.login, h.session)]
                  + [0.0])
    if busiest > BUSY_WARNING:
        warning = (f"warning: other processes kept up to {busiest:.2f} cores busy during the "
                   "measurements: the figures understate this machine; run again when it is "
                   "idle")
        parts += ["", warning]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=textwrap.dedent(__doc__ or ""),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw-seconds", type=float, default=3.0,
                        help="length of each raw measurement (default 3)")
    parser.add_argument("--skip-raw", action="store_true",
                        help="measure only the server's backend, not every implementation")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--connections", type=int, default=16,
                        help="requests kept in flight (default 16)")
    parser.add_argument("--members", type=int, default=64,
                        help="members the logins rotate over (default 64)")
    parser.add_argument("--warmup-seconds", type=float, default=3.0)
    parser.add_argument("--login-seconds", type=float, default=16.0,
                        help="logins in all, split over the rounds (default 16)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="raw measurements of the server's backend, each followed by a "
                             "slice of the logins (default 4)")
    parser.add_argument("--session-seconds", type=float, default=8.0)
    parser.add_argument("--database-url", help="also run on this PostgreSQL server "
                        "(postgresql+asyncpg://user@127.0.0.1:5432/postgres)")
    parser.add_argument("--pg-database", default="sekisho_bench",
                        help="the database the bench creates and drops (default sekisho_bench)")
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--no-access-log", action="store_true",
                        help="run uvicorn without its access log (sekisho serve logs every "
                             "request)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--serve-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_child:
        serve_child(json.loads(args.serve_child))
        return
    if args.database_url and not args.database_url.startswith("postgresql"):
        parser.error("--database-url must be a postgresql+asyncpg:// URL")
    if not args.pg_database.startswith("sekisho_bench"):
        parser.error("--pg-database must start with sekisho_bench (it is dropped afterwards)")
    for url in filter(None, [args.database_url]):
        host = httpx.URL(url.replace("+asyncpg", "")).host
        if host not in ("127.0.0.1", "localhost", "::1"):
            parser.error("the bench runs on loopback only")

    threads = os.cpu_count() or 1
    machine = {"cpus": threads, "cpu": platform.processor() or platform.machine(),
               "python": platform.python_version(),
               "load_before": [round(x, 2) for x in os.getloadavg()]}
    raw: list[RawRate] = []
    if not args.skip_raw:
        log("raw argon2id rates")
        raw = raw_rates(args.raw_seconds, sorted({1, threads}))
    http: list[HttpResult] = []
    if not args.skip_http:
        wrk = None if args.generator == "python" else find_wrk(install=True)
        if args.generator == "wrk" and not wrk:
            parser.error("wrk is not available")
        databases: list[tuple[str, str | None]] = [("sqlite", None)]
        if args.database_url:
            databases.append(("postgresql", args.database_url))
        for name, admin_url in databases:
            log(f"HTTP on {name}")
            http.append(http_run(name, admin_url, args.pg_database, args, wrk))
    if args.json:
        print(json.dumps({
            "machine": machine, "parameters": OWASP, "raw": [asdict(r) for r in raw],
            "http": [{**asdict(h), "raw_rate": h.raw_rate, "share_of_raw": h.share,
                      "login_all_ok": h.login.all_ok, "session_all_ok": h.session.all_ok}
                     for h in http]}, indent=2))
    else:
        print(report(machine, raw, http))
    if any(not (h.login.all_ok and h.session.all_ok) for h in http):
        sys.exit("some requests did not answer 200")


if __name__ == "__main__":
    main()
