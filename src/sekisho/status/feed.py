"""``/status.atom``: the incidents (and automatic delivery delays) as an Atom 1.0 feed.

RFC 4287: the feed has ``id``, ``title``, ``updated``, ``author`` and a ``self`` link
(§4.1.1); each entry ``id``, ``title``, ``updated``, ``content`` and an ``alternate`` link to
its place on ``/status`` (§4.1.2). Times are RFC 3339 (§3.3). One feed per language
(``?lang=``), each with its own feed id.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from xml.etree import ElementTree as ET

from sekisho.status.board import DELAY_MESSAGES, DELAY_NOTICES, StatusSnapshot
from sekisho.status.components import LABELS, Component
from sekisho.status.models import Incident
from sekisho.status.views import rfc3339
from sekisho.web.i18n import N_, translations

ATOM = "http://www.w3.org/2005/Atom"
XML_LANG = "xml:lang"  # the xml: prefix is bound by XML itself, never declared

INCIDENT_STATE_LABELS = {
    "investigating": N_("Investigating"),
    "identified": N_("Identified"),
    "monitoring": N_("Monitoring"),
    "resolved": N_("Resolved"),
}


def _text(parent: ET.Element, tag: str, text: str, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    element.text = text
    return element


def status_feed(snapshot: StatusSnapshot, *, base_url: str, locale: str, service_name: str,
                local_time: Callable[[datetime], str]) -> bytes:
    """The feed document, UTF-8, with its XML declaration."""
    gettext = translations(locale).gettext
    base = base_url.rstrip("/")
    page = f"{base}/status?lang={locale}"
    feed = ET.Element("feed", {"xmlns": ATOM, XML_LANG: locale})
    _text(feed, "id", f"{base}/status.atom?lang={locale}")
    _text(feed, "title", f"{gettext('Service status')} | {service_name}")
    entries = [*_delay_entries(snapshot, page, gettext),
               *(_incident_entry(i, page, locale, local_time) for i in snapshot.incidents)]
    newest = max((updated for updated, _ in entries), default=snapshot.at)
    _text(feed, "updated", rfc3339(newest))
    author = ET.SubElement(feed, "author")
    _text(author, "name", service_name)
    ET.SubElement(feed, "link", {"rel": "self", "type": "application/atom+xml",
                                 "href": f"{base}/status.atom?lang={locale}"})
    ET.SubElement(feed, "link", {"rel": "alternate", "type": "text/html", "href": page})
    for _, entry in entries:
        feed.append(entry)
    return bytes(ET.tostring(feed, encoding="utf-8", xml_declaration=True))


def _incident_entry(incident: Incident, page: str, locale: str,
                    local_time: Callable[[datetime], str]) -> tuple[datetime, ET.Element]:
    gettext = translations(locale).gettext
    english = locale == "en"
    title = incident.title_en if english else incident.title_ja
    entry = ET.Element("entry")
    _text(entry, "id", f"{page.split('?')[0]}#incident-{incident.id}")
    _text(entry, "title", f"[{gettext(INCIDENT_STATE_LABELS[incident.state])}] {title}")
    _text(entry, "published", rfc3339(incident.opened_at))
    _text(entry, "updated", rfc3339(incident.updated_at))
    ET.SubElement(entry, "link", {"rel": "alternate", "type": "text/html",
                                  "href": f"{page}#incident-{incident.id}"})
    for component in incident.components:
        ET.SubElement(entry, "category",
                      {"term": component, "label": gettext(LABELS[Component(component)])})
    lines = [
        f"{local_time(u.posted_at)} {gettext(INCIDENT_STATE_LABELS[u.state])}: "
        f"{u.body_en if english else u.body_ja}"
        for u in incident.updates
    ]
    _text(entry, "content", "\n\n".join(lines), type="text")
    return incident.updated_at, entry


def _delay_entries(snapshot: StatusSnapshot, page: str,
                   gettext: Callable[[str], str]) -> list[tuple[datetime, ET.Element]]:
    """A delayed channel is news too: one entry per delay, identified by when it began."""
    entries = []
    for channel, health in snapshot.delivery.items():
        if health.degraded_since is None:
            continue
        entry = ET.Element("entry")
        since = health.degraded_since
        _text(entry, "id", f"{page.split('?')[0]}#delivery-{channel}-{int(since.timestamp())}")
        _text(entry, "title", gettext(DELAY_MESSAGES[channel]))
        _text(entry, "updated", rfc3339(since))
        ET.SubElement(entry, "link", {"rel": "alternate", "type": "text/html",
                                      "href": f"{page}#component-{channel}"})
        _text(entry, "content", gettext(DELAY_NOTICES[channel]), type="text")
        entries.append((since, entry))
    return entries
