"""Locale choice and the Babel catalogues for page text.

Catalogues live as ``.po`` files in ``sekisho/locale`` and are compiled in memory at
start-up, so there is no build step to forget.
"""

from __future__ import annotations

import io
from functools import cache
from importlib.resources import files

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from starlette.requests import Request

LOCALES = ("ja", "en")


def N_(text: str) -> str:  # noqa: N802 - the gettext convention for "mark, translate later"
    """Marks a message id for extraction where it is translated later, at render time."""
    return text


@cache
def translations(locale: str) -> NullTranslations:
    """gettext translations for ``locale`` (message ids are the English text)."""
    po = files("sekisho") / "locale" / locale / "LC_MESSAGES" / "messages.po"
    if not po.is_file():
        return NullTranslations()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def negotiate(request: Request, default: str) -> str:
    """``?lang=`` first, then the ``lang`` cookie, then ``Accept-Language``, then the default."""
    for candidate in (request.query_params.get("lang"), request.cookies.get("lang")):
        if candidate in LOCALES:
            return candidate
    header = request.headers.get("accept-language", "")
    preferred = []
    for part in header.split(","):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        if tag:
            preferred.append((weight, tag.replace("-", "_")))
    ordered = [tag for _, tag in sorted(preferred, key=lambda p: -p[0])]
    chosen = Locale.negotiate(ordered, list(LOCALES), sep="_") if ordered else None
    return str(chosen.language) if chosen else default
