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
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from sekisho.app import create_app
from sekisho.settings import Settings

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, timeout: float, *, alive: Callable[[], bool] = lambda: True,
                 describe: Callable[[], str] = lambda: "") -> None:
    """Poll ``{url}/healthz`` until it answers 200; raise when ``alive()`` turns false or on timeout."""
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

    def output(self, limit: int = 4000) -> str:
        """The tail of the child's stdout and stderr, for failure messages."""
        parts = []
        for name, path in (("stdout", self.stdout_path), ("stderr", self.stderr_path)):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                text = ""
            if text.strip():
                parts.append(f"--- {name} ---\n{text[-limit:]}")
        return "\n".join(parts)

    @property
    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""


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
    output files stay in ``log_dir`` (default: a new temporary directory).
    """
    port = port or free_port()
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
