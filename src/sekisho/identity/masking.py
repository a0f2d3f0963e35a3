"""Contact details shown to someone who may not be their owner: enough to recognise them,
not enough to learn them."""

from __future__ import annotations

import phonenumbers


def mask_email(address: str) -> str:
    """``hanako.yamada@example.jp`` → ``ha***@example.jp`` (one letter kept for short names)."""
    local, _, domain = address.rpartition("@")
    kept = local[:2] if len(local) > 3 else local[:1]
    return f"{kept}***@{domain}"


def mask_phone(e164: str) -> str:
    """``+819012345678`` → ``+81 ***-****-5678``: the country and the last four digits."""
    number = phonenumbers.parse(e164)
    national = str(number.national_number)
    return f"+{number.country_code} ***-****-{national[-4:]}"


def display_phone(e164: str, region: str) -> str:
    """The member's own number as they would write it: national format at home
    (``090-1234-5678``), international format otherwise."""
    number = phonenumbers.parse(e164)
    if phonenumbers.region_code_for_number(number) == region:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
