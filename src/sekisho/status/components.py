"""The parts of the service a member can tell apart, named once: maintenance windows cover
some of them, incidents and automatic degradation are reported per component."""

from __future__ import annotations

from enum import StrEnum

from sekisho.web.i18n import N_


class Component(StrEnum):
    LOGIN = "login"
    REGISTRATION = "registration"
    EMAIL = "email"
    """Email delivery (codes, links, notices)."""
    SMS = "sms"
    """SMS delivery."""
    SECOND_FACTORS = "second_factors"


LABELS: dict[Component, str] = {
    Component.LOGIN: N_("Login"),
    Component.REGISTRATION: N_("Registration"),
    Component.EMAIL: N_("Email delivery"),
    Component.SMS: N_("SMS delivery"),
    Component.SECOND_FACTORS: N_("Second factors"),
}
