"""Cookie names and attributes in one place (ASVS 3.3: HttpOnly, SameSite, Secure, __Host-)."""

from __future__ import annotations

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

    def set(self, response: Response, name: str, value: str, *, max_age: int | None = None,
            http_only: bool = True) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/", secure=self.secure,
                            httponly=http_only, samesite="lax")

    def clear(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", secure=self.secure, httponly=True, samesite="lax")
