"""Driving the server-rendered forms as a browser does: open the page, post with its token."""

from __future__ import annotations

import re
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
