"""Turn what a member typed into the one lookup key for an identifier.

Every path that looks an account up or stores an identifier (login, registration, recovery,
support lookup) goes through :func:`normalise_identifier` or one of its narrower siblings, so the
same person typing the same thing in any spelling reaches the same ``identifiers.value``.

Japanese IMEs make the spelling vary a lot: full-width digits and letters (``０９０``), the
ideographic space (U+3000), and several "hyphens" (U+2212 MINUS SIGN, U+30FC KATAKANA-HIRAGANA
PROLONGED SOUND MARK, U+FF0D FULLWIDTH HYPHEN-MINUS). NFKC (UAX #15) folds the width
variants; separators are then dropped from number-like identifiers only, never from emails.

Pipeline, for every input:

1. trim surrounding whitespace (``str.strip``, which includes U+3000);
2. reject empty input (``missing``) and input over 320 characters (``too_long``);
3. reject invisible and control characters (``invisible_character``), see ``_INVISIBLE``;
4. NFKC, then trim again;
5. classify: ``@`` makes an email; otherwise spaces and dashes are removed and the shape decides
   between phone, member ID and card number.

All refusals are ``SekishoError("request.invalid", field=..., params={"reason": ...})`` with a
reason from ``sekisho.errors.catalogue.REASONS``. They depend only on the shape of the input,
never on whether an account exists (ASVS 6.3.8: no account enumeration).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

import phonenumbers

from sekisho.errors.catalogue import SekishoError
from sekisho.identity.models import IdentifierKind

__all__ = [
    "MAX_LENGTH",
    "NormalisedIdentifier",
    "normalise_code",
    "normalise_email",
    "normalise_identifier",
    "normalise_password",
    "normalise_phone",
]

MAX_LENGTH: Final = 320
"""RFC 5321 §4.5.3.1 (64-octet local part, ``@``, 255-octet domain), and the width of
``identifiers.value``. Checked before the character scan so one request costs bounded work."""

# Unicode general categories nobody types on purpose: controls (Cc: NUL, TAB inside a value),
# format characters (Cf: U+200B ZERO WIDTH SPACE, U+202E RIGHT-TO-LEFT OVERRIDE, U+FEFF, soft
# hyphen), private use (Co), lone surrogates (Cs), unassigned code points (Cn), and the line and
# paragraph separators (Zl, Zp). They make two visually equal strings differ (spoofing a
# support agent, or splitting one member into two keys), so they are refused, not stripped.
# Checked before NFKC: NFKC never produces any of them from other characters (verified over
# every code point of Unicode 14.0, Python 3.11's database).
_INVISIBLE: Final = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})

# Dashes that are not in category Pd but that Japanese IMEs produce when a hyphen is meant.
# U+FF70 is mapped to U+30FC by NFKC; it is listed anyway so the set does not depend on order.
_EXTRA_DASHES: Final = frozenset({"\u2212", "\u30fc", "\uff70"})

# Label separators that IDNA treats like "." (RFC 3490 §3.1). NFKC already maps U+FF0E to "."
# and U+FF61 to U+3002, so U+3002 IDEOGRAPHIC FULL STOP is the one left to handle.
_IDEOGRAPHIC_FULL_STOP: Final = "\u3002"

# One DNS label after IDNA: letters, digits and inner hyphens (RFC 1123 §2.1, RFC 5890 §2.3.1).
_LDH_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)

# An international phone number as typed after separators are gone: "+", digits and the
# "(0)" trunk-prefix notation ("+81 (0)90 ..."). Letters are refused here because
# ``phonenumbers`` would otherwise turn vanity spellings ("+1 800 FLOWERS") into digits.
_PLUS_FORM: Final = re.compile(r"\+[0-9()]+", re.ASCII)

_MEMBER_ID_LENGTH: Final = 10
_CARD_LENGTH: Final = 16
_DOMESTIC_PHONE_LENGTHS: Final = (10, 11)
"""Japanese numbers with the trunk prefix 0: landlines have 10 digits, mobiles 11."""


@dataclass(frozen=True, slots=True)
class NormalisedIdentifier:
    """An identifier in canonical form.

    ``value`` is the lookup key stored in ``identifiers.value`` (unique per ``kind``).
    ``display`` is the human form: an email with its local part as typed (after NFKC and
    trimming) and its domain in lower-case Unicode; a phone number in E.164; the digits of a
    member ID or card number.
    """

    kind: IdentifierKind
    value: str
    display: str


def normalise_identifier(
    raw: str,
    *,
    field: str = "identifier",
    email_local_case_sensitive: bool = False,
    phone_region: str = "JP",
) -> NormalisedIdentifier:
    """Classify and normalise anything a member logs in with.

    Email if it contains ``@`` (after NFKC, so ``＠`` counts); otherwise, once spaces
    (category Zs) and dashes (category Pd, U+2212, U+30FC, U+FF70) are removed:

    * ``+`` first: an international phone number, valid per ``phonenumbers``, as E.164;
    * 10 ASCII digits, first one 1-9: a member ID (member IDs never start with 0);
    * 16 ASCII digits: a card number;
    * 10 or 11 ASCII digits starting with 0: a phone number in ``phone_region``, as E.164.

    Anything else is ``request.invalid`` with reason ``unknown_identifier_format``.

    Raises:
        SekishoError: ``request.invalid`` naming ``field``, reason ``missing``, ``too_long``,
            ``invisible_character``, ``not_an_email`` or ``unknown_identifier_format``.
    """
    text = _prepare(raw, field)
    if "@" in text:
        return _email(text, field, email_local_case_sensitive)
    return _not_email(text, field, phone_region)


def normalise_email(
    raw: str, *, field: str = "email", email_local_case_sensitive: bool = False
) -> NormalisedIdentifier:
    """Normalise input that must be an email address (registration, change of address).

    Same rules and same key as :func:`normalise_identifier`, so an address registered here is
    found at login. Anything without ``@`` is reason ``not_an_email``.
    """
    text = _prepare(raw, field)
    if "@" not in text:
        raise _invalid(field, "not_an_email")
    return _email(text, field, email_local_case_sensitive)


def normalise_phone(raw: str, *, field: str = "phone", region: str = "JP") -> NormalisedIdentifier:
    """Normalise input that must be a phone number; the value is E.164 (ITU-T E.164).

    Accepts exactly what :func:`normalise_identifier` classifies as a phone, so a number
    stored from here is always recognised as a phone at login (and never as a member ID).
    Anything else is reason ``not_a_phone_number``.
    """
    text = _prepare(raw, field)
    if "@" not in text:
        try:
            result = _not_email(text, field, region)
        except SekishoError:
            result = None
        if result is not None and result.kind is IdentifierKind.PHONE:
            return result
    raise _invalid(field, "not_a_phone_number")


def normalise_password(raw: str) -> str:
    """NFKC-normalise a password, before hashing it and before checking it against the policy.

    Why: Japanese IMEs switch between full-width and half-width input, so the same member
    types ``ｐａｓｓ１２３`` on one device and ``pass123`` on another; NFKC makes them one
    password. NIST SP 800-63B rev. 3 §5.1.1.2 allowed NFKC or NFKD for exactly this;
    rev. 4 §3.1.1.2 suggests NFC. We keep NFKC (a deliberate choice, changing it would lock out
    members whose hash was made from the NFKC form).

    This is a documented deviation from ASVS 6.2.8 ("checked exactly as typed"): only Unicode
    compatibility forms are folded. There is no trimming, no case folding and no truncation;
    leading and trailing spaces are part of the password.
    """
    return unicodedata.normalize("NFKC", raw)


def normalise_code(raw: str, *, field: str = "code", length: int | None = None) -> str:
    """Normalise a one-time code typed or pasted by a member (``１２３ ４５６``, ``123-456``).

    NFKC, then spaces and dashes are removed; what remains must be ASCII digits (reason
    ``not_digits``). With ``length``, a code of another length is ``wrong_length`` with
    ``params["length"]``: a format error, so the caller can refuse it
    without spending one of the code's attempts (NIST SP 800-63B §5.1.3).
    """
    digits = _compact(_prepare(raw, field))
    if not _is_ascii_digits(digits):
        raise _invalid(field, "not_digits")
    if length is not None and len(digits) != length:
        raise _invalid(field, "wrong_length", length=length)
    return digits


# --- helpers -------------------------------------------------------------------------------


def _invalid(field: str, reason: str, **params: object) -> SekishoError:
    return SekishoError("request.invalid", field=field, params={"reason": reason, **params})


def _prepare(raw: str, field: str) -> str:
    """Steps 1-4 of the module pipeline: trim, bound, refuse invisible characters, NFKC."""
    text = raw.strip()
    if not text:
        raise _invalid(field, "missing")
    if len(text) > MAX_LENGTH:
        raise _invalid(field, "too_long")
    if any(unicodedata.category(ch) in _INVISIBLE for ch in text):
        raise _invalid(field, "invisible_character")
    # NFKC never turns non-whitespace into only whitespace, so ``text`` stays non-empty; it
    # can lengthen ("㍿" becomes four characters), hence the second bound.
    text = unicodedata.normalize("NFKC", text).strip()
    if len(text) > MAX_LENGTH:
        raise _invalid(field, "too_long")
    return text


def _is_separator(ch: str) -> bool:
    return ch in _EXTRA_DASHES or unicodedata.category(ch) in ("Zs", "Pd")


def _compact(text: str) -> str:
    return "".join(ch for ch in text if not _is_separator(ch))


def _is_ascii_digits(text: str) -> bool:
    # ``str.isdigit`` alone accepts other scripts' digits (e.g. Arabic-Indic), which NFKC
    # leaves alone; they are not member IDs.
    return text.isascii() and text.isdigit()


def _not_email(text: str, field: str, region: str) -> NormalisedIdentifier:
    compact = _compact(text)
    if compact.startswith("+"):
        return _phone(compact, field, region)
    if _is_ascii_digits(compact):
        if len(compact) == _MEMBER_ID_LENGTH and compact[0] != "0":
            return NormalisedIdentifier(IdentifierKind.MEMBER_ID, compact, compact)
        if len(compact) == _CARD_LENGTH:
            return NormalisedIdentifier(IdentifierKind.CARD, compact, compact)
        if compact[0] == "0" and len(compact) in _DOMESTIC_PHONE_LENGTHS:
            return _phone(compact, field, region)
    raise _invalid(field, "unknown_identifier_format")


def _phone(compact: str, field: str, region: str) -> NormalisedIdentifier:
    """Parse with ``phonenumbers``; only valid numbers (per its metadata) are phones."""
    if compact.startswith("+") and not _PLUS_FORM.fullmatch(compact):
        raise _invalid(field, "unknown_identifier_format")
    try:
        number = phonenumbers.parse(compact, region)
    except phonenumbers.NumberParseException:
        raise _invalid(field, "unknown_identifier_format") from None
    if not phonenumbers.is_valid_number(number):
        raise _invalid(field, "unknown_identifier_format")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return NormalisedIdentifier(IdentifierKind.PHONE, e164, e164)


def _email(text: str, field: str, local_case_sensitive: bool) -> NormalisedIdentifier:
    """Pragmatic email check and key: ``local@domain`` with a dotted, IDNA-encodable domain.

    Not RFC 5322-complete on purpose: quoted local parts with spaces and address literals are
    refused, which no consumer mailbox needs. The local part is case-folded for the key
    (RFC 5321 §2.4 lets it be case-sensitive; no consumer provider uses that, see
    ``Settings.email_local_part_case_sensitive``); hyphens and dots in it are kept, they matter.
    """
    if any(ch.isspace() for ch in text):
        raise _invalid(field, "not_an_email")
    local, _, domain = text.partition("@")
    if not local or "@" in domain:
        raise _invalid(field, "not_an_email")
    ascii_domain, display_domain = _domain(domain, field)
    key_local = local if local_case_sensitive else local.casefold()
    value = f"{key_local}@{ascii_domain}"
    if len(value) > MAX_LENGTH:  # punycode can lengthen a Unicode domain
        raise _invalid(field, "too_long")
    return NormalisedIdentifier(IdentifierKind.EMAIL, value, f"{local}@{display_domain}")


def _domain(domain: str, field: str) -> tuple[str, str]:
    """Return the domain as lower-case ASCII (punycode, RFC 3490 ToASCII) and as Unicode.

    Python's ``idna`` codec implements IDNA 2003 (nameprep), which also folds the case of
    Unicode labels; ASCII labels are lower-cased here.
    """
    domain = domain.replace(_IDEOGRAPHIC_FULL_STOP, ".")
    labels = domain.split(".")
    # A trailing dot ("example.jp.") is a valid FQDN but would give a second key for one
    # mailbox, so empty labels are refused everywhere.
    if len(labels) < 2 or not all(labels):
        raise _invalid(field, "not_an_email")
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
        # Decoding back also rejects malformed punycode typed directly ("xn--zz.jp").
        display_domain = ascii_domain.encode("ascii").decode("idna")
    except UnicodeError:
        raise _invalid(field, "not_an_email") from None
    ascii_labels = ascii_domain.split(".")
    # An all-numeric top-level label means an IP address, not a mailbox domain (RFC 3696 §2).
    if ascii_labels[-1].isdigit() or not all(_LDH_LABEL.fullmatch(label) for label in ascii_labels):
        raise _invalid(field, "not_an_email")
    return ascii_domain, display_domain
