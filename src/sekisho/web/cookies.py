"""Cookie names and attributes in one place (ASVS 3.3: HttpOnly, SameSite, Secure, __Host-)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from sekisho.settings import Settings


class CookieJar:
    def __init__(self, settings: Settings) -> None:
        self.secure = settings.https
        # The __Host- prefix pins a cookie to this exact origin, path / and Secure; browsers
        # accept it only over https, so plain-http development uses the bare name.
        prefix = "__Host-" if self.secure else ""
        self.session = f"{prefix}sekisho_session"
        self.csrf = f"{prefix}sekisho_csrf"
        self.device = f"{prefix}sekisho_device"
        """A random browser id, so events and sessions can tell browsers apart."""
        self.known_device = f"{prefix}sekisho_known"
        """The signed device cookie that puts this browser in its own lockout lane."""
        self.known_device_max_age = settings.device_cookie_lifetime_seconds

    def set(self, response: Response, name: str, value: str, *, max_age: int | None = None,
            http_only: bool = True) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/", secure=self.secure,
                            httponly=http_only, samesite="lax")

    def clear(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", secure=self.secure, httponly=True, samesite="lax")

    def render(self, pending: list[tuple[str, str | None, int | None]]) -> list[str]:
        """``Set-Cookie`` values for cookies queued during a request (value None: clear)."""
        if not pending:
            return []
        scratch = Response()
        for name, value, max_age in pending:
            if value is None:
                self.clear(scratch, name)
            else:
                self.set(scratch, name, value, max_age=max_age)
        return [v.decode("latin-1") for k, v in scratch.raw_headers if k == b"set-cookie"]


def queue_cookie(request: Request, name: str, value: str | None,
                 max_age: int | None = None) -> None:
    """Set (or, with ``value`` None, clear) a cookie on whatever response this request gets,
    error pages included; the edge middleware writes it."""
    request.state.set_cookies.append((name, value, max_age))


def set_session_cookie(request: Request, token: str) -> None:
    queue_cookie(request, request.app.state.cookies.session, token)


def clear_session_cookie(request: Request) -> None:
    queue_cookie(request, request.app.state.cookies.session, None)


def known_device_cookie(request: Request) -> str | None:
    return request.cookies.get(request.app.state.cookies.known_device)


def set_known_device_cookie(request: Request, value: str) -> None:
    jar = request.app.state.cookies
    queue_cookie(request, jar.known_device, value, jar.known_device_max_age)
