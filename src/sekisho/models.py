"""Imports every table so ``Base.metadata`` is complete (Alembic and tests use it)."""

from sekisho.codes.models import Challenge
from sekisho.db import Base
from sekisho.events.models import AuthEvent
from sekisho.flows.login.models import PendingLogin
from sekisho.identity.models import Account, Identifier
from sekisho.maintenance.models import MaintenanceWindow
from sekisho.methods.models import Authenticator, RecoveryCode, WebAuthnChallenge
from sekisho.notify.models import OutboxMessage
from sekisho.oidc.models import OAuthClient, OAuthCode, OAuthLink, OAuthToken, SigningKey
from sekisho.sessions.models import Session
from sekisho.status.models import Incident, IncidentUpdate

__all__ = ["Account", "AuthEvent", "Authenticator", "Base", "Challenge", "Identifier",
           "Incident", "IncidentUpdate", "MaintenanceWindow", "OAuthClient", "OAuthCode",
           "OAuthLink", "OAuthToken", "OutboxMessage", "PendingLogin", "RecoveryCode",
           "Session", "SigningKey", "WebAuthnChallenge"]
