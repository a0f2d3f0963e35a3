"""Driving the server-rendered forms as a browser does: open the page, post with its token."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import httpx

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF_INPUT.search(html)
    assert found, "the page has no csrf_token input"
    return found.group(1)


async def submit(client: httpx.AsyncClient, page: str, action: str,
                 fields: dict[str, str], **kwargs: Any) -> httpx.Response:
    """Open ``page``, then post its form to ``action`` with ``fields`` and the page's token."""
    shown = await client.get(page)
    assert shown.status_code == 200, shown.text
    return await client.post(action, data={"csrf_token": csrf_of(shown.text), **fields}, **kwargs)


class _Forms(HTMLParser):
    """The hidden inputs of each form of a page, by the form's action."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, str]] = {}
        self._open: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form":
            self._open = self.forms.setdefault(found.get("action") or "", {})
        elif tag == "input" and self._open is not None and found.get("type") == "hidden":
            self._open[found.get("name") or ""] = found.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


def forms_of(html: str) -> dict[str, dict[str, str]]:
    """Each form's hidden inputs (CSRF and form tokens included), by its action."""
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def form_of(html: str, action: str) -> dict[str, str]:
    """The hidden inputs of the form posting to ``action``, as the browser sends them."""
    forms = forms_of(html)
    assert action in forms, f"no form posting to {action}: {sorted(forms)}"
    return forms[action]
