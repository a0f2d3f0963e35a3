"""JSON bodies of the flow endpoints. Lengths are bounded before any work is done."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

_MAX_ID = 320
_MAX_PASSWORD = 1024  # generous; the password policy gives the precise error


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


class RegistrationIn(_Body):
    email: str = Field(max_length=_MAX_ID)
    password: str = Field(max_length=_MAX_PASSWORD)
    display_name: str | None = Field(default=None, max_length=100)


class VerificationIn(_Body):
    email: str | None = Field(default=None, max_length=_MAX_ID)
    code: str | None = Field(default=None, max_length=32)
    token: str | None = Field(default=None, max_length=128)


class ResendIn(_Body):
    email: str = Field(max_length=_MAX_ID)


class LoginIn(_Body):
    identifier: str = Field(max_length=_MAX_ID)
    password: str = Field(max_length=_MAX_PASSWORD)


class UnlockIn(_Body):
    token: str = Field(max_length=128)


class ResendLinkIn(_Body):
    token: str = Field(max_length=128)


class IdReminderIn(_Body):
    contact: str = Field(max_length=_MAX_ID, validation_alias=AliasChoices("contact", "email"))
    """An email address or a phone number (``email`` is accepted as the field name too)."""


class RecoveryIn(_Body):
    identifier: str = Field(max_length=_MAX_ID)


class RecoveryCompleteIn(_Body):
    password: str = Field(max_length=_MAX_PASSWORD)
    token: str | None = Field(default=None, max_length=128)
    identifier: str | None = Field(default=None, max_length=_MAX_ID)
    code: str | None = Field(default=None, max_length=32)


class PasswordChangeIn(_Body):
    current_password: str = Field(max_length=_MAX_PASSWORD)
    new_password: str = Field(max_length=_MAX_PASSWORD)


class ReauthenticateIn(_Body):
    """The password, or a second factor: ``method`` with its ``code`` (or ``credential``)."""

    password: str | None = Field(default=None, max_length=_MAX_PASSWORD)
    method: str | None = Field(default=None, max_length=32)
    code: str = Field(default="", max_length=64)
    credential: dict[str, Any] | None = None


class EmailChangeIn(_Body):
    email: str = Field(max_length=_MAX_ID)


class PhoneChangeIn(_Body):
    phone: str = Field(max_length=64)


class CodeIn(_Body):
    code: str = Field(max_length=32)


class TokenIn(_Body):
    token: str = Field(max_length=128)


class FlowIn(_Body):
    flow: str = Field(max_length=128)


class SecondFactorIn(FlowIn):
    method: str = Field(max_length=32)
    code: str = Field(default="", max_length=64)
    credential: dict[str, Any] | None = None
    """For ``method: passkey``: the browser's ``PublicKeyCredential`` as JSON."""


class PasskeyOptionsIn(_Body):
    flow: str | None = Field(default=None, max_length=128)
    """Options for the second factor of this login; without it, for a passwordless login."""


class PasskeyLoginIn(_Body):
    credential: dict[str, Any]


class PasskeyAddIn(_Body):
    name: str = Field(default="", max_length=64)
    credential: dict[str, Any]


class NoticesIn(_Body):
    new_device_login: bool


class FactorNameIn(_Body):
    name: str = Field(default="", max_length=64)


class EnrolIn(FlowIn):
    name: str = Field(default="", max_length=64)


class EnrolConfirmIn(FlowIn):
    code: str = Field(max_length=32)
