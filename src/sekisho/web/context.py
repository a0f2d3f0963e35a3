"""Per-request facts: request id, client IP (trusted-proxy aware), locale, device id."""

from __future__ import annotations

import ipaddress
import secrets
from functools import cached_property

from starlette.requests import Request

from sekisho.context import RequestContext
from sekisho.settings import Settings
from sekisho.web.i18n import negotiate


class TrustedProxies:
    """Which peers may tell us the client's address in ``X-Forwarded-For``."""

    def __init__(self, entries: list[str]) -> None:
        self._networks = [ipaddress.ip_network(e, strict=False) for e in entries]

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._networks)

    def client_ip(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """Walk ``X-Forwarded-For`` from the right, skipping our own proxies.

        Only hops added by trusted proxies are believed; the first untrusted address is
        the client. Anything left of it could have been written by the client itself.
        """
        if peer is None or not self._networks or not self.trusts(peer) or not forwarded_for:
            return peer
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else peer


class RequestFacts:
    """Computed once per request and kept on ``request.state.facts``."""

    def __init__(self, request: Request, settings: Settings, proxies: TrustedProxies) -> None:
        self._request = request
        self._settings = settings
        self._proxies = proxies
        self.request_id = request.headers.get("x-request-id", "")[:64] or secrets.token_hex(8)

    @cached_property
    def ip(self) -> str | None:
        peer = self._request.client.host if self._request.client else None
        return self._proxies.client_ip(peer, self._request.headers.get("x-forwarded-for"))

    @cached_property
    def locale(self) -> str:
        return negotiate(self._request, self._settings.default_locale)

    def context(self) -> RequestContext:
        return RequestContext(
            ip=self.ip, user_agent=self._request.headers.get("user-agent"),
            device_id=getattr(self._request.state, "device_id", None), request_id=self.request_id, locale=self.locale,
        )


def facts(request: Request) -> RequestFacts:
    return request.state.facts  # type: ignore[no-any-return]
