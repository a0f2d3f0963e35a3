"""``sekisho maintenance add|list|remove`` against the test database (Typer's runner).

Until cli.py mounts the sub-app (hand-over snippet), the commands are invoked on
``maintenance_app`` directly; afterwards ``["maintenance", ...]`` on ``sekisho.cli.app``
runs the same functions.
"""

from __future__ import annotations

import asyncio
import os
import re

from typer.testing import CliRunner

from sekisho.maintenance.cli import maintenance_app


def run(settings, *args):
    env = {k: None for k in os.environ if k.startswith("SEKISHO_")}
    env.update(SEKISHO_DATABASE_URL=settings.database_url, SEKISHO_DATA_DIR=str(settings.data_dir),
               SEKISHO_SECRET_KEY="test-secret", SEKISHO_ARGON2_MEMORY_KIB="1024",
               SEKISHO_ARGON2_TIME_COST="1")
    return CliRunner().invoke(maintenance_app, list(args), env=env)


def test_add_list_remove(settings):
    weekly = run(settings, "add", "--weekly", "MON", "00:00", "--duration", "7h",
                 "--note-ja", "定期メンテナンス")
    assert weekly.exit_code == 0, weekly.output
    assert "weekly mon 00:00 for 7h (Asia/Tokyo): all" in weekly.output
    yearly = run(settings, "add", "--yearly", "12-31", "18:00", "--duration", "4d",
                 "--component", "login", "--component", "sms")
    assert yearly.exit_code == 0, yearly.output
    assert "yearly 12-31 18:00 for 4d (Asia/Tokyo): login,sms" in yearly.output
    one_off = run(settings, "add", "--once", "2030-05-01T01:00", "2030-05-01 03:30",
                  "--component", "registration")
    assert one_off.exit_code == 0, one_off.output
    assert "once 2030-05-01 01:00 to 2030-05-01 03:30 (Asia/Tokyo): registration" \
        in one_off.output

    listed = run(settings, "list")
    assert listed.exit_code == 0, listed.output
    ids = [int(n) for n in re.findall(r"^(\d+)\t", listed.output, re.MULTILINE)]
    assert len(ids) == 3
    assert "next 2030-05-01 01:00 to 2030-05-01 03:30" in listed.output

    removed = run(settings, "remove", str(ids[0]))
    assert removed.exit_code == 0 and f"removed window {ids[0]}" in removed.output
    again = run(settings, "remove", str(ids[0]))
    assert again.exit_code != 0 and "no maintenance window" in again.output
    assert len(re.findall(r"^\d+\t", run(settings, "list").output, re.MULTILINE)) == 2


def test_bad_input_names_the_problem(settings):
    for args, words in (
        (["--weekly", "XYZ", "00:00", "--duration", "7h"], "weekday"),
        (["--weekly", "MON", "00:00"], "duration"),
        (["--weekly", "MON", "00:00", "--duration", "8d"], "out_of_range"),
        (["--once", "2030-05-01T03:00", "2030-05-01T01:00"], "ends_before_start"),
        (["--yearly", "12-31", "18:00", "--duration", "4d", "--component", "web"],
         "unknown_component"),
        ([], "recurrence"),
    ):
        result = run(settings, "add", *args)
        assert result.exit_code == 2, (args, result.output)
        assert "request.invalid" in result.output and words in result.output, result.output
    assert "no maintenance windows" in run(settings, "list").output


def test_listed_windows_are_the_ones_the_app_enforces(settings):
    """What the CLI writes, the schedule reads (the app's reload picks it up)."""
    from sekisho.clock import SystemClock
    from sekisho.db import Database
    from sekisho.maintenance.service import MaintenanceSchedule

    assert run(settings, "add", "--weekly", "sun", "23:00", "--duration", "8h").exit_code == 0

    async def read() -> list[str]:
        database = Database(settings.database_url)
        try:
            schedule = MaintenanceSchedule(database, SystemClock(), settings)
            return [r.recurrence.value for r in await schedule.windows()]
        finally:
            await database.dispose()

    assert asyncio.run(read()) == ["weekly"]
