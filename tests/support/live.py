"""A live sekisho on loopback for tests: in this process's thread, or as ``sekisho serve``.

* :func:`serve_in_thread` runs ``create_app(settings)`` under uvicorn in a daemon thread of
  the test process; ``server.app.state.core`` is reachable from the test.
* :func:`serve_process` starts ``python -m sekisho serve`` as a child process configured by
  ``SEKISHO_*`` environment variables, the way a deployment runs it. Several of them can
  share one PostgreSQL database and Redis (``SEKISHO_DATABASE_URL``, ``SEKISHO_REDIS_URL``).
  ``serve`` migrates (and renews the demo member) only on the embedded SQLite default; a
  PostgreSQL database must already be migrated (``databases.create_pg_database`` does).

Both wait until ``/healthz`` answers before yielding, fail with the reason when the server
does not come up, and stop the server on exit. They only ever listen on 127.0.0.1.

:class:`LatencyProbe` measures answer times of a live server from a separate process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import FastAPI

from sekisho.app import create_app
from sekisho.settings import Settings

T = TypeVar("T")

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def ensure_free(port: int) -> None:
    """Refuse a port something already listens on: its /healthz would pass for ours."""
    with socket.socket() as sock:
        sock.settimeout(1)
        if sock.connect_ex((HOST, port)) == 0:
            raise RuntimeError(f"{HOST}:{port} is already in use")


def wait_healthy(url: str, timeout: float, *, alive: Callable[[], bool] = lambda: True,
                 describe: Callable[[], str] = lambda: "") -> None:
    """Poll ``{url}/healthz`` until it answers 200; raise if ``alive()`` turns false or on
    timeout, with ``describe()`` appended to the message."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"server at {url} stopped before answering /healthz{describe()}")
        try:
            answer = httpx.get(f"{url}/healthz", timeout=1)
            if answer.status_code == 200:
                return
            last = f"HTTP {answer.status_code}"
        except httpx.HTTPError as error:
            last = error
        time.sleep(0.05)
    raise RuntimeError(f"server at {url} did not answer /healthz within {timeout:g} s "
                       f"(last: {last!r}){describe()}")


# --- (a) uvicorn in a thread of the test process ---------------------------------------------

@dataclass
class ThreadServer:
    url: str
    port: int
    app: FastAPI
    server: uvicorn.Server
    thread: threading.Thread


@contextmanager
def serve_in_thread(settings: Settings, *, port: int | None = None, app: FastAPI | None = None,
                    startup_timeout: float = 20, stop_timeout: float = 10,
                    log_level: str = "warning") -> Iterator[ThreadServer]:
    """Serve ``create_app(settings)`` (or ``app``) on ``127.0.0.1:port`` from a daemon thread.

    ``port`` defaults to a free one; pass it when ``settings.base_url`` must name it.
    The app's lifespan (the outbox worker, if enabled) runs on the server's own event loop.
    """
    port = port or free_port()
    ensure_free(port)
    application = app if app is not None else create_app(settings)
    server = uvicorn.Server(uvicorn.Config(application, host=HOST, port=port,
                                           log_level=log_level))
    thread = threading.Thread(target=server.run, daemon=True, name=f"uvicorn-{port}")
    thread.start()
    url = f"http://{HOST}:{port}"
    try:
        wait_healthy(url, startup_timeout, alive=thread.is_alive)
        yield ThreadServer(url, port, application, server, thread)
    finally:
        server.should_exit = True
        thread.join(timeout=stop_timeout)


# --- (b) ``sekisho serve`` as a child process ------------------------------------------------

def settings_env(values: Mapping[str, Any]) -> dict[str, str]:
    """``SEKISHO_*`` variables for settings given by field name (``{"redis_url": ...}``).

    Strings and paths are passed as they are, everything else as JSON (what pydantic-settings
    reads for numbers, booleans, lists and dicts such as ``rate_limits``). ``None`` leaves a
    setting at its default.
    """
    env: dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            continue
        key = name if name.startswith("SEKISHO_") else f"SEKISHO_{name.upper()}"
        env[key] = value if isinstance(value, str) else \
            str(value) if isinstance(value, Path) else json.dumps(value)
    return env


@dataclass
class ProcessServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    _kept: dict[str, str] | None = None

    def _read(self, name: str) -> str:
        if self._kept is not None:
            return self._kept[name]
        path = self.stdout_path if name == "stdout" else self.stderr_path
        try:
            return path.read_text(errors="replace")
        except OSError:
            return ""

    def keep_output(self) -> None:
        """Read the output files into memory (before a temporary log directory goes)."""
        self._kept = {name: self._read(name) for name in ("stdout", "stderr")}

    def output(self, limit: int = 4000) -> str:
        """The tail of the child's stdout and stderr, for failure messages."""
        parts = []
        for name in ("stdout", "stderr"):
            text = self._read(name)
            if text.strip():
                parts.append(f"--- {name} ---\n{text[-limit:]}")
        return "\n".join(parts)

    @property
    def stderr(self) -> str:
        return self._read("stderr")


def _child_env(env: Mapping[str, str]) -> dict[str, str]:
    # Inherited SEKISHO_* settings (SEKISHO_CONFIG above all) would make the child depend on
    # whoever runs the tests; the test's own variables (SEKISHO_TEST_*) are not settings.
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("SEKISHO_") or k.startswith("SEKISHO_TEST_")}
    base["PYTHONUNBUFFERED"] = "1"
    base.update(env)
    return base


def _stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM (uvicorn shuts down gracefully), then SIGKILL to the child's group on timeout."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
        return
    except subprocess.TimeoutExpired:
        pass
    try:
        # The child leads its own session: its group holds it and any uvicorn workers.
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=timeout)


@contextmanager
def serve_process(env: Mapping[str, str], *, port: int | None = None, workers: int = 1,
                  startup_timeout: float = 30, stop_timeout: float = 10,
                  cwd: Path | None = None, log_dir: Path | None = None
                  ) -> Iterator[ProcessServer]:
    """Run ``python -m sekisho serve --host 127.0.0.1 --port N`` with ``env`` (``SEKISHO_*``).

    Give at least ``SEKISHO_DATA_DIR`` (the default ``./var`` is relative to ``cwd``) and, to
    share a database between instances, ``SEKISHO_DATABASE_URL``. Output goes to files (a full
    pipe would block the server); :meth:`ProcessServer.output` shows its tail. On exit the
    child gets SIGTERM, and SIGKILL if it is not gone after ``stop_timeout`` seconds. The
    output files stay in ``log_dir``; without one they live in a temporary directory that is
    removed at exit, after :meth:`ProcessServer.output` has been read into memory.
    """
    port = port or free_port()
    ensure_free(port)
    logs = log_dir or Path(tempfile.mkdtemp(prefix=f"sekisho-serve-{port}-"))
    logs.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = logs / f"serve-{port}.out", logs / f"serve-{port}.err"
    command = [sys.executable, "-m", "sekisho", "serve", "--host", HOST, "--port", str(port),
               "--workers", str(workers)]
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        process = subprocess.Popen(command, env=_child_env(env), cwd=cwd, stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=err, start_new_session=True)
    live = ProcessServer(f"http://{HOST}:{port}", port, process, stdout_path, stderr_path)
    try:
        wait_healthy(live.url, startup_timeout, alive=lambda: process.poll() is None,
                     describe=lambda: f" (exit code {process.poll()})\n{live.output()}")
        yield live
    finally:
        _stop(process, stop_timeout)
        if log_dir is None:
            live.keep_output()
            shutil.rmtree(logs, ignore_errors=True)


# --- load from the same machine --------------------------------------------------------------

LOAD_NICENESS = 10
"""A load generator's CPU priority here: below the server under test, as if on another
machine (Linux applies niceness per thread)."""


async def in_background_thread(load: Callable[[], T]) -> T:
    """Run ``load`` (a blocking call, such as ``asyncio.run`` of a burst) on a thread of
    its own at :data:`LOAD_NICENESS`, and await its result."""
    with ThreadPoolExecutor(1, thread_name_prefix="load", initializer=_yield_cpu) as thread:
        return await asyncio.get_running_loop().run_in_executor(thread, load)


def _yield_cpu() -> None:
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not permitted
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOAD_NICENESS)


# --- answer times seen from outside ----------------------------------------------------------

_PROBE = r"""
import json, sys, threading, time
import httpx

url, every, paths = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
stop = threading.Event()
samples = {path: [] for path in paths}
failures = []

def poll(path):
    with httpx.Client(base_url=url, timeout=5) as http:
        try:
            http.get(path)  # warm-up: setting up the connection is not measured
        except httpx.HTTPError as error:
            failures.append(f"{path} (warm-up): {error!r}")
        while not stop.is_set():
            when, started = time.time(), time.perf_counter()
            try:
                answer = http.get(path)
            except httpx.HTTPError as error:
                failures.append(f"{path}: {error!r}")
            else:
                samples[path].append((when, time.perf_counter() - started))
                if answer.status_code != 200:
                    failures.append(f"{path}: HTTP {answer.status_code}")
            stop.wait(every)

threads = [threading.Thread(target=poll, args=(path,), daemon=True) for path in paths]
for thread in threads:
    thread.start()
print("ready", flush=True)
sys.stdin.read()  # until the parent closes our stdin
stop.set()
for thread in threads:
    thread.join(timeout=10)
print(json.dumps({"samples": samples, "failures": failures}), flush=True)
"""


class LatencyProbe:
    """GETs each of ``paths`` every ``every`` seconds, each on its own connection, from a
    separate process: what it measures is the server's answer time, not the pauses of the
    test process (its event loop, the GIL, its garbage collector).

    After the ``with`` block, ``samples[path]`` holds ``(when, seconds)`` pairs, ``when``
    relative to :meth:`mark` (or to the start), and ``failures`` what went wrong.
    """

    def __init__(self, url: str, paths: tuple[str, ...] = ("/healthz",),
                 every: float = 0.02) -> None:
        self.url = url
        self.paths = paths
        self.every = every
        self.samples: dict[str, list[tuple[float, float]]] = {path: [] for path in paths}
        self.failures: list[str] = []
        self.origin = time.time()
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> LatencyProbe:
        self.origin = time.time()
        self._process = subprocess.Popen(
            [sys.executable, "-c", _PROBE, self.url, str(self.every), *self.paths],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != "ready":
            self._process.kill()
            raise RuntimeError(f"latency probe for {self.url} did not start")
        return self

    def mark(self) -> None:
        """From now on, ``when`` counts from this moment (the start of the load, say)."""
        self.origin = time.time()

    def __exit__(self, *exc: object) -> None:
        process = self._process
        assert process is not None
        try:
            out, _ = process.communicate(input="", timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            self.failures.append("latency probe did not stop")
            return
        report = json.loads(out.strip().splitlines()[-1])
        self.failures += report["failures"]
        for path, samples in report["samples"].items():
            self.samples[path] = [(when - self.origin, seconds) for when, seconds in samples]

    def worst(self, path: str) -> tuple[float, float]:
        """The slowest answer: ``(when, seconds)``."""
        return max(self.samples[path], key=lambda sample: sample[1])

    def summary(self) -> str:
        parts = []
        for path, samples in self.samples.items():
            if not samples:
                parts.append(f"{path}: no answer")
                continue
            ms = sorted(seconds * 1000 for _, seconds in samples)
            when, _ = self.worst(path)
            parts.append(f"{path} n={len(ms)} median {ms[len(ms) // 2]:.0f} ms, "
                         f"p95 {ms[int(len(ms) * 0.95)]:.0f} ms, "
                         f"max {ms[-1]:.0f} ms at {when:+.2f} s")
        return "; ".join(parts)
