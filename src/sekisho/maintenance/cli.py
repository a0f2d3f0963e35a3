"""``sekisho maintenance add|list|remove``: thin commands over :class:`MaintenanceSchedule`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from sekisho.cli_support import run_with_core

if TYPE_CHECKING:
    from sekisho.maintenance.service import MaintenanceSchedule

T = TypeVar("T")

maintenance_app = typer.Typer(help="Plan maintenance windows (times in maintenance_timezone).",
                              no_args_is_help=True)


def _run(work: Callable[[MaintenanceSchedule], Awaitable[T]]) -> T:
    """Run ``work(schedule)`` against the configured database, errors as CLI errors."""
    from sekisho.maintenance.service import MaintenanceSchedule

    return run_with_core(lambda core: work(MaintenanceSchedule.from_core(core)))


@maintenance_app.command("add")
def add(once: Annotated[tuple[str, str] | None, typer.Option(
            metavar="START END", help="One-off, e.g. --once 2026-12-31T22:00 2027-01-03T22:00 "
                                      "(no offset: maintenance time zone).")] = None,
        weekly: Annotated[tuple[str, str] | None, typer.Option(
            metavar="DAY HH:MM", help="Every week, e.g. --weekly MON 00:00 --duration 7h.")
        ] = None,
        yearly: Annotated[tuple[str, str] | None, typer.Option(
            metavar="MM-DD HH:MM", help="Every year, e.g. --yearly 12-31 18:00 --duration 4d.")
        ] = None,
        duration: Annotated[str | None, typer.Option(
            help="Length of a recurring window: 90m, 7h, 4d, 1d12h (wall-clock time).")] = None,
        component: Annotated[list[str] | None, typer.Option(
            help="login, registration, email, sms or second_factors; repeat for several. "
                 "Omit for the whole service.")] = None,
        note_ja: Annotated[str | None, typer.Option(help="Shown to members reading Japanese.")
                           ] = None,
        note_en: Annotated[str | None, typer.Option(help="Shown to members reading English.")
                           ] = None) -> None:
    """Add a maintenance window."""
    from sekisho.maintenance.service import summary
    from sekisho.maintenance.spec import from_cli

    async def work(schedule: MaintenanceSchedule) -> tuple[int, str]:
        spec = from_cli(once=once, weekly=weekly, yearly=yearly, duration=duration,
                        components=component or (), note_ja=note_ja, note_en=note_en)
        rule = await schedule.add(spec)
        return rule.id, summary(rule, schedule.zone)

    window_id, text = _run(work)
    typer.echo(f"added window {window_id}: {text}")


@maintenance_app.command("list")
def list_windows() -> None:
    """List every window with its current or next occurrence."""
    from sekisho.maintenance.service import summary

    async def work(schedule: MaintenanceSchedule) -> list[str]:
        now = schedule.clock.now()

        def local(moment: datetime) -> str:
            return f"{moment.astimezone(schedule.zone):%Y-%m-%d %H:%M}"

        lines = []
        for rule in await schedule.windows():
            upcoming = rule.next_occurrence(schedule.zone, now)
            if upcoming is None:
                when = "over"
            elif upcoming.starts_at <= now:
                when = f"now, until {local(upcoming.ends_at)}"
            else:
                when = f"next {local(upcoming.starts_at)} to {local(upcoming.ends_at)}"
            lines.append(f"{rule.id}\t{summary(rule, schedule.zone)}\t{when}")
        return lines

    lines = _run(work)
    typer.echo("\n".join(lines) if lines else "no maintenance windows")


@maintenance_app.command("remove")
def remove(window_id: Annotated[int, typer.Argument(help="The id shown by `list`.")]) -> None:
    """Remove a window."""
    async def work(schedule: MaintenanceSchedule) -> bool:
        return await schedule.remove(window_id)

    if not _run(work):
        raise typer.BadParameter(f"no maintenance window {window_id}")
    typer.echo(f"removed window {window_id}")
