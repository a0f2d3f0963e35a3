"""Fixtures for the status tests: the app with the admin incident API, staff and member
clients signed in through the real login API, and the incident service."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from conftest import make_client
from fastapi import FastAPI

from sekisho.identity.models import Role
from sekisho.status.board import StatusBoard
from sekisho.status.service import IncidentService


async def _signed_in(app: FastAPI, factory, role: Role) -> httpx.AsyncClient:
    member = await factory.member(role=role)
    client = make_client(app)
    response = await client.post("/api/v1/login",
                                 json={"identifier": member.email, "password": member.password})
    assert response.status_code == 200, response.text
    client.headers["Authorization"] = f"Bearer {response.json()['session_token']}"
    client.account_id = member.account_id  # type: ignore[attr-defined]
    return client


@pytest.fixture
async def staff(app: FastAPI, factory) -> AsyncIterator[httpx.AsyncClient]:
    client = await _signed_in(app, factory, Role.ADMIN)
    yield client
    await client.aclose()


@pytest.fixture
async def member_client(app: FastAPI, factory) -> AsyncIterator[httpx.AsyncClient]:
    client = await _signed_in(app, factory, Role.MEMBER)
    yield client
    await client.aclose()


@pytest.fixture
def board(app: FastAPI) -> StatusBoard:
    return app.state.status  # type: ignore[no-any-return]


@pytest.fixture
def incidents(board: StatusBoard) -> IncidentService:
    return board.incidents
