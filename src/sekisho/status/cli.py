"""``sekisho status incident open|update|resolve|list``: the status page from a shell.

The commands call the same :class:`IncidentService` as the admin API; updates posted here
carry no staff account (``posted_by`` is null). Texts are given in both page languages.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from sekisho.cli_support import run_with_core
from sekisho.settings import Settings
from sekisho.status.components import Component
from sekisho.status.models import Impact, Incident, IncidentState
from sekisho.status.service import Bilingual, IncidentService
from sekisho.status.views import incident_view, rfc3339

T = TypeVar("T")

status_app = typer.Typer(help="The public status page (/status).", no_args_is_help=True)
incident_app = typer.Typer(help="Open, update, resolve and list incidents.",
                           no_args_is_help=True)
status_app.add_typer(incident_app, name="incident")

JaOption = Annotated[str, typer.Option("--ja", help="The text in Japanese.")]
EnOption = Annotated[str, typer.Option("--en", help="The text in English.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the incident as JSON.")]


def _run(work: Callable[[IncidentService], Awaitable[T]]) -> T:
    """Run ``work`` against the configured database; catalogue errors become usage errors."""
    return run_with_core(lambda core: work(IncidentService(core.db, core.clock, core.settings)))


def _show(incident: Incident, as_json: bool) -> None:
    if as_json:
        settings = Settings()
        typer.echo(json.dumps(incident_view(incident, settings.base_url, staff=True),
                              ensure_ascii=False, indent=2))
        return
    typer.echo(_line(incident))


def _line(incident: Incident) -> str:
    components = ",".join(incident.components)
    return (f"#{incident.id} {incident.state} ({incident.impact}: {components}) "
            f"opened {rfc3339(incident.opened_at)}  {incident.title_ja} / {incident.title_en}")


@incident_app.command("open")
def incident_open(
    title_ja: Annotated[str, typer.Option("--title-ja", help="Title in Japanese.")],
    title_en: Annotated[str, typer.Option("--title-en", help="Title in English.")],
    ja: JaOption,
    en: EnOption,
    component: Annotated[list[Component], typer.Option(
        "--component", "-c", help="An affected component (repeat for several).")],
    impact: Annotated[Impact, typer.Option(help="How the components show.")] = Impact.DEGRADED,
    state: Annotated[IncidentState, typer.Option(
        help="Where it starts.")] = IncidentState.INVESTIGATING,
    as_json: JsonOption = False,
) -> None:
    """Open an incident with its first update; it shows on /status at once."""
    incident = _run(lambda service: service.open(
        title=Bilingual(title_ja, title_en), body=Bilingual(ja, en), components=component,
        impact=impact, state=state))
    _show(incident, as_json)


@incident_app.command("update")
def incident_update(
    incident_id: Annotated[int, typer.Argument(help="The incident's number.")],
    state: Annotated[IncidentState, typer.Option(help="The state it moves to.")],
    ja: JaOption,
    en: EnOption,
    impact: Annotated[Impact | None, typer.Option(help="Change the impact.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Post an update (the state may stay the same: a progress note)."""
    incident = _run(lambda service: service.update(
        incident_id, state=state, body=Bilingual(ja, en), impact=impact))
    _show(incident, as_json)


@incident_app.command("resolve")
def incident_resolve(
    incident_id: Annotated[int, typer.Argument(help="The incident's number.")],
    ja: Annotated[str | None, typer.Option("--ja", help="Closing note in Japanese.")] = None,
    en: Annotated[str | None, typer.Option("--en", help="Closing note in English.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Resolve an incident (final). Without --ja/--en a standard note is posted."""
    if (ja is None) != (en is None):
        raise typer.BadParameter("give both --ja and --en, or neither")
    body = Bilingual(ja, en) if ja is not None and en is not None else None
    incident = _run(lambda service: service.resolve(incident_id, body=body))
    _show(incident, as_json)


@incident_app.command("list")
def incident_list(
    every: Annotated[bool, typer.Option(
        "--all", help="Also incidents resolved before the status page's window.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Incidents, open first, newest first: those /status shows, or --all."""

    async def work(service: IncidentService) -> list[Incident]:
        return await (service.newest(limit=limit) if every else service.visible())

    incidents = _run(work)
    if as_json:
        base_url = Settings().base_url
        typer.echo(json.dumps([incident_view(i, base_url, staff=True) for i in incidents],
                              ensure_ascii=False, indent=2))
        return
    for incident in incidents:
        typer.echo(_line(incident))
    if not incidents:
        typer.echo("no incidents")
