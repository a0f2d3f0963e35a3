"""Named rate limits: one table of actions, each limited per client IP and per key.

Implemented with the ``limits`` library (moving-window counters), in process on the
embedded default and in Redis when ``SEKISHO_REDIS_URL`` is set, so that every process of
a deployment shares the counts. Keys are normalised identifiers, stored only as keyed hashes
(the event log's, so neither Redis nor the log holds them in clear), and an unknown
identifier is limited exactly like a known one: limits reveal nothing about accounts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from sekisho.errors import SekishoError


class Action(StrEnum):
    """Everything that is rate limited, referenced by name everywhere else."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    REGISTRATION = "registration"
    RECOVERY_REQUEST = "recovery_request"
    ID_REMINDER = "id_reminder"
    CODE_SEND = "code_send"
    CODE_VERIFY = "code_verify"


@dataclass(frozen=True, slots=True)
class Rule:
    """``per_ip`` and ``per_key`` in the ``limits`` notation, e.g. ``"10/minute;100/hour"``."""

    per_ip: str | None = None
    per_key: str | None = None


# Defaults (overridable with the ``rate_limits`` setting). Generous for people, tight for
# scripts: a member never meets them by hand, a bot meets them within a minute.
DEFAULT_RULES: dict[Action, Rule] = {
    # Login pace per client; failures get their own, tighter lanes in the lockout guard.
    Action.LOGIN: Rule(per_ip="60/minute;1000/hour"),
    # Failed logins from one client across all identifiers: credential stuffing and password
    # spraying try few passwords on many identifiers, which per-identifier lanes never see.
    # Browsers with a valid device cookie for the account they try are exempt.
    Action.LOGIN_FAILED: Rule(per_ip="100/hour"),
    # Registrations mail whoever's address is typed: keep one address from being bombed.
    Action.REGISTRATION: Rule(per_ip="10/minute;50/hour", per_key="3/hour"),
    # Recovery mails too; per identifier so a stranger cannot flood an owner's mailbox.
    Action.RECOVERY_REQUEST: Rule(per_ip="10/minute;50/hour", per_key="5/hour"),
    # Forgot-ID mails go to whoever's address is typed: the same bounds as recovery.
    Action.ID_REMINDER: Rule(per_ip="10/minute;50/hour", per_key="5/hour"),
    Action.CODE_SEND: Rule(per_ip="10/minute;50/hour", per_key="5/hour"),
    # Codes have 5 tries each; this stops cycling through many accounts from one client.
    Action.CODE_VERIFY: Rule(per_ip="30/minute;300/hour"),
}


class RateLimiter:
    def __init__(self, *, key_hash: Callable[[str], str], redis_url: str | None = None,
                 overrides: dict[str, dict[str, str | None]] | None = None) -> None:
        self._key_hash = key_hash
        self.storage: Storage = (
            RedisStorage(_async_url(redis_url), implementation="redispy", key_prefix="sekisho")
            if redis_url else MemoryStorage()
        )
        self._strategy = MovingWindowRateLimiter(self.storage)
        self._rules: dict[Action, tuple[list[RateLimitItem], list[RateLimitItem]]] = {}
        for action, rule in DEFAULT_RULES.items():
            override = (overrides or {}).get(action.value, {})
            per_ip = override.get("per_ip", rule.per_ip)
            per_key = override.get("per_key", rule.per_key)
            self._rules[action] = (parse_many(per_ip) if per_ip else [],
                                   parse_many(per_key) if per_key else [])

    async def hit(self, action: Action, *, ip: str | None = None,
                  key: str | None = None) -> None:
        """Count one request; raise the catalogue's 429 with ``retry_after`` when over."""
        for item, scope, value in self._checks(action, ip, key):
            if not await self._strategy.hit(item, action.value, scope, value):
                await self._refuse(action, item, scope, value)

    async def check(self, action: Action, *, ip: str | None = None,
                    key: str | None = None) -> None:
        """Raise like :meth:`hit` if the limit is already used up, without counting."""
        for item, scope, value in self._checks(action, ip, key):
            if not await self._strategy.test(item, action.value, scope, value):
                await self._refuse(action, item, scope, value)

    async def count(self, action: Action, *, ip: str | None = None,
                    key: str | None = None) -> None:
        """Count an outcome (a failed login, say) that :meth:`check` later looks at."""
        for item, scope, value in self._checks(action, ip, key):
            await self._strategy.hit(item, action.value, scope, value)

    def _checks(self, action: Action, ip: str | None,
                key: str | None) -> list[tuple[RateLimitItem, str, str]]:
        per_ip, per_key = self._rules[action]
        return [(item, "ip", ip) for item in per_ip if ip] + \
               [(item, "key", self._key_hash(key)) for item in per_key if key]

    async def _refuse(self, action: Action, item: RateLimitItem, scope: str, value: str) -> None:
        stats = await self._strategy.get_window_stats(item, action.value, scope, value)
        # The window is kept by ``limits`` on wall-clock time, not the injected clock.
        wait = max(1, int(stats.reset_time - time.time()) + 1)
        raise SekishoError("request.rate_limited", retry_after=wait,
                           params={"retry_after": wait}, extra={"limit": action.value})

    async def reset(self) -> None:
        await self.storage.reset()


def _async_url(url: str) -> str:
    return url if url.startswith("async+") else f"async+{url}"
