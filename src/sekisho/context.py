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

    @property
    def browser(self) -> str:
        """The browser as a member recognises it in a mail, e.g. ``Chrome 120 / Windows 10``."""
        return describe_user_agent(self.user_agent)


def describe_user_agent(user_agent: str | None) -> str:
    from ua_parser import parse  # its regex tables load on first use

    parsed = parse(user_agent[:512]) if user_agent else None
    if parsed is None or parsed.user_agent is None:
        return (user_agent or "-")[:80]
    agent = " ".join(filter(None, (parsed.user_agent.family, parsed.user_agent.major)))
    if parsed.os is None:
        return agent
    return f"{agent} / " + " ".join(filter(None, (parsed.os.family, parsed.os.major)))
