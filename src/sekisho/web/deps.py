"""FastAPI dependencies shared by the routes: the core, the caller's session, JSON-only bodies."""

from __future__ import annotations

from fastapi import Request

from sekisho.context import RequestContext
from sekisho.core import Core
from sekisho.errors import SekishoError
from sekisho.identity.models import Role
from sekisho.sessions.service import ActiveSession
from sekisho.web.cookies import clear_session_cookie

_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def get_core(request: Request) -> Core:
    return request.app.state.core  # type: ignore[no-any-return]


async def ctx(request: Request) -> RequestContext:
    # async on purpose: FastAPI runs plain ``def`` dependencies on the shared thread pool,
    # a hop per request that a login flood would queue everything else behind.
    return request.state.facts.context()  # type: ignore[no-any-return]


def session_token(request: Request) -> tuple[str | None, bool]:
    """The presented token and whether it came from the cookie."""
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), False
    cookie = request.app.state.cookies.session
    return request.cookies.get(cookie), True


async def optional_session(request: Request) -> ActiveSession | None:
    """The caller's live session, if any. A dead cookie is cleared on the way out."""
    if hasattr(request.state, "active_session"):
        return request.state.active_session  # type: ignore[no-any-return]
    token, from_cookie = session_token(request)
    active = None
    if token:
        core = get_core(request)
        active = await core.sessions.resolve(core.db, token)
        if active is None and from_cookie:
            clear_session_cookie(request)
    request.state.active_session = active
    request.state.account_id = active.account.id if active else None
    return active


async def require_session(request: Request) -> ActiveSession:
    active = await optional_session(request)
    if active is None:
        raise SekishoError("auth.required")
    return active


async def require_admin(request: Request) -> ActiveSession:
    """A live session of a staff account (``Role.ADMIN``): 401 ``auth.required`` without a
    session, 403 ``auth.forbidden`` for members."""
    active = await require_session(request)
    if active.account.role != Role.ADMIN:
        raise SekishoError("auth.forbidden")
    return active


async def require_json(request: Request) -> None:
    """JSON endpoints take only ``application/json`` bodies (also a CSRF defence)."""
    if request.method not in _BODY_METHODS:
        return
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    has_body = request.headers.get("content-length", "0") != "0" or \
        "transfer-encoding" in request.headers
    if (has_body or content_type) and content_type != "application/json":
        raise SekishoError("request.unsupported_media_type")
