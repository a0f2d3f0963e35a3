"""Which new passwords sekisho accepts (at registration, password change and recovery).

The rules are those of NIST SP 800-63B-4 §3.1.1.2 (rev. 3 §5.1.1.2) and OWASP ASVS 5.0 V6.2:

* a length window counted in Unicode code points (ASVS 6.2.1, 6.2.9);
* no password built from a context-specific word: the service name, the member's email local
  part, member ID or display name (ASVS 6.1.2, 6.2.11);
* no password from a list of common and breached passwords (ASVS 6.2.4, 6.2.12);
* and nothing else: no composition rules, any character allowed (ASVS 6.2.5).

The password given to :meth:`PasswordPolicy.check` is already NFKC-normalised (see
:func:`sekisho.identity.normalize.normalise_password`); it is judged exactly as it will be hashed.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable
from typing import Final

from sekisho.errors.catalogue import SekishoError

__all__ = ["PasswordPolicy"]

# Common choices on Japanese consumer services that zxcvbn's (English-centred) list lacks:
# romanised "password" and greetings, the same in kana, and the keyboard-walk and digit-run
# examples that ASVS 6.2.4's own test tries. Keep it short; the 30,000-entry list does the bulk.
_EXTRA_COMMON: Final = (
    "pasuwado",
    "pasuwaado",
    "arigatou",
    "sakura123",
    "tokyo2020",
    "123456789012",
    "qwertyuiopasdf",
    "ぱすわーど",
    "パスワード",
)

# A password that is a context word plus at most this many other characters is "built from"
# it: "taro.yamada!!", and "sekisho2026", the year being the commonest padding of all.
_MAX_PADDING: Final = 4
# Shorter context words are only refused when they are the whole password: short words occur
# by chance inside good passphrases.
_MIN_WORD_LENGTH: Final = 4


@functools.cache
def _blocklist() -> frozenset[str]:
    """zxcvbn's ``passwords`` frequency list (30,000 entries) plus ``_EXTRA_COMMON``, casefolded.

    The list is ranked from real password breaches, so it covers ASVS 6.2.4 (top 3,000) and,
    offline and partially, ASVS 6.2.12 (breached passwords). Imported on first use, once per
    process: loading zxcvbn's lists costs time and memory that processes never checking a
    password (workers, CLI) should not pay.
    """
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    words = (*FREQUENCY_LISTS["passwords"], *_EXTRA_COMMON)
    return frozenset(unicodedata.normalize("NFKC", word).casefold() for word in words)


class PasswordPolicy:
    """Checks a new password against length, context words and the blocklist.

    Built once from settings (``password_min_length``, ``password_max_length``,
    ``service_name``) and handed to the flows that set passwords.
    """

    def __init__(
        self, *, min_length: int = 8, max_length: int = 256, service_name: str = "sekisho"
    ) -> None:
        if min_length < 1 or max_length < min_length:
            raise ValueError("need 1 <= min_length <= max_length")
        self.min_length = min_length
        self.max_length = max_length
        self.service_name = service_name

    def preload(self) -> None:
        """Load the blocklist now (about 70 ms, once per process), so the first failed login,
        whose typo corrections are checked against it, does not stall the event loop."""
        _blocklist()

    def check(
        self, password: str, *, context_words: Iterable[str] = (), field: str = "password"
    ) -> None:
        """Return if ``password`` (NFKC already) is acceptable, else raise ``SekishoError``.

        Checked in this order, the first failure wins:

        1. ``password.too_short`` (params ``min_length``): fewer code points than
           ``min_length`` (NIST SP 800-63B §3.1.1.2, ASVS 6.2.1);
        2. ``password.too_long`` (params ``max_length``): the bound on one hash's work;
        3. ``password.too_personal``: built from a context word, see :meth:`is_personal`
           (ASVS 6.2.11);
        4. ``password.too_common``: in the blocklist, see :meth:`is_common` (ASVS 6.2.4,
           6.2.12).

        ``context_words`` are the member's email local part, member ID and display name; the
        service name is always added. ``field`` is set on the error so forms can mark the
        input (``new_password`` on a change form, say). No composition rules (ASVS 6.2.5).
        """
        length = len(password)  # code points, not bytes: "パスワード" is 5, as a person counts
        if length < self.min_length:
            raise SekishoError(
                "password.too_short", field=field, params={"min_length": self.min_length}
            )
        if length > self.max_length:
            raise SekishoError(
                "password.too_long", field=field, params={"max_length": self.max_length}
            )
        if self.is_personal(password, context_words=context_words):
            raise SekishoError("password.too_personal", field=field)
        if self.is_common(password):
            raise SekishoError("password.too_common", field=field)

    def is_personal(self, password: str, *, context_words: Iterable[str] = ()) -> bool:
        """Whether ``password`` is built from a context word or the service name (ASVS 6.2.11).

        Comparison is casefolded. A match is a password equal to a context word, or one that
        contains a word of at least 4 characters such that at most 4 characters remain once
        every occurrence of it is removed ("sekishosekisho", "sekisho2026", "taro.yamada!!").
        """
        folded = password.casefold()
        for word in self._context(context_words):
            if folded == word:
                return True
            if len(word) >= _MIN_WORD_LENGTH and word in folded:
                if len(folded.replace(word, "")) <= _MAX_PADDING:
                    return True
        return False

    def is_common(self, password: str) -> bool:
        """Whether the whole password, casefolded, is in the blocklist (ASVS 6.2.4, 6.2.12)."""
        return password.casefold() in _blocklist()

    def corrections(self, password: str) -> list[tuple[str, str]]:
        """Typo corrections worth trying when ``password`` fails: ``(kind, candidate)``.

        ``caps_lock``: every ASCII letter's case inverted; ``first_letter``: the first
        character's case flipped (mobile keyboards capitalise it). A candidate is dropped when it
        is a common password or outside the length rule: correcting towards a guessable
        password would hand a guesser extra tries for free (Chatterjee et al., 2016).
        """
        inverted = "".join(c.swapcase() if c.isascii() else c for c in password)
        flipped = password[:1].swapcase() + password[1:] if password[:1].isascii() else password
        found: list[tuple[str, str]] = []
        for kind, candidate in (("caps_lock", inverted), ("first_letter", flipped)):
            if candidate == password or any(candidate == c for _, c in found):
                continue
            if not self.min_length <= len(candidate) <= self.max_length:
                continue
            if self.is_common(candidate):
                continue
            found.append((kind, candidate))
        return found

    def _context(self, context_words: Iterable[str]) -> set[str]:
        """The context words in the password's form (NFKC, casefolded), with variants.

        Variants: without whitespace ("Yamada Taro" gives "yamadataro"), and the local part of a
        word that is a whole email address, so callers may pass either.
        """
        words: set[str] = set()
        for raw in (*context_words, self.service_name):
            word = unicodedata.normalize("NFKC", raw).casefold().strip()
            words.add(word)
            words.add("".join(word.split()))
            if "@" in word:
                words.add(word.rpartition("@")[0])
        words.discard("")
        return words
