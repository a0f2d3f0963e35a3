"""Recovery codes: entropy, forgiving entry, and keyed hashing."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from sekisho.methods import recovery_codes
from sekisho.methods.recovery_codes import (
    ALPHABET,
    LENGTH,
    RecoveryCodeHasher,
    generate,
    normalise,
)

CANONICAL = "0123456789ABC"


def test_alphabet_is_crockford_base32():
    assert len(ALPHABET) == len(set(ALPHABET)) == 32
    assert not set("ILOU") & set(ALPHABET)


def test_ten_distinct_codes_of_at_least_64_bits():
    codes = generate()
    assert len(codes) == len(set(codes)) == 10
    assert LENGTH == 13 and LENGTH * 5 >= 64  # NIST SP 800-63B §5.1.2.1 / ASVS 6.5.2
    for code in codes:
        canonical = normalise(code)
        assert canonical is not None and len(canonical) == LENGTH
        assert set(canonical) <= set(ALPHABET)


def test_codes_are_shown_in_groups_of_4_4_5():
    for code in generate(3):
        assert [len(part) for part in code.split("-")] == [4, 4, 5]
        assert normalise(code) == code.replace("-", "")


def test_a_repeated_code_is_drawn_again(monkeypatch: pytest.MonkeyPatch):
    symbols = iter("A" * 13 + "A" * 13 + "B" * 13)

    def choice(alphabet: Sequence[str]) -> str:
        return next(symbols)

    monkeypatch.setattr(recovery_codes.secrets, "choice", choice)
    assert generate(2) == ["AAAA-AAAA-AAAAA", "BBBB-BBBB-BBBBB"]


def test_count_is_respected():
    assert len(generate(16)) == 16
    assert generate(0) == []


@pytest.mark.parametrize("typed", [
    "0123456789ABC",
    "0123456789abc",
    "0123-4567-89ABC",
    "0123 4567 89abc",
    " 0123\t4567\n89ABC ",
    "０１２３－４５６７－８９ＡＢＣ",  # full-width digits, letters and hyphen
    "０１２３　４５６７　８９ａｂｃ",  # full-width with ideographic spaces
    "0123ー4567ー89ABC",  # katakana prolonged sound mark for a hyphen
    "0123–4567—89ABC",  # en and em dashes
    "O123-4567-89ABC",  # O read as 0
    "oI23-4567-89ABC",  # o as 0, I as 1
    "0l23-4567-89ABC",  # l as 1
    "0L23-4567-89ABC",  # L as 1
])
def test_normalise_forgives_how_people_type(typed: str):
    assert normalise(typed) == CANONICAL


@pytest.mark.parametrize("typed", [
    "",
    "0123-4567-89AB",  # 12 symbols
    "0123-4567-89ABCD",  # 14 symbols
    "0123-4567-89ABU",  # U is not in Crockford base32
    "0123-4567-89AB!",
    "0123-4567-89ABÉ",
    "0123-4567-89AßC",  # upper-cases to SS: must not be counted as ASCII letters
])
def test_normalise_refuses_what_cannot_be_a_code(typed: str):
    assert normalise(typed) is None


def test_hash_is_deterministic_per_key_and_differs_across_keys():
    one, other = RecoveryCodeHasher(b"key one"), RecoveryCodeHasher(b"key two")
    assert one.hash(CANONICAL) == RecoveryCodeHasher(b"key one").hash(CANONICAL)
    assert one.hash(CANONICAL) != other.hash(CANONICAL)
    assert one.hash(CANONICAL) != one.hash("0123456789ABD")
    assert len(one.hash(CANONICAL)) == 64 and int(one.hash(CANONICAL), 16) >= 0


def test_a_typed_code_hashes_like_the_generated_one():
    hasher = RecoveryCodeHasher(b"key")
    code = generate(1)[0]
    typed = code.lower().replace("-", " ")
    canonical = normalise(typed)
    assert canonical is not None
    assert hasher.hash(canonical) == hasher.hash(code.replace("-", ""))


@pytest.mark.parametrize("value", ["0123-4567-89ABC", "0123456789abc", "short"])
def test_only_canonical_codes_are_hashed(value: str):
    with pytest.raises(ValueError):
        RecoveryCodeHasher(b"key").hash(value)
