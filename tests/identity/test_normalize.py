"""Every spelling of one identifier gives one key; distinct ones differ."""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sekisho.errors.catalogue import REASONS, SekishoError
from sekisho.identity.models import IdentifierKind
from sekisho.identity.normalize import (
    MAX_LENGTH,
    NormalisedIdentifier,
    normalise_code,
    normalise_email,
    normalise_identifier,
    normalise_password,
    normalise_phone,
)

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ASCII U+0021..U+007E to FULLWIDTH U+FF01..U+FF5E, what a Japanese IME types in zenkaku mode.
FULL_WIDTH = str.maketrans({chr(0x21 + i): chr(0xFF01 + i) for i in range(0x5E)})
SPACES = (" ", "\u3000", "\u00a0")
HYPHENS = ("-", "\u2010", "\u2212", "\uff0d", "\u30fc", "\uff70")
SURROUNDING = ("", " ", "\u3000", "\t", "\n", " \u3000\r\n")
INVISIBLE = (
    "\u200b",  # ZERO WIDTH SPACE (Cf)
    "\u0000",  # NUL (Cc)
    "\t",  # TAB inside a value (Cc)
    "\u202e",  # RIGHT-TO-LEFT OVERRIDE (Cf)
    "\ufeff",  # BOM / ZERO WIDTH NO-BREAK SPACE (Cf)
    "\u00ad",  # SOFT HYPHEN (Cf)
    "\u2028",  # LINE SEPARATOR (Zl)
    "\u2029",  # PARAGRAPH SEPARATOR (Zp)
    "\ue000",  # private use (Co)
    "\ud800",  # lone surrogate (Cs)
    "\u0378",  # unassigned (Cn)
)


def reason_of(call: Callable[..., object], *args: object, **kwargs: object) -> SekishoError:
    """The ``request.invalid`` error ``call`` raises; its reason must be a catalogued one."""
    with pytest.raises(SekishoError) as caught:
        call(*args, **kwargs)
    assert caught.value.code == "request.invalid"
    assert caught.value.params["reason"] in REASONS
    return caught.value


# --- strategies ---------------------------------------------------------------------------

member_ids = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("123456789"),
    st.text(alphabet=string.digits, min_size=9, max_size=9),
)
cards = st.text(alphabet=string.digits, min_size=16, max_size=16)
# Japanese mobile numbers 070/080/090 with a non-zero fourth digit: all valid per phonenumbers.
mobiles = st.builds(
    lambda prefix, first, rest: prefix + first + rest,
    st.sampled_from(("070", "080", "090")),
    st.sampled_from("123456789"),
    st.text(alphabet=string.digits, min_size=7, max_size=7),
)
_ALNUM = string.ascii_lowercase + string.digits
# Labels with single inner hyphens only, so no label is an ACE ("xn--") label.
_label = st.lists(st.text(_ALNUM, min_size=1, max_size=5), min_size=1, max_size=3).map("-".join)
emails = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
    st.text(_ALNUM + "._+-", min_size=1, max_size=16),
    st.lists(_label, min_size=1, max_size=3),
    st.text(string.ascii_lowercase, min_size=2, max_size=6),
)


@st.composite
def spelled(draw: st.DrawFn, canonical: str, *, separators: bool) -> str:
    """Another spelling of ``canonical``: full-width characters, separators, padding."""
    positions = st.integers(0, len(canonical) - 1)
    wide = draw(st.sets(positions, max_size=len(canonical)))
    chars = [ch.translate(FULL_WIDTH) if i in wide else ch for i, ch in enumerate(canonical)]
    if separators:
        gaps = st.integers(1, max(1, len(canonical) - 1))
        inserts = st.tuples(gaps, st.sampled_from(SPACES + HYPHENS))
        for at, sep in sorted(draw(st.lists(inserts, max_size=6)), reverse=True):
            chars.insert(at, sep)
    return draw(st.sampled_from(SURROUNDING)) + "".join(chars) + draw(st.sampled_from(SURROUNDING))


@st.composite
def email_spelled(draw: st.DrawFn, canonical: str) -> str:
    upper = draw(st.sets(st.integers(0, len(canonical) - 1), max_size=len(canonical)))
    cased = "".join(ch.upper() if i in upper else ch for i, ch in enumerate(canonical))
    return draw(spelled(cased, separators=False))


# --- properties ---------------------------------------------------------------------------


@PROPERTY
@given(st.data(), member_ids)
def test_member_id_spellings_agree(data: st.DataObject, canonical: str) -> None:
    typed = data.draw(spelled(canonical, separators=True))
    assert normalise_identifier(typed) == NormalisedIdentifier(
        IdentifierKind.MEMBER_ID, canonical, canonical
    )


@PROPERTY
@given(st.data(), cards)
def test_card_spellings_agree(data: st.DataObject, canonical: str) -> None:
    typed = data.draw(spelled(canonical, separators=True))
    assert normalise_identifier(typed) == NormalisedIdentifier(
        IdentifierKind.CARD, canonical, canonical
    )


@PROPERTY
@given(st.data(), mobiles)
def test_phone_spellings_agree(data: st.DataObject, domestic: str) -> None:
    e164 = "+81" + domestic[1:]
    typed = data.draw(spelled(data.draw(st.sampled_from((domestic, e164))), separators=True))
    expected = NormalisedIdentifier(IdentifierKind.PHONE, e164, e164)
    assert normalise_identifier(typed) == expected
    assert normalise_phone(typed) == expected


@PROPERTY
@given(st.data(), emails)
def test_email_spellings_agree(data: st.DataObject, canonical: str) -> None:
    typed = data.draw(email_spelled(canonical))
    result = normalise_identifier(typed)
    assert (result.kind, result.value) == (IdentifierKind.EMAIL, canonical)
    assert normalise_email(typed).value == canonical
    # The display keeps the local part's case as typed.
    typed_local = unicodedata.normalize("NFKC", typed).strip().partition("@")[0]
    assert result.display == f"{typed_local}@{canonical.partition('@')[2]}"


@PROPERTY
@given(st.data(), emails)
def test_case_sensitive_local_part_keeps_case(data: st.DataObject, canonical: str) -> None:
    typed = data.draw(email_spelled(canonical))
    local = unicodedata.normalize("NFKC", typed).strip().partition("@")[0]
    result = normalise_identifier(typed, email_local_case_sensitive=True)
    assert result.value == f"{local}@{canonical.partition('@')[2]}"


@st.composite
def canonical_identifiers(draw: st.DrawFn) -> str:
    return draw(st.one_of(member_ids, cards, mobiles, emails))


@PROPERTY
@given(canonical_identifiers(), canonical_identifiers())
def test_distinct_identifiers_never_collide(a: str, b: str) -> None:
    # Mobiles are drawn domestic, so two draws are the same number iff the strings are equal.
    assume(a != b)
    first, second = normalise_identifier(a), normalise_identifier(b)
    assert (first.kind, first.value) != (second.kind, second.value)
    assert first.value != second.value


@PROPERTY
@given(
    st.one_of(member_ids, cards, mobiles, emails),
    st.characters(categories=["Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"]),
    st.data(),
)
def test_invisible_characters_inside_are_refused(
    canonical: str, bad: str, data: st.DataObject
) -> None:
    at = data.draw(st.integers(1, len(canonical) - 1))
    for call in (normalise_identifier, normalise_email, normalise_phone):
        error = reason_of(call, canonical[:at] + bad + canonical[at:], field="login_id")
        assert error.field == "login_id"
        assert error.params == {"reason": "invisible_character"}


# --- examples -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "090-1234-5678",
        "０９０１２３４５６７８",
        "０９０ー１２３４ー５６７８",
        "090−1234−5678",
        "+81 90 1234 5678",
        "＋８１　９０　１２３４　５６７８",
        "+81-90-1234-5678",
        "+81 (0)90 1234 5678",
        "  09012345678\n",
    ],
)
def test_phone_examples(typed: str) -> None:
    assert normalise_identifier(typed) == NormalisedIdentifier(
        IdentifierKind.PHONE, "+819012345678", "+819012345678"
    )


def test_landline_and_foreign_numbers() -> None:
    assert normalise_identifier("03-1234-5678").value == "+81312345678"
    assert normalise_identifier("+1 650-253-0000").value == "+16502530000"
    assert normalise_identifier("020 7946 0018", phone_region="GB").value == "+442079460018"
    error = reason_of(normalise_identifier, "03-1234-5678", phone_region="GB")
    assert error.params == {"reason": "unknown_identifier_format"}


@pytest.mark.parametrize(
    ("typed", "kind", "value"),
    [
        ("1234567890", IdentifierKind.MEMBER_ID, "1234567890"),
        ("１２３４－５６７８９０", IdentifierKind.MEMBER_ID, "1234567890"),
        ("4111 1111 1111 1111", IdentifierKind.CARD, "4111111111111111"),
        ("０１２３ー４５６７ー８９０１ー２３４５", IdentifierKind.CARD, "0123456789012345"),
        ("0312345678", IdentifierKind.PHONE, "+81312345678"),
    ],
)
def test_digit_identifier_examples(typed: str, kind: IdentifierKind, value: str) -> None:
    result = normalise_identifier(typed)
    assert (result.kind, result.value, result.display) == (kind, value, value)


@pytest.mark.parametrize(
    ("typed", "value", "display"),
    [
        ("Taro.Yamada@Example.JP", "taro.yamada@example.jp", "Taro.Yamada@example.jp"),
        ("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ", "taro@example.jp", "taro@example.jp"),
        ("taro-yamada@example.co.jp", "taro-yamada@example.co.jp", "taro-yamada@example.co.jp"),
        ("taro@example。jp", "taro@example.jp", "taro@example.jp"),
        ("taro@例え.jp", "taro@xn--r8jz45g.jp", "taro@例え.jp"),
        ("taro@XN--R8JZ45G.JP", "taro@xn--r8jz45g.jp", "taro@例え.jp"),
        ("Taro@Bücher.DE", "taro@xn--bcher-kva.de", "Taro@bücher.de"),
        ("Straße@example.de", "strasse@example.de", "Straße@example.de"),
        ("やまだ@example.jp", "やまだ@example.jp", "やまだ@example.jp"),
    ],
)
def test_email_examples(typed: str, value: str, display: str) -> None:
    result = normalise_identifier(typed)
    assert (result.kind, result.value, result.display) == (IdentifierKind.EMAIL, value, display)


def test_email_local_case_sensitive_setting() -> None:
    result = normalise_email("Taro@Example.JP", email_local_case_sensitive=True)
    assert result.value == "Taro@example.jp"


@pytest.mark.parametrize(
    "typed",
    [
        "taro@",
        "@example.jp",
        "taro@example",
        "taro@@example.jp",
        "taro@a@example.jp",
        "taro yamada@example.jp",
        "taro@exa mple.jp",
        "taro@example..jp",
        "taro@.example.jp",
        "taro@example.jp.",
        "taro@exa_mple.jp",
        "taro@-example.jp",
        "taro@127.0.0.1",
        "taro@[127.0.0.1]",
        "taro@xn--zz.jp",
        "taro@" + "a" * 64 + ".jp",
    ],
)
def test_not_an_email(typed: str) -> None:
    for call in (normalise_identifier, normalise_email):
        error = reason_of(call, typed, field="email")
        assert (error.field, error.params) == ("email", {"reason": "not_an_email"})


def test_email_field_refuses_non_email() -> None:
    error = reason_of(normalise_email, "1234567890")
    assert (error.field, error.params) == ("email", {"reason": "not_an_email"})


@pytest.mark.parametrize(
    "typed",
    [
        "0000000000",  # 10 digits starting with 0 that are no valid number
        "00012345678",  # 11 digits: 00 is no trunk prefix
        "123456789",  # 9 digits
        "12345678901",  # 11 digits not starting with 0
        "123456789012345",  # 15 digits
        "09001234567",  # 090 followed by 0: not allocated
        "+1 800 FLOWERS",  # vanity letters
        "+81 90 1234 5678 ext 1",
        "+81+9012345678",
        "+",
        "---",
        "taro",
        "٠٩٠١٢٣٤٥٦٧٨",  # Arabic-Indic digits: NFKC keeps them, not ASCII
        "090.1234.5678",
    ],
)
def test_unknown_identifier_format(typed: str) -> None:
    error = reason_of(normalise_identifier, typed)
    assert (error.field, error.params) == ("identifier", {"reason": "unknown_identifier_format"})


@pytest.mark.parametrize("typed", ["1234567890", "4111111111111111", "taro@example.jp", "0123"])
def test_phone_field_refuses_other_kinds(typed: str) -> None:
    error = reason_of(normalise_phone, typed, field="phone")
    assert (error.field, error.params) == ("phone", {"reason": "not_a_phone_number"})


@pytest.mark.parametrize("bad", INVISIBLE)
@pytest.mark.parametrize("call", [normalise_identifier, normalise_email, normalise_phone])
def test_invisible_character_examples(bad: str, call: Callable[..., object]) -> None:
    error = reason_of(call, "0901234" + bad + "5678@example.jp", field="login_id")
    assert (error.field, error.params) == ("login_id", {"reason": "invisible_character"})


def test_invisible_character_at_the_edge_is_refused_unless_whitespace() -> None:
    # Trimming comes first: a pasted trailing newline is fine, a leading BOM is not.
    assert normalise_identifier("1234567890\r\n").value == "1234567890"
    error = reason_of(normalise_identifier, "\ufeff1234567890")
    assert error.params == {"reason": "invisible_character"}


@pytest.mark.parametrize("typed", ["", "   ", "\u3000\t\n"])
@pytest.mark.parametrize(
    "call", [normalise_identifier, normalise_email, normalise_phone, normalise_code]
)
def test_missing(typed: str, call: Callable[..., object]) -> None:
    error = reason_of(call, typed, field="x")
    assert (error.field, error.params) == ("x", {"reason": "missing"})


def test_too_long() -> None:
    local = "a" * (MAX_LENGTH - len("@example.jp"))
    assert normalise_identifier(f"  {local}@example.jp  ").value == f"{local}@example.jp"
    error = reason_of(normalise_identifier, f"{local}x@example.jp")
    assert error.params == {"reason": "too_long"}


def test_too_long_after_nfkc_expansion() -> None:
    # U+337F SQUARE CORPORATION becomes four characters under NFKC.
    error = reason_of(normalise_identifier, "\u337f" * 100)
    assert error.params == {"reason": "too_long"}


def test_too_long_after_punycode() -> None:
    local = "a" * (MAX_LENGTH - 20)
    error = reason_of(normalise_email, f"{local}@例え例え例え.jp")
    assert error.params == {"reason": "too_long"}


# --- passwords and codes ------------------------------------------------------------------


def test_password_is_nfkc_only() -> None:
    assert normalise_password("ｐａｓｓ　１２３") == "pass 123"
    # No trimming, no case folding: both are part of what the member chose.
    assert normalise_password("  Pass ") == "  Pass "
    assert normalise_password("ﾊﾟｽﾜｰﾄﾞ") == "パスワード"


@pytest.mark.parametrize("typed", ["123456", "１２３４５６", "123 456", "123-456", " １２３ー４５６\n"])
def test_code_examples(typed: str) -> None:
    assert normalise_code(typed) == "123456"
    assert normalise_code(typed, length=6) == "123456"


@pytest.mark.parametrize("typed", ["12345a", "12.3456", "١٢٣٤٥٦"])
def test_code_not_digits(typed: str) -> None:
    error = reason_of(normalise_code, typed)
    assert (error.field, error.params) == ("code", {"reason": "not_digits"})


def test_code_wrong_length() -> None:
    short = reason_of(normalise_code, "12345", length=6, field="otp")
    assert (short.field, short.params) == ("otp", {"reason": "wrong_length", "length": 6})
    long = reason_of(normalise_code, "1234567", length=6)
    assert long.params == {"reason": "wrong_length", "length": 6}


def test_code_invisible_character() -> None:
    error = reason_of(normalise_code, "123\u200b456")
    assert error.params == {"reason": "invisible_character"}


@PROPERTY
@given(st.data(), st.text(alphabet=string.digits, min_size=4, max_size=8))
def test_code_spellings_agree(data: st.DataObject, canonical: str) -> None:
    assert normalise_code(data.draw(spelled(canonical, separators=True))) == canonical
