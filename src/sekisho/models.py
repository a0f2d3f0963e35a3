"""Imports every table so ``Base.metadata`` is complete (Alembic and tests use it)."""

from sekisho.codes.models import Challenge
from sekisho.db import Base
from sekisho.events.models import AuthEvent
from sekisho.identity.models import Account, Identifier
from sekisho.notify.models import OutboxMessage
from sekisho.sessions.models import Session

__all__ = ["Account", "AuthEvent", "Base", "Challenge", "Identifier", "OutboxMessage", "Session"]
