"""Passkeys (WebAuthn, with the ``webauthn`` library): registering them, and checking one.

Registration asks for a discoverable credential with user verification, so the passkey
alone logs in (the "biometric login"): something the member has, unlocked by something they
are or know. Every ceremony uses a one-time challenge from ``webauthn_challenges``. The sign
counter is checked: a counter that does not move forward (where the authenticator keeps
one) means a cloned credential, and the login is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, parse_client_data_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from sekisho.clock import Clock
from sekisho.errors import SekishoError
from sekisho.identity.models import Account
from sekisho.methods.models import Authenticator, AuthenticatorKind, WebAuthnChallenge
from sekisho.settings import Settings

REGISTER, LOGIN, SECOND_FACTOR = "register", "login", "second_factor"


class Passkeys:
    def __init__(self, settings: Settings, clock: Clock, secret: bytes) -> None:
        origin = urlsplit(settings.base_url)
        self.rp_id = settings.webauthn_rp_id or origin.hostname or "localhost"
        self.origin = f"{origin.scheme}://{origin.netloc}"
        self._rp_name = settings.service_name
        self._timeout = settings.webauthn_timeout_seconds
        self._clock = clock
        self._handle_key = hmac.new(secret, b"webauthn-user-handles", hashlib.sha256).digest()

    # --- registration ---------------------------------------------------------------------

    async def registration_options(self, db: AsyncSession, account: Account,
                                   existing: list[Authenticator]) -> dict[str, Any]:
        """Options for ``navigator.credentials.create``: a discoverable credential, user
        verification required, none of the member's current passkeys again."""
        options = generate_registration_options(
            rp_id=self.rp_id, rp_name=self._rp_name, user_name=account.email,
            user_id=self._user_handle(account.id), user_display_name=account.display_name or "",
            timeout=self._timeout * 1000,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.REQUIRED),
            exclude_credentials=_descriptors(existing))
        await self._remember(db, options.challenge, REGISTER, account.id)
        return json.loads(options_to_json(options))  # type: ignore[no-any-return]

    async def register(self, db: AsyncSession, account: Account, credential: dict[str, Any],
                       name: str) -> Authenticator:
        """Verify the browser's new credential and keep it (confirmed at once)."""
        challenge = await self._consume(db, credential, REGISTER, account.id)
        try:
            verified = verify_registration_response(
                credential=credential, expected_challenge=challenge, expected_rp_id=self.rp_id,
                expected_origin=self.origin, require_user_verification=True)
        except (WebAuthnException, ValueError, KeyError, TypeError) as error:
            raise SekishoError("passkey.invalid") from error
        credential_id = bytes_to_base64url(verified.credential_id)
        if await db.scalar(select(Authenticator.id).where(
                Authenticator.credential_id == credential_id)) is not None:
            raise SekishoError("passkey.invalid")
        now = self._clock.now()
        passkey = Authenticator(
            account_id=account.id, kind=AuthenticatorKind.PASSKEY, name=name,
            credential_id=credential_id, public_key=verified.credential_public_key,
            sign_count=verified.sign_count, created_at=now, confirmed_at=now)
        db.add(passkey)
        await db.flush()
        return passkey

    # --- use ------------------------------------------------------------------------------

    async def authentication_options(self, db: AsyncSession, purpose: str,
                                     account_id: int | None = None,
                                     allowed: list[Authenticator] | None = None,
                                     ) -> dict[str, Any]:
        """Options for ``navigator.credentials.get``. A passwordless login lists nothing
        (the browser offers its discoverable passkeys); a second factor lists the account's."""
        options = generate_authentication_options(
            rp_id=self.rp_id, timeout=self._timeout * 1000,
            user_verification=UserVerificationRequirement.REQUIRED,
            allow_credentials=_descriptors(allowed or []))
        await self._remember(db, options.challenge, purpose, account_id)
        return json.loads(options_to_json(options))  # type: ignore[no-any-return]

    async def authenticate(self, db: AsyncSession, credential: dict[str, Any], purpose: str,
                           account_id: int | None = None) -> Authenticator:
        """The passkey that signed this challenge (of the account, if given), its counter
        moved on. Raises ``passkey.invalid`` otherwise."""
        challenge = await self._consume(db, credential, purpose, account_id)
        passkey = await db.scalar(select(Authenticator).where(
            Authenticator.credential_id == str(credential.get("id", "")),
            Authenticator.kind == AuthenticatorKind.PASSKEY))
        if passkey is None or (account_id is not None and passkey.account_id != account_id):
            raise SekishoError("passkey.invalid")
        assert passkey.public_key is not None
        try:
            verified = verify_authentication_response(
                credential=credential, expected_challenge=challenge, expected_rp_id=self.rp_id,
                expected_origin=self.origin, credential_public_key=passkey.public_key,
                credential_current_sign_count=passkey.sign_count,
                require_user_verification=True)
        except (WebAuthnException, ValueError, KeyError, TypeError) as error:
            raise SekishoError("passkey.invalid") from error
        # The library refuses a counter that went backwards; the UPDATE makes two logins
        # racing with one counter value end with one winner.
        moved = await db.execute(
            update(Authenticator)
            .where(Authenticator.id == passkey.id, Authenticator.sign_count == passkey.sign_count)
            .values(sign_count=verified.new_sign_count, last_used_at=self._clock.now())
            .execution_options(synchronize_session=False))
        if not moved.rowcount:  # type: ignore[attr-defined]
            raise SekishoError("passkey.invalid")
        return passkey

    # --- challenges -----------------------------------------------------------------------

    def _user_handle(self, account_id: int) -> bytes:
        """An opaque, stable user handle: nothing personal goes to the authenticator."""
        return hmac.new(self._handle_key, str(account_id).encode(), hashlib.sha256).digest()

    async def _remember(self, db: AsyncSession, challenge: bytes, purpose: str,
                        account_id: int | None) -> None:
        now = self._clock.now()
        db.add(WebAuthnChallenge(
            challenge_hash=hashlib.sha256(challenge).hexdigest(), purpose=purpose,
            account_id=account_id, created_at=now,
            expires_at=now + timedelta(seconds=self._timeout)))
        await db.flush()

    async def _consume(self, db: AsyncSession, credential: dict[str, Any], purpose: str,
                       account_id: int | None) -> bytes:
        """The challenge the browser signed, if sekisho issued it for this purpose (and
        account) and it is unused and unexpired; it is used up now."""
        try:
            client_data = credential["response"]["clientDataJSON"]
            challenge = parse_client_data_json(base64url_to_bytes(client_data)).challenge
        except (WebAuthnException, KeyError, TypeError, ValueError) as error:
            raise SekishoError("passkey.invalid") from error
        query = (update(WebAuthnChallenge)
                 .where(WebAuthnChallenge.challenge_hash == hashlib.sha256(challenge).hexdigest(),
                        WebAuthnChallenge.purpose == purpose,
                        WebAuthnChallenge.used_at.is_(None),
                        WebAuthnChallenge.expires_at > self._clock.now())
                 .values(used_at=self._clock.now()))
        if account_id is not None:
            query = query.where(WebAuthnChallenge.account_id == account_id)
        used = await db.execute(query.execution_options(synchronize_session=False))
        if not used.rowcount:  # type: ignore[attr-defined]
            raise SekishoError("passkey.invalid")
        return challenge


def _descriptors(authenticators: list[Authenticator]) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(id=base64url_to_bytes(a.credential_id))
            for a in authenticators if a.credential_id]
