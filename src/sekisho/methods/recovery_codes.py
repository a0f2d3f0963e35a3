"""Recovery codes: look-up secrets for when the second factor is lost.

NIST SP 800-63B §5.1.2 and ASVS 6.x ask that look-up secrets come from the CSPRNG with at least
64 bits of entropy (ASVS 6.5.2: with that much, a keyed hash is enough, no slow password
hash needed), that each is usable once, and that they are stored so a database dump alone
does not reveal them.

A code is 13 symbols of Crockford base32 (13 x 5 = 65 bits), shown as ``ABCD-EFGH-JKMNP``
(groups of 4, 4 and 5: short enough to read off and type, and the odd last group keeps the
count at 13 without a one-symbol tail). Crockford's alphabet has no I, L, O or U, and its
decoding rules read O as 0 and I or L as 1, so a code copied by hand still works. Entry is
forgiving in the same spirit: any case, spaces, hyphens or other dashes, and full-width
characters from a Japanese IME.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 13
# Crockford base32 decoding: letters that look like digits are read as those digits.
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
# Separators people type between groups that are not Unicode dashes (category Pd): the minus
# sign, and the katakana prolonged sound mark a Japanese IME often gives for "-".
_SEPARATORS = frozenset("\u2212\u30fc")


def generate(count: int = 10) -> list[str]:
    """``count`` distinct new codes, for display (grouped, e.g. ``ABCD-EFGH-JKMNP``).

    Store ``RecoveryCodeHasher.hash(normalise(code))`` for each; show the codes once.
    """
    codes: list[str] = []
    while len(codes) < count:
        code = _group("".join(secrets.choice(ALPHABET) for _ in range(LENGTH)))
        if code not in codes:  # at 65 bits a repeat is all but impossible; never show one
            codes.append(code)
    return codes


def normalise(raw: str) -> str | None:
    """The canonical 13-symbol form of a code as a person typed it, or None if it cannot be
    one (wrong length, or a symbol outside the alphabet such as U)."""
    text = "".join(ch for ch in unicodedata.normalize("NFKC", raw) if not _is_separator(ch))
    # Only ASCII from here on: upper-casing some non-ASCII letters (ß, ı) yields ASCII ones.
    if not text.isascii():
        return None
    text = text.upper().translate(_LOOKALIKES)
    if len(text) != LENGTH or any(ch not in ALPHABET for ch in text):
        return None
    return text


class RecoveryCodeHasher:
    def __init__(self, secret_key: bytes) -> None:
        self._key = hmac.new(secret_key, b"recovery-codes", hashlib.sha256).digest()

    def hash(self, canonical: str) -> str:
        """Hex HMAC-SHA256 of a canonical code, under a key derived for recovery codes alone.

        Raises ``ValueError`` for anything not canonical, so a grouped or mistyped code can
        never be stored as a hash that no entry will ever match.
        """
        if normalise(canonical) != canonical:
            raise ValueError("recovery codes are hashed in canonical form; normalise first")
        return hmac.new(self._key, canonical.encode("ascii"), hashlib.sha256).hexdigest()


def _group(canonical: str) -> str:
    return f"{canonical[:4]}-{canonical[4:8]}-{canonical[8:]}"


def _is_separator(ch: str) -> bool:
    return ch.isspace() or ch in _SEPARATORS or unicodedata.category(ch) == "Pd"
