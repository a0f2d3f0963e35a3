"""The room's door: a pure-ASGI middleware running inside :class:`EdgeMiddleware`.

Inside the edge, so the request facts (client IP, locale, request id) exist and cookies it
queues are written like any other. For a guarded path:

1. a valid pass in the cookie (or the ``Sekisho-Waiting-Room`` header, for API clients that
   keep no cookies) lets the request through: one HMAC check, nothing shared is touched;
2. staff (an admin session) get a pass holding no slot: they must reach a full room;
3. everyone else asks the room (:meth:`WaitingRoom.enter`), presenting their ticket if
   they have one, and either goes through with a new pass or gets their place: a page
   that refreshes itself, or ``429 service.queue`` with ``position``, ``eta_seconds``,
   ``retry_after`` and ``ticket``.

When a request holding a slot starts a session (the login succeeded), the slot is released
and the pass cleared: the capacity counts people in the middle of logging in.
If the room's store fails (Redis unreachable), requests go through: the room protects the
service, it must not become the outage.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import Request, cookie_parser
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sekisho.errors.catalogue import CATALOGUE, ErrorSpec
from sekisho.errors.handler import wants_json
from sekisho.identity.models import Role
from sekisho.waiting_room.events import QUEUED, QueueEvents
from sekisho.waiting_room.passes import Pass
from sekisho.waiting_room.service import TICKET_SECONDS, Admission, Place, WaitingRoom
from sekisho.web.cookies import queue_cookie
from sekisho.web.deps import optional_session, session_token

log = logging.getLogger("sekisho.waiting_room")

HEADER = "Sekisho-Waiting-Room"
_HEADER_KEY = HEADER.lower().encode()
_FAILURE_LOG_SECONDS = 10.0

def queue_spec() -> ErrorSpec:
    return CATALOGUE[QUEUED]


class WaitingRoomMiddleware:
    def __init__(self, app: ASGIApp, *, room: WaitingRoom) -> None:
        self.app = app
        self.room = room
        self._events: QueueEvents | None = None
        self._cookie: str | None = None
        self._failure_logged = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._closing_on_shutdown(receive), send)
            return
        if scope["type"] != "http" or scope["method"] == "OPTIONS" \
                or not self.room.guards(scope["path"]):
            await self.app(scope, receive, send)
            return
        name = self._cookie_name(scope)
        presented = _presented(scope, name)
        held = self.room.read(presented)
        if isinstance(held, Pass):
            await self._through(scope, receive, send, held.slot, presented=True)
            return
        request = Request(scope, receive)
        if await _is_staff(request):
            token, expires_at = self.room.staff_pass()
            queue_cookie(request, name, token, int(expires_at - self.room.now()))
            await self._through(scope, receive, send, None, new_token=token)
            return
        try:
            entry = await self.room.enter(held)
        except Exception:  # noqa: BLE001 - whatever broke the store, fail open
            self._log_failure()
            await self.app(scope, receive, send)
            return
        if isinstance(entry, Admission):
            queue_cookie(request, name, entry.token, int(entry.expires_at - self.room.now()))
            await self._through(scope, receive, send, entry.slot, new_token=entry.token,
                                presented=presented is not None)
            return
        if entry.new:
            queue_cookie(request, name, entry.token, TICKET_SECONDS)
            self._record(request, entry)
        await self._waiting(request, entry)(scope, receive, send)

    async def _through(self, scope: Scope, receive: Receive, send: Send, slot: str | None, *,
                       new_token: str | None = None, presented: bool = False) -> None:
        """Pass the request on; release ``slot`` if the answer starts a session."""
        if slot is None and new_token is None:
            await self.app(scope, receive, send)
            return
        state = scope["state"]
        logged_in = False

        async def send_wrapper(message: Message) -> None:
            nonlocal logged_in
            if message["type"] == "http.response.start":
                if slot is not None and _starts_session(scope, state):
                    logged_in = True
                    name = self._cookie_name(scope)
                    pending = state["set_cookies"]
                    pending[:] = [c for c in pending if c[0] != name]
                    if presented:
                        pending.append((name, None, None))
                elif new_token is not None:
                    MutableHeaders(scope=message).append(HEADER, new_token)
            await send(message)

        await self.app(scope, receive, send_wrapper)
        if logged_in and slot is not None:
            try:
                await self.room.release(slot)
            except Exception:  # noqa: BLE001 - the slot frees itself when the pass expires
                self._log_failure()

    def _waiting(self, request: Request, place: Place) -> Response:
        locale = request.state.facts.locale
        message, remedy = queue_spec().text(locale, {"retry_after": place.retry_after})
        headers = {"Retry-After": str(place.retry_after), "Cache-Control": "no-store",
                   HEADER: place.token}
        status = queue_spec().status
        if wants_json(request):
            return JSONResponse({"error": {
                "code": QUEUED, "message": message, "remedy": remedy,
                "reference": place.reference, "retry_after": place.retry_after,
                "position": place.position, "eta_seconds": place.eta_seconds,
                "opens_at": place.opens_at.isoformat() if place.opens_at else None,
                "ticket": place.token}}, status_code=status, headers=headers)
        app = request.app
        refresh = _refresh_url(request.scope)
        headers["Refresh"] = f"{place.retry_after}; url={refresh}"
        return app.state.pages.render(request, "waiting_room.html", {
            "place": place, "message": message, "remedy": remedy, "refresh_url": refresh,
            "eta_minutes": -(-place.eta_seconds // 60) if place.eta_seconds is not None else None,
            "opens_at": app.state.core.local_time(place.opens_at) if place.opens_at else None,
        }, status_code=status, headers=headers)

    def _record(self, request: Request, place: Place) -> None:
        if self._events is None:
            core = request.app.state.core
            self._events = QueueEvents(core.db, core.events)
        self._events.add(request.state.facts.context(), place.reference, {
            "path": request.url.path, "method": request.method, "ticket": place.number,
            "position": place.position})

    def _cookie_name(self, scope: Scope) -> str:
        if self._cookie is None:
            secure = scope["app"].state.cookies.secure
            # As the other cookies: __Host- pins it to this origin over https.
            self._cookie = f"{'__Host-' if secure else ''}sekisho_waiting_room"
        return self._cookie

    def _closing_on_shutdown(self, receive: Receive) -> Receive:
        """Write pending events and close the store while the database is still open."""
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self.close()
            return message
        return wrapped

    async def close(self) -> None:
        if self._events is not None:
            await self._events.close()
        await self.room.close()

    async def flush_events(self) -> None:
        if self._events is not None:
            await self._events.flush()

    def _log_failure(self) -> None:
        now = time.monotonic()
        if now - self._failure_logged >= _FAILURE_LOG_SECONDS:
            self._failure_logged = now
            log.exception("waiting room store failed: letting requests through")


def _presented(scope: Scope, cookie_name: str) -> str | None:
    cookie = None
    for key, value in scope["headers"]:
        if key == _HEADER_KEY:
            return str(value.decode("latin-1"))
        if key == b"cookie":
            cookie = value
    return cookie_parser(cookie.decode("latin-1")).get(cookie_name) if cookie else None


async def _is_staff(request: Request) -> bool:
    """Only a request presenting a session token costs a session lookup here."""
    token, _ = session_token(request)
    if not token:
        return False
    try:
        active = await optional_session(request)
    except Exception:
        log.exception("session lookup failed in the waiting room")
        return False
    return active is not None and active.account.role == Role.ADMIN


def _starts_session(scope: Scope, state: dict[str, Any]) -> bool:
    session = scope["app"].state.cookies.session
    return any(name == session and value for name, value, _ in state.get("set_cookies", ()))


def _refresh_url(scope: Scope) -> str:
    """Where the waiting page reloads: this address (as a GET). Leading slashes collapse,
    so a path like ``//elsewhere.example`` cannot send the browser to another site."""
    path = "/" + scope.get("raw_path", scope["path"].encode()).decode("latin-1").lstrip("/")
    query = scope.get("query_string", b"").decode("latin-1")
    if query and scope["method"] in ("GET", "HEAD"):
        return f"{path}?{query}"
    return path
