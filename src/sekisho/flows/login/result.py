"""What a login stage answers: a session, or the next stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sekisho.identity.models import Account


@dataclass(frozen=True, slots=True)
class LoginResult:
    token: str | None
    """The new session's token (``None`` when a second factor is due, or an existing
    session was re-authenticated)."""
    account: Account
    reference: str
    device_cookie: str | None
    """A fresh device cookie for this browser (OWASP: reissued at every login)."""
    notices: list[dict[str, Any]] = field(default_factory=list)
    """Things to tell the member now that they proved who they are (card replaced, ...)."""
    flow: str | None = None
    """The second-factor stage's token, when the account has a second factor."""
    methods: list[str] = field(default_factory=list)
    """The methods that can finish that stage."""
    enrol: bool = False
    """The stage is enrolment: policy requires a second factor and the account has none."""
