"""Render outbox messages from the Jinja2 templates in ``notify/templates``.

Layout: ``<name>.<locale>.subject.txt``, ``<name>.<locale>.txt`` and ``<name>.<locale>.html``.
The text part is required; a template without a subject or HTML part (``sms_code``) renders
those as ``None``. Only ``.html`` files are autoescaped: the text parts and the subject are
plain text, and escaping them would put ``&amp;`` into a link or a name.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, TemplateNotFound, select_autoescape

from sekisho.settings import Settings

SUPPORTED_LOCALES = ("ja", "en")
FALLBACK_LOCALE = "ja"


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    subject: str | None
    text: str
    html: str | None


def resolve_locale(locale: str | None) -> str:
    """The supported locale for a tag such as ``en``, ``en-US`` or ``ja_JP``; else ``ja``."""
    primary = (locale or "").replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in SUPPORTED_LOCALES else FALLBACK_LOCALE


@functools.cache
def _environment() -> Environment:
    """One environment per process: its cache of compiled templates is shared by every app."""
    return Environment(
        # PackageLoader finds the directory through the installed package, so the templates
        # work from a wheel as well as from a source checkout (they ship as package data).
        loader=PackageLoader("sekisho.notify", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        # A missing context variable must fail loudly at enqueue time, inside the caller's
        # transaction, rather than mail a member a blank code.
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates ship with the package; no file check per render
    )


class MessageRenderer:
    """Renders a named template in a locale with the shared context every template gets.

    Every template receives ``service_name``, ``base_url``, ``base_host``, ``locale``,
    ``display_name`` (``None`` unless given) and ``reference`` (``None`` unless given), then
    the caller's context on top.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._env = _environment()

    def preload(self) -> None:
        """Compile every template now (about 0.1 s, once per process), so the first mail of
        a kind does not stall the event loop that enqueues it."""
        for name in self._env.list_templates():
            self._env.get_template(name)

    def render(self, template: str, locale: str, context: dict[str, Any]) -> RenderedMessage:
        """Render ``template`` in ``locale`` (unknown locales fall back to ``ja``).

        Raises ``jinja2.TemplateNotFound`` for an unknown template and
        ``jinja2.UndefinedError`` when the context lacks a variable the template uses.
        """
        lang = resolve_locale(locale)
        values = {
            "service_name": self._settings.service_name,
            "base_url": self._settings.base_url.rstrip("/"),
            "base_host": urlsplit(self._settings.base_url).hostname or "",
            "locale": lang,
            "display_name": None,
            "reference": None,
            **context,
        }
        text = self._env.get_template(f"{template}.{lang}.txt").render(values).strip() + "\n"
        subject = self._optional(f"{template}.{lang}.subject.txt", values)
        html = self._optional(f"{template}.{lang}.html", values)
        return RenderedMessage(
            # One line, always: a newline in a subject is a header-injection vector.
            subject=" ".join(subject.split()) if subject is not None else None,
            text=text,
            html=html,
        )

    def _optional(self, name: str, values: dict[str, Any]) -> str | None:
        try:
            template = self._env.get_template(name)
        except TemplateNotFound:
            return None
        return template.render(values)
