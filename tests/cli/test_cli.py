"""The ``sekisho`` command as an operator runs it, configured by environment.

The first run of each path goes through ``python -m sekisho`` in a fresh process (the real entry
point, only the ``SEKISHO_*`` variables the test sets). Repeat runs use Typer's in-process
runner with the same environment: an interpreter start-up costs seconds on a small machine.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from support import databases

from typer.testing import CliRunner

from sekisho.cli import app as cli_app
from sekisho.db import make_engine
from sekisho.models import Base

COMMANDS = ["serve", "migrate", "member", "admin", "demo"]
HELP_PATHS = [[], ["serve"], ["migrate"], ["demo"], ["member"], ["member", "create"],
              ["admin"], ["admin", "create"]]
FAST_HASH = {"SEKISHO_ARGON2_MEMORY_KIB": "1024", "SEKISHO_ARGON2_TIME_COST": "1"}
DEMO_LINE = re.compile(r"demo member: demo@example\.com / password: (\S+)")
PASSWORD = "kaede tsuki hoshi"


def cli_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEKISHO_")}
    env.update(FAST_HASH, PYTHONUNBUFFERED="1", **values)
    return env


def sekisho(*args: str, cwd: Path, timeout: float = 60,
            **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sekisho", *args], cwd=cwd, env=cli_env(**env),
                          capture_output=True, text=True, timeout=timeout, check=False)


def sekisho_in_process(*args: str, **env: str) -> Any:
    """The same command in this process; every ``SEKISHO_*`` variable not given is unset."""
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SEKISHO_")}
    return CliRunner().invoke(cli_app, list(args), env={**unset, **FAST_HASH, **env})


def sqlite_tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


def accounts(path: Path) -> dict[str, tuple[str, bool]]:
    """email -> (role, verified) for every account in the SQLite database at ``path``."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT email, role, email_verified_at FROM accounts").fetchall()
    return {email: (role, verified is not None) for email, role, verified in rows}


EXPECTED_TABLES = {t.name for t in Base.metadata.sorted_tables} | {"alembic_version"}


# --- help ------------------------------------------------------------------------------------


def test_help_lists_every_command(tmp_path):
    result = sekisho("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = set(re.findall(r"^\W*(\w+)\s{2,}\S", result.stdout, flags=re.MULTILINE))
    assert set(COMMANDS) <= listed, result.stdout


@pytest.mark.parametrize("path", HELP_PATHS[1:], ids=" ".join)
def test_every_command_has_help(tmp_path, path):
    data = tmp_path / "var"
    result = sekisho_in_process(*path, "--help", SEKISHO_DATA_DIR=str(data))
    assert result.exit_code == 0, result.output
    assert re.search(rf"Usage: \S+ {' '.join(path)} ", result.output), result.output
    # ``--help`` must not do the work: no database, no secret key created.
    assert not data.exists()


# --- migrate ---------------------------------------------------------------------------------


def test_migrate_creates_the_sqlite_database_and_is_repeatable(tmp_path):
    data = tmp_path / "data"
    result = sekisho("migrate", cwd=tmp_path, SEKISHO_DATA_DIR=str(data))
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
    again = sekisho_in_process("migrate", SEKISHO_DATA_DIR=str(data))
    assert again.exit_code == 0, again.output
    assert EXPECTED_TABLES <= sqlite_tables(data / "sekisho.db")
    assert (data / "secret_key").is_file()
    assert not (tmp_path / "var").exists()  # the data dir setting is honoured


async def _pg_tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"))
            return {name for (name,) in rows}
    finally:
        await engine.dispose()


def test_migrate_on_postgresql(tmp_path):
    name = f"sekisho_cli_{os.getpid()}"
    try:
        databases.in_thread(asyncio.run, databases._pg_exec(
            [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"']))
    except Exception as error:  # noqa: BLE001 - any connection failure
        databases.unavailable("PostgreSQL", error)
    url = databases.PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        env = {"SEKISHO_DATABASE_URL": url, "SEKISHO_DATA_DIR": str(tmp_path / "data")}
        result = sekisho("migrate", cwd=tmp_path, **env)
        assert result.returncode == 0, result.stderr
        again = sekisho_in_process("migrate", **env)
        assert again.exit_code == 0, again.output
        assert EXPECTED_TABLES <= databases.in_thread(asyncio.run, _pg_tables(url))
        assert not (tmp_path / "data" / "sekisho.db").exists()  # not quietly on SQLite
    finally:
        databases.in_thread(asyncio.run, databases._pg_exec(
            [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)']))


# --- members and staff ----------------------------------------------------------------------


def test_member_and_admin_create(tmp_path):
    data = str(tmp_path / "data")
    assert sekisho_in_process("migrate", SEKISHO_DATA_DIR=data).exit_code == 0

    member = sekisho("member", "create", "a@example.jp", "--password", PASSWORD,
                     cwd=tmp_path, SEKISHO_DATA_DIR=data)
    assert member.returncode == 0, member.stderr
    assert re.search(r"member ID \d{10}", member.stdout)
    assert PASSWORD not in member.stdout  # a given password is not echoed back

    admin = sekisho_in_process("admin", "create", "boss@example.jp", SEKISHO_DATA_DIR=data)
    assert admin.exit_code == 0, admin.output
    assert re.search(r"password: \S{8,}", admin.output)  # none given: one is generated

    assert accounts(tmp_path / "data" / "sekisho.db") == {
        "a@example.jp": ("member", True), "boss@example.jp": ("admin", True)}

    for command, email in (("member", "a@example.jp"), ("member", "A@Example.JP"),
                           ("admin", "a@example.jp"), ("admin", "boss@example.jp")):
        again = sekisho_in_process(command, "create", email, "--password", "sakura fuji umi",
                                   SEKISHO_DATA_DIR=data)
        assert again.exit_code != 0, (command, email, again.output)
        assert "already has an account" in again.output
    assert len(accounts(tmp_path / "data" / "sekisho.db")) == 2


def test_member_create_refuses_a_weak_password_with_a_message(tmp_path):
    data = str(tmp_path / "data")
    assert sekisho_in_process("migrate", SEKISHO_DATA_DIR=data).exit_code == 0
    result = sekisho_in_process("member", "create", "c@example.jp", "--password", "short",
                                SEKISHO_DATA_DIR=data)
    assert result.exit_code != 0
    assert accounts(tmp_path / "data" / "sekisho.db") == {}
    # A usage error (exit 2, SystemExit), not an exception escaping the command.
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "password.too_short" in result.output


def test_demo_renews_the_demo_password(tmp_path):
    data = str(tmp_path / "data")
    passwords = []
    for _ in range(2):
        result = sekisho_in_process("demo", SEKISHO_DATA_DIR=data)
        assert result.exit_code == 0, result.output
        found = DEMO_LINE.search(result.output)
        assert found, result.output
        passwords.append(found.group(1))
    assert passwords[0] != passwords[1]
    assert accounts(tmp_path / "data" / "sekisho.db") == {"demo@example.com": ("member", True)}


# --- serve -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_health(base: str, proc: subprocess.Popen[str], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"sekisho serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail("sekisho serve did not answer /healthz within 30 s")


def wait_for_mail(outbox: Path, template: str, deadline: float) -> str:
    """The plain-text part of the first ``template`` mail that lands in the file outbox."""
    while time.monotonic() < deadline:
        for path in sorted(outbox.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if message["X-Sekisho-Template"] == template:
                return str(message.get_body(("plain",)).get_content())
        time.sleep(0.2)
    pytest.fail(f"no {template} mail was delivered to the outbox within 20 s")


def test_serve_starts_from_nothing_with_a_demo_member(tmp_path):
    """README, first command: ``sekisho serve`` in an empty directory, then log in."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        # No SEKISHO_DATA_DIR: the default ``./var`` under the working directory.
        proc = subprocess.Popen(
            [sys.executable, "-m", "sekisho", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path, env=cli_env(), stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            wait_for_health(base, proc, time.monotonic() + 30)
            printed = log.read_text()
            assert f"http://127.0.0.1:{port}" in printed, printed
            found = DEMO_LINE.search(printed)
            assert found, printed

            r = httpx.post(f"{base}/api/v1/login", timeout=10,
                           json={"identifier": "demo@example.com", "password": found.group(1)})
            assert r.status_code == 200, r.text
            token = r.json()["session_token"]
            r = httpx.get(f"{base}/api/v1/session", timeout=10,
                          headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200, r.text
            assert r.json()["account"]["email"] == "demo@example.com"
            r = httpx.get(f"{base}/login", timeout=10)
            assert r.status_code == 200 and '<html lang="ja">' in r.text
            # The running outbox worker delivers the reset mail; its link points here.
            r = httpx.post(f"{base}/api/v1/recovery", timeout=10,
                           json={"identifier": "demo@example.com"})
            assert r.status_code == 202
            mail = wait_for_mail(tmp_path / "var" / "outbox", "password_reset",
                                 time.monotonic() + 20)
            assert f"{base}/recovery/reset?token=" in mail
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    var = tmp_path / "var"
    assert (var / "sekisho.db").is_file()
    assert (var / "secret_key").is_file()
    assert (var / "secret_key").stat().st_mode & 0o077 == 0  # readable by its owner only
    assert (var / "outbox").is_dir()
    assert EXPECTED_TABLES <= sqlite_tables(var / "sekisho.db")


def test_serve_with_workers_leaves_each_worker_every_cpu(tmp_path):
    """One process keeps its Python on one CPU (``python_on_one_cpu``, see the overload
    test); several workers would each pick the CPU they start on, maybe the same one."""
    every = os.sched_getaffinity(0)
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sekisho", "serve", "--port", str(port), "--workers", "2"],
            cwd=tmp_path, env=cli_env(), stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            wait_for_health(f"http://127.0.0.1:{port}", proc, time.monotonic() + 30)
            deadline = time.monotonic() + 30
            while log.read_text().count("Application startup complete") < 2:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as children:
                pids = [int(pid) for pid in children.read().split()]
            workers = [pid for pid in pids  # not multiprocessing's resource tracker
                       if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()]
            assert len(workers) == 2, pids
            assert [os.sched_getaffinity(pid) for pid in workers] == [every, every]
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def test_member_card_reissue_keeps_the_old_number_as_history(tmp_path):
    data = str(tmp_path / "data")
    assert sekisho_in_process("migrate", SEKISHO_DATA_DIR=data).exit_code == 0
    created = sekisho_in_process("member", "create", "c@example.jp", "--password", PASSWORD,
                                 SEKISHO_DATA_DIR=data)
    member_id = re.search(r"member ID (\d{10})", created.output).group(1)
    first = sekisho_in_process("member", "card", member_id, "4980 1111 2222 3333",
                               SEKISHO_DATA_DIR=data)
    assert first.exit_code == 0, first.output
    assert "ending in 3333" in first.output
    second = sekisho_in_process("member", "card", member_id, "４９８０-４４４４-５５５５-６６６６",
                                SEKISHO_DATA_DIR=data)
    assert second.exit_code == 0, second.output
    with sqlite3.connect(tmp_path / "data" / "sekisho.db") as conn:
        cards = conn.execute("SELECT value, active FROM identifiers WHERE kind = 'card' "
                             "ORDER BY id").fetchall()
    assert cards == [("4980111122223333", 0), ("4980444455556666", 1)]
    for args, message in ((("0000000000", "4980777788889999"), "no member"),
                          ((member_id, "4980111122223333"), "already in use"),
                          ((member_id, "hello"), "not a card number")):
        refused = sekisho_in_process("member", "card", *args, SEKISHO_DATA_DIR=data)
        assert refused.exit_code != 0 and message in refused.output, refused.output
