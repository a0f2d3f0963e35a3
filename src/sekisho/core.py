"""The composition root: builds every collaborator once from settings, clock and tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sekisho.clock import Clock, SystemClock, TokenSource
from sekisho.codes.service import ChallengeService
from sekisho.db import Database
from sekisho.events.service import EventLog
from sekisho.guard.devices import DeviceCookies
from sekisho.guard.limits import RateLimiter
from sekisho.guard.lockout import (
    LockoutGuard,
    LockoutPolicy,
    MemoryLaneStore,
    RedisLaneStore,
)
from sekisho.identity.service import AccountService
from sekisho.methods.passkeys import Passkeys
from sekisho.methods.password.hashing import PasswordHasher
from sekisho.methods.password.policy import PasswordPolicy
from sekisho.methods.recovery_codes import RecoveryCodeHasher
from sekisho.methods.totp import Totp
from sekisho.notify.service import Notifier
from sekisho.sessions.service import SessionService
from sekisho.settings import Settings


@dataclass
class Core:
    """Shared collaborators handed to every flow service."""

    settings: Settings
    clock: Clock
    tokens: TokenSource
    db: Database
    hasher: PasswordHasher
    policy: PasswordPolicy
    events: EventLog
    sessions: SessionService
    challenges: ChallengeService
    notifier: Notifier
    accounts: AccountService
    limiter: RateLimiter
    lockout: LockoutGuard
    devices: DeviceCookies
    totp: Totp
    recovery_codes: RecoveryCodeHasher
    passkeys: Passkeys

    async def close(self) -> None:
        await self.lockout.store.close()
        await self.db.dispose()
        self.hasher.close()

    def local_time(self, moment: datetime) -> str:
        """A time as members read it: in the display time zone, minutes precision."""
        return moment.astimezone(ZoneInfo(self.settings.display_timezone)).strftime("%Y-%m-%d %H:%M")


def build_core(settings: Settings, clock: Clock | None = None,
               tokens: TokenSource | None = None, database: Database | None = None) -> Core:
    clock = clock or SystemClock()
    tokens = tokens or TokenSource()
    secret = settings.resolved_secret_key()
    events = EventLog(clock, tokens, secret)
    return Core(
        settings=settings, clock=clock, tokens=tokens,
        db=database or Database(settings.resolved_database_url),
        hasher=PasswordHasher(
            memory_kib=settings.argon2_memory_kib, time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism, concurrency=settings.hash_concurrency,
            queue_timeout=settings.hash_queue_timeout_seconds, backend=settings.argon2_backend,
        ),
        policy=PasswordPolicy(min_length=settings.password_min_length,
                              max_length=settings.password_max_length,
                              service_name=settings.service_name),
        events=events,
        sessions=SessionService(settings, clock, tokens),
        challenges=ChallengeService(settings, clock, tokens, secret),
        notifier=Notifier(settings, clock),
        accounts=AccountService(
            clock, tokens, email_local_case_sensitive=settings.email_local_part_case_sensitive,
            phone_region=settings.phone_default_region),
        limiter=RateLimiter(key_hash=events.identifier_hash, redis_url=settings.redis_url,
                            overrides=settings.rate_limits),
        lockout=LockoutGuard(
            LockoutPolicy(threshold=settings.lockout_threshold,
                          window=settings.lockout_window_seconds,
                          base_duration=settings.lockout_base_seconds,
                          max_duration=settings.lockout_max_seconds,
                          escalation_reset=settings.lockout_escalation_reset_seconds),
            RedisLaneStore(settings.redis_url) if settings.redis_url else MemoryLaneStore(clock),
            clock),
        devices=DeviceCookies(secret, clock, tokens, settings.device_cookie_lifetime_seconds),
        totp=Totp(secret, clock, issuer=settings.service_name),
        recovery_codes=RecoveryCodeHasher(secret),
        passkeys=Passkeys(settings, clock, secret),
    )
