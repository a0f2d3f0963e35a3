"""TOTP second factor (RFC 6238): provisioning, sealed storage and code matching.

The one-time password arithmetic is pyotp's; this module decides what is accepted:

- **Clock drift.** A code is accepted for the current time step and ``window`` steps either
  side (default 1, i.e. ±30 s), as RFC 6238 §5.2 recommends: phones drift and people type
  slowly. A wider window only gives guessers more live codes.
- **Replay.** RFC 6238 §5.2 says a verifier must not accept the second attempt of the same OTP
  after a successful validation (ASVS 6.6.x: OTPs are single use). :meth:`Totp.match` returns
  the time step a code matched, the caller stores it per account, and passes it back as
  ``last_step``: a code is accepted only for a step *after* it. That refuses the same code
  twice and any older code, even one still inside the window.
- **Secrets encrypted at rest.** Unlike a password, the verifier needs the shared secret itself
  to compute codes, so it cannot be hashed. It is sealed with AES-256-GCM under a key derived
  for this purpose alone, so a database dump without the application secret yields nothing
  usable, and a tampered value fails to open instead of becoming an attacker-chosen secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import pyotp
import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sekisho.clock import Clock

# 32 base32 symbols = 160 bits, the HMAC-SHA1 key length RFC 4226 §4 recommends
# (and at least the 128 bits NIST SP 800-63B §5.1.4.1 asks of an OTP authenticator's key).
SECRET_LENGTH = 32
# AES-GCM's 96-bit nonce (NIST SP 800-38D §8.2.2). Random nonces are safe for far more than the
# 2**32 seals per key that the standard allows, at any number of accounts sekisho will see.
_NONCE_BYTES = 12
_TAG_BYTES = 16


@dataclass(frozen=True, slots=True)
class Provisioning:
    """What the enrolment page shows. ``secret`` is what to seal and store once confirmed."""

    secret: str  # base32, what the authenticator app stores
    grouped: str  # the secret in groups of 4, for typing it in by hand
    uri: str  # otpauth://totp/<issuer>:<label>?secret=...&issuer=...
    qr_svg: str  # inline SVG of ``uri`` (no XML declaration, no fixed size)


class Totp:
    def __init__(self, secret_key: bytes, clock: Clock, *, issuer: str, digits: int = 6,
                 period: int = 30, window: int = 1) -> None:
        # RFC 4226 §5.3: at least 6 digits; authenticator apps show at most 8.
        if not 6 <= digits <= 8 or period < 1 or window < 0:
            raise ValueError("TOTP needs 6-8 digits, a positive period and a window >= 0")
        self._aead = AESGCM(hmac.new(secret_key, b"totp-secrets", hashlib.sha256).digest())
        self._clock = clock
        self._issuer = issuer
        self._digits = digits
        self._period = period
        self._window = window

    def provision(self, label: str) -> Provisioning:
        """A new random secret for ``label`` (what the app lists it as, e.g. the email)."""
        return self.provisioning(pyotp.random_base32(length=SECRET_LENGTH), label)

    def provisioning(self, secret: str, label: str) -> Provisioning:
        """What to show for an existing ``secret`` (again, while it is not yet confirmed)."""
        uri = self._otp(secret).provisioning_uri(name=label, issuer_name=self._issuer)
        grouped = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
        # make_qr, never Micro QR: authenticator apps cannot read those. The inline SVG has a
        # viewBox but no width/height, so CSS sizes it.
        qr_svg = segno.make_qr(uri, error="m").svg_inline(omitsize=True)
        return Provisioning(secret=secret, grouped=grouped, uri=uri, qr_svg=qr_svg)

    def seal(self, secret: str) -> str:
        """Encrypt ``secret`` for storage: urlsafe base64 of nonce + ciphertext + tag.

        A fresh random nonce every time, so sealing one secret twice gives different text.
        """
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, secret.encode("ascii"), None)
        return base64.urlsafe_b64encode(sealed).decode("ascii")

    def unseal(self, sealed: str) -> str:
        """The secret inside ``sealed``. Raises ``ValueError`` if it was altered, truncated,
        or sealed under another key."""
        try:
            raw = base64.b64decode(sealed, altchars=b"-_", validate=True)
            if len(raw) < _NONCE_BYTES + _TAG_BYTES:
                raise ValueError("too short")
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], None)
        except (ValueError, binascii.Error, InvalidTag):
            raise ValueError("sealed TOTP secret is damaged or under another key") from None
        return plain.decode("ascii")

    def step(self) -> int:
        """The current time step: whole periods since the Unix epoch (RFC 6238 §4.2, T0 = 0)."""
        return int(self._clock.now().timestamp()) // self._period

    def match(self, secret: str, code: str, last_step: int | None) -> int | None:
        """The time step ``code`` matches, if it is within ±window steps of now and later than
        ``last_step`` (the step of the last code accepted for this secret); else None.

        ``code`` must already be normalised to ASCII digits. Every step of the window is
        computed and compared in constant time, so timing reveals neither the code nor which
        step matched. If the code matches several steps (a 1 in 10**digits chance), the latest
        one is taken: recording it as ``last_step`` leaves no later step the code could be
        replayed for.
        """
        if len(code) != self._digits or not (code.isascii() and code.isdigit()):
            return None
        otp = self._otp(secret)
        now = self.step()
        entered = code.encode("ascii")
        matched = None
        for step in range(max(0, now - self._window), now + self._window + 1):
            if hmac.compare_digest(otp.generate_otp(step).encode("ascii"), entered):
                matched = step
        if matched is None or (last_step is not None and matched <= last_step):
            return None
        return matched

    def _otp(self, secret: str) -> pyotp.TOTP:
        return pyotp.TOTP(secret, digits=self._digits, interval=self._period)
