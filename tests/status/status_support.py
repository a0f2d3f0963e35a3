"""Shared values for the status tests (fixtures are in ``conftest.py``)."""

from __future__ import annotations

ADMIN_PATH = "/api/v1/admin/incidents"
