"""One pure-ASGI middleware: request facts in, security headers and pending cookies out."""

from __future__ import annotations

import logging
import time

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sekisho.clock import TokenSource
from sekisho.settings import Settings
from sekisho.web.context import RequestFacts, TrustedProxies
from sekisho.web.cookies import CookieJar, queue_cookie
from sekisho.web.csrf import csrf_token

_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                               "form-action 'self'; object-src 'none'",
}
DEVICE_COOKIE_MAX_AGE = 400 * 24 * 3600  # the longest lifetime browsers honour (RFC 6265bis)
access_log = logging.getLogger("sekisho.access")


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, *, settings: Settings, tokens: TokenSource,
                 cookies: CookieJar) -> None:
        self.app = app
        self.settings = settings
        self.tokens = tokens
        self.cookies = cookies
        self.proxies = TrustedProxies(settings.trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request = Request(scope)
        state = request.state
        state.facts = RequestFacts(request, self.settings, self.proxies)
        state.csrf_token = lambda: csrf_token(request, self.cookies, self.tokens)
        state.set_cookies = []  # (name, value or None to clear, max_age), see queue_cookie
        is_api = scope["path"].startswith("/api/")
        carries_token = b"token=" in scope.get("query_string", b"")
        device = request.cookies.get(self.cookies.device)
        if not device or len(device) > 64:
            # Browsers get an id on their first visit so events can tell devices apart;
            # API clients identify themselves by their session instead.
            device = None if is_api else self.tokens.token(24)
            if device is not None:
                queue_cookie(request, self.cookies.device, device, DEVICE_COOKIE_MAX_AGE)
        state.device_id = device

        status = 500  # if the app fails before it answers

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for name, value in _SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if carries_token:
                    # A link with a one-time token in its URL must not leak it via Referer,
                    # whatever the page (the form, or the error saying the link is spent).
                    headers["Referrer-Policy"] = "no-referrer"
                headers["X-Request-Id"] = state.facts.request_id
                if self.settings.https:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000")
                for cookie in self.cookies.render(state.set_cookies):
                    headers.append("set-cookie", cookie)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                # The request id is also in the events this request recorded, and in the
                # X-Request-Id header a member can quote.
                access_log.info("%s %s %d", scope["method"], scope["path"], status, extra={
                    "request_id": state.facts.request_id, "method": scope["method"],
                    "path": scope["path"], "status": status, "ip": state.facts.ip,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1)})
