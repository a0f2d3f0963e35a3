"""Every text a page or message can show has its Japanese translation."""

from __future__ import annotations

from pathlib import Path

from babel.messages.pofile import read_po

LOCALE = Path(__file__).resolve().parents[2] / "src" / "sekisho" / "locale"


def test_every_message_is_translated_into_japanese():
    template = read_po((LOCALE / "messages.pot").open("rb"))
    japanese = read_po((LOCALE / "ja" / "LC_MESSAGES" / "messages.po").open("rb"), locale="ja")
    untranslated = [m.id for m in template if m.id and (
        m.id not in japanese or not all(japanese[m.id].string if isinstance(
            japanese[m.id].string, tuple) else [japanese[m.id].string]))]
    assert untranslated == [], "run pybabel extract, then translate these"
