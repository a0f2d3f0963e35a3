"""Fixtures of the waiting-room tests: the app with its room (see room_support.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from waiting_room.room_support import CROWD_ROOM, room_app

from sekisho.clock import FrozenClock
from sekisho.settings import Settings


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """The room keeps nothing in the database (events only): SQLite is enough."""
    return str(request.param)


@pytest.fixture
def room_settings() -> dict[str, Any]:
    """Override in a module for another room."""
    return CROWD_ROOM


@pytest.fixture
def settings_overrides(room_settings: dict[str, Any]) -> dict[str, Any]:
    return dict(room_settings)


@pytest.fixture
async def app(settings: Settings, clock: FrozenClock,
              settings_overrides: dict[str, Any]) -> AsyncIterator[FastAPI]:
    application = room_app(settings, clock, settings_overrides)
    async with LifespanManager(application):
        yield application
