"""Prometheus metrics, read at scrape time from what the service already counts.

One registry per app (tests build many apps in one process), one collector that asks the
live objects: no counter is incremented on a hot path but the event log's outcome tally (the
outbox worker's failed attempts are counted off the request path).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from sekisho.notify.models import MEMBER_CHANNELS, Channel

if TYPE_CHECKING:
    from sekisho.core import Core
    from sekisho.notify.worker import OutboxWorker
    from sekisho.status.delivery import ChannelHealth, DeliveryMonitor
    from sekisho.waiting_room.service import RoomView, WaitingRoom


class ServiceCollector(Collector):
    def __init__(self, core: Core, room: WaitingRoom, worker: OutboxWorker,
                 delivery: DeliveryMonitor) -> None:
        self.core = core
        self.room = room
        self.worker = worker
        self.delivery_monitor = delivery
        self.room_view: RoomView | None = None
        self.delivery: dict[Channel, ChannelHealth] = {}
        """Delivery health per member channel, as ``/status`` shows it (see :meth:`refresh`)."""
        self.outbox: dict[tuple[str, str], int] = {}
        """(channel, state) → messages, refreshed by :meth:`refresh` before each scrape."""
        self.outbox_oldest_pending_seconds = 0.0

    async def refresh(self) -> None:
        """Read the outbox's numbers (the only ones that need the database)."""
        from sekisho.observability.readiness import outbox_figures

        self.outbox, self.outbox_oldest_pending_seconds = await outbox_figures(self.core)
        self.room_view = await self.room.status()
        self.delivery = await self.delivery_monitor.current()

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        core = self.core
        events = CounterMetricFamily(
            "sekisho_events", "Recorded events by kind and outcome (ok or the error code shown)",
            labels=["kind", "outcome"])
        for (kind, outcome), count in sorted(core.events.tally.items()):
            events.add_metric([kind, outcome], count)
        yield events
        hasher = core.hasher
        yield GaugeMetricFamily("sekisho_hash_queue_depth",
                                "Requests waiting for admission or a hashing slot",
                                value=hasher.waiting)
        yield CounterMetricFamily("sekisho_hash_wait_seconds",
                                  "Time spent waiting for admission or a hashing slot",
                                  value=hasher.waited_seconds)
        yield CounterMetricFamily("sekisho_hash_waits", "Waits for admission or a hashing slot",
                                  value=hasher.waits)
        yield CounterMetricFamily("sekisho_hash_busy_refusals",
                                  "Requests refused with service.busy after the queue timeout",
                                  value=hasher.refused)
        outbox = GaugeMetricFamily("sekisho_outbox_messages",
                                   "Outbox messages by channel and state (pending = backlog, "
                                   "failed = gave up after every retry)",
                                   labels=["channel", "state"])
        for (channel, state), count in sorted(self.outbox.items()):
            outbox.add_metric([channel, state], count)
        yield outbox
        yield GaugeMetricFamily("sekisho_outbox_oldest_pending_seconds",
                                "Age of the oldest message not yet delivered",
                                value=self.outbox_oldest_pending_seconds)
        failures = CounterMetricFamily("sekisho_delivery_failures",
                                       "Delivery attempts by this process's outbox worker that "
                                       "failed (each retry counts), by channel",
                                       labels=["channel"])
        for channel in Channel:
            failures.add_metric([channel.value], self.worker.failed_attempts[channel])
        yield failures
        delayed = GaugeMetricFamily("sekisho_delivery_delayed",
                                    "1 while the channel shows as delayed (degraded) on /status",
                                    labels=["channel"])
        for channel in MEMBER_CHANNELS:
            health = self.delivery.get(channel)
            delayed.add_metric([channel.value], int(health is not None and health.delayed))
        yield delayed
        if self.room_view is not None:
            room = self.room_view
            yield GaugeMetricFamily("sekisho_waiting_room_waiting", "Visitors in line",
                                    value=room.waiting)
            yield GaugeMetricFamily("sekisho_waiting_room_active", "Passes held (slots in use)",
                                    value=room.active)
            yield CounterMetricFamily("sekisho_waiting_room_admitted",
                                      "Visitors admitted (the admission rate is its rate())",
                                      value=room.admitted_total)


def registry_for(collector: ServiceCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
