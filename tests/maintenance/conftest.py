"""The schedule the app asks about maintenance windows."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from sekisho.maintenance.service import MaintenanceSchedule


@pytest.fixture
def schedule(app: FastAPI) -> MaintenanceSchedule:
    return app.state.maintenance  # type: ignore[no-any-return]
