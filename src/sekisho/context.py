"""Who is asking: the request facts every service records with what it does."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    ip: str | None = None
    user_agent: str | None = None
    device_id: str | None = None
    request_id: str | None = None
    locale: str = "ja"

    @property
    def short_user_agent(self) -> str | None:
        return self.user_agent[:512] if self.user_agent else None
