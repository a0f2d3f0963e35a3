"""What ``/status`` shows: each component's state, composed from open incidents, planned
maintenance and delivery health, with the incidents members should know about.

A component's state is the worst of what applies to it::

    outage       an open incident with impact "outage" names it
    maintenance  a maintenance window covers it now (see MaintenanceSchedule)
    degraded     an open incident with impact "degraded" names it, or (email, sms) the
                 outbox keeps failing to deliver on that channel
    operational  none of these
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from sekisho.clock import Clock
from sekisho.notify.models import Channel
from sekisho.status.components import Component
from sekisho.status.delivery import ChannelHealth, DeliveryMonitor
from sekisho.status.models import Impact, Incident
from sekisho.status.service import IncidentService
from sekisho.web.i18n import N_

if TYPE_CHECKING:
    from sekisho.core import Core
    from sekisho.notify.worker import OutboxWorker

log = logging.getLogger(__name__)

class ComponentState(StrEnum):
    OPERATIONAL = "operational"
    DEGRADED = "degraded"
    MAINTENANCE = "maintenance"
    OUTAGE = "outage"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {ComponentState.OPERATIONAL: 0, ComponentState.DEGRADED: 1,
         ComponentState.MAINTENANCE: 2, ComponentState.OUTAGE: 3}
_IMPACT = {Impact.DEGRADED: ComponentState.DEGRADED, Impact.OUTAGE: ComponentState.OUTAGE}

STATE_LABELS: dict[ComponentState, str] = {
    ComponentState.OPERATIONAL: N_("Operational"),
    ComponentState.DEGRADED: N_("Degraded"),
    ComponentState.MAINTENANCE: N_("Under maintenance"),
    ComponentState.OUTAGE: N_("Outage"),
}

DELIVERY_COMPONENTS: dict[Channel, Component] = {
    Channel.EMAIL: Component.EMAIL,
    Channel.SMS: Component.SMS,
}
_CHANNEL_OF = {component: channel for channel, component in DELIVERY_COMPONENTS.items()}
DELAY_MESSAGES: dict[Channel, str] = {
    Channel.EMAIL: N_("Email is delayed"),
    Channel.SMS: N_("SMS codes are delayed"),
}
"""What ``/status`` says about a delayed channel."""
DELAY_NOTICES: dict[Channel, str] = {
    Channel.EMAIL: N_("Email is delayed right now, so your code may take a few minutes to "
                      "arrive. Please wait for it: a new code would replace the one on its "
                      "way."),
    Channel.SMS: N_("SMS codes are delayed right now, so yours may take a few minutes to "
                    "arrive. Please wait for it: a new code would replace the one on its "
                    "way."),
}
"""What the pages that wait for a code say (``delivery_delays``)."""


class WindowNote(Protocol):
    """What the status page shows of the maintenance window covering a component."""

    @property
    def ends_at(self) -> datetime | None: ...
    @property
    def note_ja(self) -> str | None: ...
    @property
    def note_en(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class MaintenanceNote:
    """A plain :class:`WindowNote`."""

    ends_at: datetime | None = None
    note_ja: str | None = None
    note_en: str | None = None


class MaintenanceSchedule(Protocol):
    """The hook for planned maintenance: ``sekisho.maintenance.service.MaintenanceSchedule``
    fits it; :func:`build_board` takes one, and the routes pass ``app.state.maintenance``.

    Without one, no component is ever shown under maintenance. A window covering the whole
    service lists every component.
    """

    async def components_in_maintenance(self, now: datetime) -> Mapping[Component,
                                                                         WindowNote]: ...


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    component: Component
    state: ComponentState
    message: str | None = None
    """A message id (``N_``) for automatic states, translated where it is shown."""
    since: datetime | None = None
    incident_ids: tuple[int, ...] = ()
    maintenance: WindowNote | None = None


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    at: datetime
    components: list[ComponentStatus]
    incidents: list[Incident]
    delivery: dict[Channel, ChannelHealth] = field(default_factory=dict)

    @property
    def overall(self) -> ComponentState:
        return max((c.state for c in self.components), key=lambda s: s.rank,
                   default=ComponentState.OPERATIONAL)

    def component(self, component: Component) -> ComponentStatus:
        return next(c for c in self.components if c.component == component)


@dataclass(frozen=True, slots=True)
class StatusNotice:
    """What an error page says about a component that is not operational."""

    component: Component
    state: ComponentState
    incident: Incident | None
    message: str | None
    """A message id, when no incident explains the state (a delayed channel)."""
    anchor: str
    """Where on ``/status`` it is explained: ``incident-12`` or ``component-email``."""


class StatusBoard:
    """Composes :class:`StatusSnapshot` for the page, the JSON, the feed and error pages."""

    def __init__(self, incidents: IncidentService, delivery: DeliveryMonitor, clock: Clock,
                 maintenance: MaintenanceSchedule | None = None) -> None:
        self.incidents = incidents
        self.delivery = delivery
        self.maintenance = maintenance
        self._clock = clock

    async def snapshot(self) -> StatusSnapshot:
        now = self._clock.now()
        incidents = await self.incidents.visible()
        delivery = await self.delivery.current()
        planned = await self._planned(now)
        components = [_compose(c, incidents, delivery, planned) for c in Component]
        return StatusSnapshot(now, components, incidents, delivery)

    async def _planned(self, now: datetime) -> Mapping[Component, WindowNote]:
        if self.maintenance is None:
            return {}
        try:
            return await self.maintenance.components_in_maintenance(now)
        except Exception:  # the schedule failing must not take the status page down with it
            log.warning("maintenance schedule unavailable", exc_info=True)
            return {}

    async def notice_for(self, components: Sequence[Component]) -> StatusNotice | None:
        """The worst state among ``components``, with the incident behind it, or ``None``
        when they are all operational. Error pages call it; it never raises (the database
        being down may be why the page is an error page), answering ``None`` instead."""
        if not components:
            return None
        try:
            snapshot = await self.snapshot()
        except Exception:  # a notice is a courtesy; the error page itself must render
            log.warning("status notice unavailable", exc_info=True)
            return None
        worst = max((snapshot.component(c) for c in components), key=lambda s: s.state.rank)
        if worst.state is ComponentState.OPERATIONAL:
            return None
        incident = next((i for i in snapshot.incidents if i.id in worst.incident_ids), None)
        anchor = f"incident-{incident.id}" if incident else f"component-{worst.component}"
        return StatusNotice(worst.component, worst.state, incident, worst.message, anchor)

    def delivery_delays(self, *channels: str) -> list[tuple[str, str]]:
        """``(channel, message id)`` for each of ``channels`` (``"email"``, ``"sms"``) that
        is delayed now, for the pages that wait for a code.

        Synchronous, for templates (a Jinja global): see :meth:`DeliveryMonitor.delayed`.
        """
        return [(c, DELAY_NOTICES[Channel(c)]) for c in channels
                if self.delivery.delayed(Channel(c))]


def build_board(core: Core, worker: OutboxWorker,
                maintenance: MaintenanceSchedule | None = None) -> StatusBoard:
    """The board for one app: incidents in its database, delivery health from its worker."""
    monitor = DeliveryMonitor(worker.health, worker.shared_health, core.clock)
    return StatusBoard(IncidentService(core.db, core.clock, core.settings), monitor, core.clock,
                       maintenance)


def _compose(component: Component, incidents: Sequence[Incident],
             delivery: Mapping[Channel, ChannelHealth],
             planned: Mapping[Component, WindowNote]) -> ComponentStatus:
    state, message, since = ComponentState.OPERATIONAL, None, None
    open_here = [i for i in incidents if i.is_open and component.value in i.components]
    for incident in open_here:
        candidate = _IMPACT[Impact(incident.impact)]
        if candidate.rank > state.rank:
            state, since = candidate, incident.opened_at
    if component in planned and ComponentState.MAINTENANCE.rank > state.rank:
        state, since = ComponentState.MAINTENANCE, None
    channel = _CHANNEL_OF.get(component)
    health = delivery.get(channel) if channel is not None else None
    if channel is not None and health is not None and health.delayed:
        # Shown even under a worse state: members waiting for a code want to know why.
        message = DELAY_MESSAGES[channel]
        if ComponentState.DEGRADED.rank > state.rank:
            state, since = ComponentState.DEGRADED, health.degraded_since
    return ComponentStatus(component, state, message, since,
                           tuple(i.id for i in open_here), planned.get(component))


# Which components a page or endpoint depends on, for error pages. Pages and their JSON
# twins (``/api/v1`` + the same path, mostly) share an entry; the first matching prefix wins.
_PATH_COMPONENTS: list[tuple[str, tuple[Component, ...]]] = [
    ("/login/mfa/sms", (Component.SMS, Component.SECOND_FACTORS, Component.LOGIN)),
    ("/login/mfa", (Component.SECOND_FACTORS, Component.LOGIN)),
    ("/login/enrol", (Component.SECOND_FACTORS, Component.LOGIN)),
    ("/login/passkey", (Component.SECOND_FACTORS, Component.LOGIN)),
    ("/login", (Component.LOGIN,)),
    ("/unlock", (Component.LOGIN, Component.EMAIL)),
    ("/register", (Component.REGISTRATION, Component.EMAIL)),
    ("/registrations", (Component.REGISTRATION, Component.EMAIL)),
    ("/verify", (Component.REGISTRATION, Component.EMAIL)),
    ("/verifications", (Component.REGISTRATION, Component.EMAIL)),
    ("/recovery", (Component.LOGIN, Component.EMAIL, Component.SMS)),
    ("/account/second-factors", (Component.SECOND_FACTORS,)),
    ("/account/passkeys", (Component.SECOND_FACTORS,)),
    ("/account/phone", (Component.SMS,)),
    ("/account/email", (Component.EMAIL,)),
]


def components_for_path(path: str) -> tuple[Component, ...]:
    """The components a request to ``path`` depends on (empty: none in particular)."""
    path = path.removeprefix("/api/v1")
    for prefix, components in _PATH_COMPONENTS:
        if path == prefix or path.startswith(prefix + "/"):
            return components
    return ()
