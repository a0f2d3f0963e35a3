"""Helpers for the maintenance tests: Tokyo times, window specs, logging in."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from support.factories import DEFAULT_PASSWORD

from sekisho.maintenance.models import Recurrence
from sekisho.maintenance.spec import WindowSpec

TOKYO = ZoneInfo("Asia/Tokyo")

def tokyo(*args: int) -> datetime:
    """A wall-clock time in Tokyo as the aware instant the FrozenClock takes."""
    return datetime(*args, tzinfo=TOKYO)  # type: ignore[misc]


def weekly(weekday: int, hour: int, minute: int, duration: timedelta,
           *components: Any, **notes: str) -> WindowSpec:
    return WindowSpec(Recurrence.WEEKLY, weekday=weekday, start_time=time(hour, minute),
                      duration=duration, components=tuple(components), **notes)


def yearly(month: int, day: int, hour: int, minute: int, duration: timedelta,
           *components: Any) -> WindowSpec:
    return WindowSpec(Recurrence.YEARLY, month=month, day=day, start_time=time(hour, minute),
                      duration=duration, components=tuple(components))


def once(starts_at: datetime, ends_at: datetime, *components: Any) -> WindowSpec:
    return WindowSpec(Recurrence.ONCE, starts_at=starts_at, ends_at=ends_at,
                      components=tuple(components))


async def log_in(client: httpx.AsyncClient, email: str) -> str:
    """Log in through the API; the client keeps the cookie, the token is returned too."""
    response = await client.post("/api/v1/login",
                                 json={"identifier": email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["session_token"])
