"""Typed settings, read from ``SEKISHO_*`` environment variables or a TOML file.

Every security-relevant number lives here with the reason for its default.
Settings are built once and passed in (``create_app(settings)``); nothing imports a global.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    """All of sekisho's settings. See ``docs/configuration.md`` for the table."""

    model_config = SettingsConfigDict(env_prefix="SEKISHO_", extra="ignore",
                                      use_attribute_docstrings=True)

    # --- where things live -------------------------------------------------------------
    data_dir: Path = Path("./var")
    """Where the embedded database, the generated secret key and the file outbox live."""
    database_url: str | None = None
    """SQLAlchemy async URL. Unset: ``sqlite+aiosqlite:///<data_dir>/sekisho.db``."""
    redis_url: str | None = None
    """Shared state (rate limits, lockout lanes, waiting room) across processes. Unset:
    in-process, right for a single ``serve`` process."""
    base_url: str = "http://127.0.0.1:8000"
    """Public origin for links in mails and SMS. Never derived from the Host header. Unset,
    ``serve`` uses the address it listens on."""
    smtp_url: str | None = None
    """``smtp://host:port`` or ``smtp+starttls://user:pass@host:port``. Unset: ``.eml`` files
    in ``<data_dir>/outbox``."""
    smtp_from: str = "sekisho <no-reply@sekisho.invalid>"
    """The From header of every mail."""
    sms_webhook_url: str | None = None
    """SMS gateway receiving ``{"to", "body"}`` as a signed JSON POST. Unset: ``.json`` files
    in ``<data_dir>/outbox``."""
    sms_webhook_secret: str | None = None
    """HMAC key for the ``X-Sekisho-Signature`` header. Unset: derived from the secret key."""
    secret_key: str | None = None
    """Server secret for HMACs (identifier hashes, device cookies, CSRF, codes).
    Unset: generated once and kept in ``<data_dir>/secret_key``."""
    service_name: str = "sekisho"
    """Shown on pages and in mails, and banned inside passwords (ASVS 6.1.2)."""
    default_locale: str = "ja"
    """Language when the request expresses no preference (``ja`` or ``en``)."""
    display_timezone: str = "Asia/Tokyo"
    """Times in messages ("use the mail sent at 14:05") are shown in this zone."""
    demo: bool = True
    """Create (or renew) the demo member at ``serve`` on the embedded SQLite default."""
    trusted_proxies: list[str] = Field(default_factory=list)
    """Peers (IPs or CIDRs) whose ``X-Forwarded-For`` is believed. Empty: use the socket peer."""

    # --- passwords (NIST SP 800-63B §3.1.1.2, OWASP Password Storage Cheat Sheet) -------------
    argon2_memory_kib: int = 19456
    """OWASP's first argon2id option (m=19 MiB, t=2, p=1): costly for GPUs, ~30 ms here."""
    argon2_time_cost: int = 2
    """argon2id passes (t); OWASP pairs t=2 with m=19 MiB."""
    argon2_parallelism: int = 1
    """argon2id lanes (p); 1 keeps one login on one core so concurrent logins scale."""
    argon2_backend: str = "auto"
    """Which argon2id implementation hashes: ``auto`` (the fastest installed, see
    docs/performance.md), ``argon2-cffi``, ``pynacl`` or ``cryptography``. All write standard
    PHC strings, so switching keeps every stored hash valid."""
    password_min_length: int = 8
    """NIST SP 800-63B rev. 3 minimum for memorised secrets; ASVS 6.2.1 recommends 15."""
    password_max_length: int = 256
    """Far above the 64 NIST requires us to accept; bounds the work of one hash request."""
    hash_concurrency: int = Field(default_factory=lambda: os.cpu_count() or 1)
    """Hashes running at once. More than the cores only adds memory and latency."""
    hash_queue_timeout_seconds: float = 5.0
    """How long a login waits for a hashing slot before ``service.busy`` (no timeout cascade)."""
    python_on_one_cpu: bool = True
    """Run the event loop and every other thread that runs Python (SQLite's, the database
    driver's) on one CPU, and the hashing threads on all of them (Linux; nothing changes with
    one CPU). Python runs one thread at a time anyway, but spread over CPUs, the objects
    its threads share move between the CPUs' caches at every switch: on the 2-core bench
    machine, one CPU cut what a login costs besides its hash by a quarter (2.3 to 1.7 ms)
    and raised logins/s by 9%. ``sekisho serve --workers N`` with N > 1 turns it off (the
    workers could pick the same CPU), unless set explicitly."""

    # --- sessions (NIST SP 800-63B §4.2.3 AAL2 reauthentication, ASVS 7.3) -------------------
    session_idle_timeout_seconds: int = 30 * 60
    """30 minutes of inactivity, the NIST AAL2 bound: these services hold money and tickets."""
    session_absolute_timeout_seconds: int = 12 * 60 * 60
    """12 hours, the NIST AAL2 bound on a session's whole life."""
    session_touch_interval_seconds: int = 60
    """Write ``last_seen`` at most this often per session, so reads do not become writes."""
    login_history_days: int = Field(default=90, ge=1)
    """How far back the account page and ``GET /api/v1/account/history`` show logins and
    refused attempts (at most 100 entries): enough to notice someone else trying, without
    keeping old IP addresses in front of the member for longer than that helps."""

    # --- codes and links (NIST SP 800-63B §5.1.3, ASVS 6.5.4, 6.5.5) -------------------------
    code_length: int = 6
    """6 digits = ~20 bits, the ASVS 6.5.4 minimum for out-of-band codes."""
    code_max_attempts: int = 5
    """Wrong entries per code; with 20 bits that leaves a 5 in a million chance per code."""
    email_code_lifetime_seconds: int = 30 * 60
    """Mail is slower than SMS; 30 minutes covers greylisting delays."""
    reset_lifetime_seconds: int = 30 * 60
    """Password reset link and code: long enough to find the mail, short enough to go stale."""
    code_resend_cooldown_seconds: int = 60
    """Stops a member (or a script) flooding a mailbox by pressing resend."""
    sms_code_lifetime_seconds: int = Field(default=10 * 60, ge=1)
    """Codes sent by SMS (phone verification): SMS arrives within seconds, and a short life
    limits what an intercepted or reassigned number can do (NIST SP 800-63B §5.1.3.2)."""
    contact_revert_lifetime_seconds: int = Field(default=7 * 24 * 60 * 60, ge=1)
    """The "this wasn't me" link sent to the old address or number after a change: a week
    covers a member who reads mail rarely, after which the change stands."""

    not_me_link_lifetime_seconds: int = Field(default=7 * 24 * 60 * 60, ge=1)
    """The "this wasn't me" link in a new-device notice: a week, for members who read mail
    rarely; pressing it needs no login."""

    # --- second factors (NIST SP 800-63B §5.1.3-5.1.5, ASVS 6.5, 6.6) -----------------------
    second_factor_flow_lifetime_seconds: int = Field(default=10 * 60, ge=1)
    """Between a right password and the second factor: long enough to fetch the phone, short
    enough that a half-finished login goes stale."""
    second_factor_max_attempts: int = Field(default=10, ge=1)
    """Wrong second-factor entries per login, counted apart from password failures; then the
    login must start again. Ten leaves a 1 in 100,000 chance against a 6-digit code."""
    second_factor_required: bool = False
    """Operator policy: every member must have a second factor. A member without one sets up
    an authenticator app during login (the enrolment stage) before getting a session.
    Worth turning on for services that hold money (NIST SP 800-63B AAL2)."""
    sms_second_factor: bool = False
    """Offer an SMS code as a second factor to members with a verified phone. Off by default:
    NIST SP 800-63B §5.1.3.3 calls SMS a restricted authenticator (SIM swap, interception)."""

    webauthn_rp_id: str | None = None
    """The passkeys' relying-party ID: a domain the pages are served from (passkeys are bound
    to it for good). Unset: the host of ``base_url``. IP addresses cannot be one; use
    ``localhost`` when trying passkeys out locally."""
    webauthn_timeout_seconds: int = Field(default=5 * 60, ge=1)
    """How long the browser may take to create or use a passkey (the WebAuthn timeout, and
    the life of its one-time challenge)."""

    # --- re-authentication (ASVS 6.2.3, NIST SP 800-63B §7.2) --------------------------------
    step_up_max_age_seconds: int = Field(default=10 * 60, ge=1)
    """Sensitive changes (email, phone) need a password entered within this many seconds;
    an older session is asked to re-enter it (``auth.step_up_required``). Ten minutes lets a
    member finish the change without being asked twice."""

    # --- lockout lanes and device cookies (OWASP device cookies, NIST SP 800-63B §3.2.2) ----
    lockout_threshold: int = Field(default=5, ge=1)
    """Failures within ``lockout_window_seconds`` that lock a lane (one device cookie, or all
    untrusted browsers for one identifier). Five covers a member's honest typos."""
    lockout_window_seconds: int = Field(default=15 * 60, ge=1)
    """How long a failure keeps counting towards the threshold (OWASP's T)."""
    lockout_base_seconds: int = Field(default=15 * 60, ge=1)
    """The first lock of a lane; each further lock in an escalation period lasts twice as long.
    With 5 failures per lock this allows about 100 guesses per identifier in the first day
    and fewer than 30 a day after that."""
    lockout_max_seconds: int = Field(default=24 * 60 * 60, ge=1)
    """The longest single lock; the owner can always unlock their own browser by mail."""
    lockout_escalation_reset_seconds: int = Field(default=24 * 60 * 60, ge=1)
    """A lane quiet for this long after its last lock starts again at the base duration."""
    login_failure_cap: int = Field(default=100, ge=1)
    """Consecutive failures on one account (all lanes, no success in between) after which
    password login is disabled until a reset: the NIST SP 800-63B §3.2.2 limit of 100."""
    device_cookie_lifetime_seconds: int = Field(default=400 * 24 * 60 * 60, ge=1)
    """How long a browser stays known to an account after its last login (400 days, the
    longest cookie lifetime browsers honour)."""
    unlock_link_lifetime_seconds: int = Field(default=24 * 60 * 60, ge=1)
    """The "unlock this browser" link in a lock mail; as long as the longest lock."""
    password_typo_correction: bool = True
    """Also accept the password with Caps Lock inverted, or its first letter's case flipped,
    unless that candidate is a common password (Chatterjee et al., IEEE S&P 2016; NIST
    SP 800-63B rev. 4 permits the first-letter case). Costs extra hashes on failures only."""

    # --- rate limits (ASVS 6.1.1, 6.3.1) --------------------------------------------------
    rate_limits: dict[str, dict[str, str | None]] = Field(default_factory=dict)
    """Overrides of the named limits in ``sekisho.guard.limits.DEFAULT_RULES``, e.g.
    ``{"registration": {"per_ip": "5/minute", "per_key": "3/hour"}}`` (``limits`` notation;
    null disables one side). See docs/guard.md for the defaults and their reasons."""

    # --- duplicate-safe requests (draft-ietf-httpapi-idempotency-key-header) ------------
    idempotency_ttl_seconds: int = Field(default=24 * 60 * 60, ge=60)
    """How long the answer to a request with an ``Idempotency-Key`` header, and the redirect
    of a submitted form, are kept to answer its repeats. A day, as the draft suggests:
    longer than any client keeps retrying (an app offline overnight); after it the same key
    runs as a new request."""
    form_page_ttl_seconds: int = Field(default=5 * 60, ge=1)
    """How long the page a submitted form answered with (rather than a redirect) is kept to
    answer the same submission again: a double click, or going back and resubmitting. Such a
    page may show a secret meant to be shown once (new recovery codes), so minutes, not the
    day a redirect is kept: enough for a second click or a quick back-and-resubmit, short
    enough that the next person at a shared computer cannot bring the page back."""

    # --- status page (/status) ------------------------------------------------------------
    status_resolved_days: int = Field(default=7, ge=0)
    """How long a resolved incident stays on /status, /status.json and /status.atom. A week
    lets members who met the problem find its explanation afterwards, without a long list
    of old news."""
    delivery_degraded_after_failures: int = Field(default=3, ge=1)
    """Failed delivery attempts in a row on one channel (email, SMS) before /status shows it
    as delayed and pages waiting for a code say so. One failure is often a blip (a server
    restart, greylisting); three in a row, with the outbox backoff between retries, is a
    pattern members will notice."""
    delivery_recovered_after_successes: int = Field(default=1, ge=1)
    """Successful deliveries in a row that clear the delay. One delivery proves the path
    works again, and members should not be told to wait when they need not."""

    # --- waiting room (admission control in front of login and registration) --------------
    waiting_room_enabled: bool = True
    """Queue visitors at login and registration when more arrive than the service can take
    (a sale, a campaign mail). On by default: below the numbers here nobody ever waits, and
    a visitor holding a pass costs one cookie check; beyond them a crowd gets a place in
    line instead of ``service.busy`` from the hashers."""
    waiting_room_capacity: int = Field(default=5000, ge=1)
    """Visitors holding a pass at once (a pass is handed back when its login succeeds):
    people in the middle of logging in or registering, far above a normal peak. It also
    bounds the room's pace when visitors leave with their pass: capacity / pass lifetime
    (8 a second with the defaults)."""
    waiting_room_admissions_per_minute: int = Field(default=6000, ge=1)
    """Passes handed out a minute (100 a second, at most two seconds' worth at once): about
    80 % of the logins per second one 2-core server hashes at OWASP cost
    (bench/login_throughput.py measured 130), leaving room for typos and second factors.
    Arrivals faster than this wait in line. Set it to about 90 % of the login capacity
    bench/flash_crowd.py measures on your servers: lower, and logins queue while hashers idle;
    higher, and the crowd meets ``service.busy``. With ``waiting_room_capacity`` at a second
    or two of logins, the slots keep the hashers' queue short and this can be the whole
    capacity (as bench/flash_crowd.py runs it)."""
    waiting_room_pass_seconds: int = Field(default=10 * 60, ge=30)
    """How long a pass lets its holder through: time to fill in the form and a second
    factor (as ``second_factor_flow_lifetime_seconds``)."""
    waiting_room_paths: list[str] = Field(default_factory=lambda: [
        "/login", "/register", "/api/v1/login", "/api/v1/registrations"])
    """Path prefixes (whole segments) behind the room; to add your own, give the whole
    list. ``/healthz``, ``/readyz``, ``/metrics``, ``/static`` and the admin switch never
    wait."""

    # --- OpenID Connect provider (OIDC Core 1.0, RFC 9700 OAuth 2.0 Security BCP) ----------
    oidc_issuer: str | None = None
    """The issuer (``iss``) in tokens and discovery. Unset: ``base_url``. Changing it later
    makes every relying party refuse the tokens, so set it once."""
    oidc_code_lifetime_seconds: int = Field(default=60, ge=10, le=600)
    """Authorization codes are redeemed by the relying party's server within seconds of the
    redirect; RFC 6749 §4.1.2 caps them at 10 minutes, and a short life shrinks the window
    for a leaked code."""
    oidc_access_token_lifetime_seconds: int = Field(default=15 * 60, ge=60)
    """Access tokens are opaque and checked at userinfo and introspection, so revoking one
    takes effect at once; the short life bounds what a leaked one is worth to a resource
    server that caches introspection answers."""
    oidc_id_token_lifetime_seconds: int = Field(default=10 * 60, ge=60)
    """ID tokens prove a sign-in that just happened; relying parties keep their own
    session. A retired signing key stays published this long (plus a minute)."""
    oidc_refresh_token_lifetime_seconds: int = Field(default=30 * 24 * 60 * 60, ge=60)
    """Each refresh token lives this long from issue and is replaced at every use (rotation,
    RFC 9700 §4.14.2); a member who opens the app once a month stays signed in."""
    oidc_refresh_family_lifetime_seconds: int = Field(default=180 * 24 * 60 * 60, ge=60)
    """However often it is refreshed, a sign-in ends this long after it began (ASVS 5.0
    10.4.8: an absolute expiry); six months, then the member signs in again."""
    oidc_key_publish_lead_seconds: int = Field(default=24 * 60 * 60, ge=60 * 60)
    """A rotated signing key is published in the JWKS this long before it signs, so relying
    parties that cache the JWKS (sekisho allows an hour; some keep it up to a day) know it
    before they meet it. ``sekisho oidc keys rotate --now`` skips the wait after a key
    leak."""
    oidc_backchannel_logout: bool = True
    """Send OpenID Back-Channel Logout 1.0 notices (through the outbox, with its retries) to
    clients that registered a URI, when a sekisho session ends."""

    # --- operations -----------------------------------------------------------------------
    log_format: Literal["json", "text"] = "json"
    """``sekisho serve`` logs one JSON object per line (with the request id that events and
    the ``X-Request-Id`` header carry), or plain text for a terminal."""
    metrics_token: str | None = None
    """If set, ``/metrics`` answers only ``Authorization: Bearer <token>``. Unset, it is open:
    expose it on an internal network only."""
    outbox_lag_limit_seconds: int = Field(default=300, ge=1)
    """``/readyz`` fails when the oldest undelivered message is older than this: codes that
    arrive after they expire are worse than a visible alarm."""

    # --- outbox ---------------------------------------------------------------------------
    run_outbox_worker: bool = True
    """Deliver the outbox from inside ``serve``. Turn off when a separate worker runs it."""
    outbox_poll_seconds: float = 2.0
    """How often the worker looks for due messages when nothing wakes it."""
    outbox_max_attempts: int = 12
    """With exponential backoff capped at 1 hour, about a day of retries before giving up."""
    outbox_backoff_base_seconds: float = 5.0
    """First retry delay; doubles on each failure."""
    outbox_backoff_max_seconds: float = 3600.0
    """Longest wait between two delivery attempts."""
    outbox_scrub_after_delivery: bool = True
    """Drop message bodies (codes, links) from the database once delivered."""

    # --- maintenance windows --------------------------------------------------------------
    maintenance_timezone: str = "Asia/Tokyo"
    """Recurring maintenance windows ("every Monday 00:00 for 7h") are wall-clock times in this
    IANA zone, daylight saving included; one-off times given without an offset are read in it
    too. Members see the times in ``display_timezone``."""
    maintenance_notice_hours: int = Field(default=24, ge=0)
    """The login page announces a window from this many hours before it starts: members who
    log in daily see it once, without a banner that never goes away. 0 turns it off."""
    maintenance_reload_seconds: float = Field(default=5.0, gt=0)
    """Each process rereads the window list at most this often (every request checks it from
    memory, never with a query). Windows changed by another process or the CLI apply within
    this time; the process making the change applies it at once."""

    # --- identifiers ----------------------------------------------------------------------
    email_local_part_case_sensitive: bool = False
    """RFC 5321 allows case-sensitive local parts; no consumer mailbox provider uses them."""
    phone_default_region: str = "JP"
    """Region for phone numbers typed without a country code (``090-1234-5678``)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("SEKISHO_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @field_validator("maintenance_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as "
                             "Asia/Tokyo)") from None
        return value

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        if value not in ("ja", "en"):
            raise ValueError("default_locale must be 'ja' or 'en'")
        return value

    # --- derived values -------------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'sekisho.db').resolve()}"

    @property
    def is_embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def issuer(self) -> str:
        return (self.oidc_issuer or self.base_url).rstrip("/")

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")

    def resolved_secret_key(self) -> bytes:
        """The server secret; generated into ``data_dir`` on first use when not configured."""
        if self.secret_key:
            return self.secret_key.encode()
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        return path.read_text().strip().encode()

    def public_dict(self) -> dict[str, Any]:
        """Settings without secrets, for logs and the start-up banner."""
        hidden = {"secret_key", "sms_webhook_secret"}
        return {k: v for k, v in self.model_dump().items() if k not in hidden}
