"""Password policy: length window, context words, blocklist, in that order (ASVS 6.2)."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sekisho.errors.catalogue import SekishoError
from sekisho.identity.normalize import normalise_password
from sekisho.methods.password.policy import PasswordPolicy

POLICY = PasswordPolicy()
MEMBER = ("taro.yamada", "1234567890", "山田 太郎")


def refusal(password: str, policy: PasswordPolicy = POLICY, **kwargs: object) -> SekishoError:
    with pytest.raises(SekishoError) as caught:
        policy.check(password, **kwargs)  # type: ignore[arg-type]
    return caught.value


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "kumo no ue no shiro",
        "雨ニモマケズ風ニモマケズ",
        "zx81-ヒミツの-合言葉",
        "74920183651",  # random digits only (ASVS 6.2.5: no composition rules)
        "  leading and trailing spaces  ",
        "taro.yamada-kumo",  # a context word plus 5 characters of one's own
    ],
)
def test_accepts(password: str) -> None:
    POLICY.check(password, context_words=MEMBER)


def test_too_short_counts_code_points() -> None:
    error = refusal("パスワードかな")  # 7 code points, 21 UTF-8 bytes
    assert (error.code, error.field) == ("password.too_short", "password")
    assert error.params == {"min_length": 8}
    POLICY.check("パスワードかなり長め")


def test_min_length_boundary() -> None:
    policy = PasswordPolicy(min_length=15)
    assert refusal("q7#mVx2!pLw9zR", policy).params == {"min_length": 15}
    policy.check("q7#mVx2!pLw9zRt")


def test_too_long() -> None:
    policy = PasswordPolicy(max_length=64)
    policy.check("あ" * 64)
    error = refusal("あ" * 65, policy)
    assert (error.code, error.params) == ("password.too_long", {"max_length": 64})


def test_default_accepts_long_passwords() -> None:
    # ASVS 6.2.9: at least 64 characters accepted; the default bound is far above.
    POLICY.check("q7#mVx2!" * 32)
    assert refusal("q7#mVx2!" * 32 + "x").code == "password.too_long"


@pytest.mark.parametrize(
    "password",
    [
        "sekisho2026",
        "Sekisho!!",
        "sekishosekisho",  # ASVS 6.2.11: <service><service>
        "SEKISHO-777",
        "2026sekisho",
        "taro.yamada!!",
        "Taro.Yamada",
        "1234567890ab",
        "山田太郎2026",  # display name with its space removed
        "山田 太郎ですよ",
    ],
)
def test_too_personal(password: str) -> None:
    error = refusal(password, context_words=MEMBER)
    assert (error.code, error.field) == ("password.too_personal", "password")


def test_service_name_from_settings() -> None:
    policy = PasswordPolicy(service_name="Kumo Pay")
    assert refusal("kumopay2026", policy).code == "password.too_personal"
    policy.check("sekisho2026x")


def test_full_email_as_context_word_uses_local_part() -> None:
    error = refusal("hanako.s!!", context_words=["Hanako.S@example.jp"])
    assert error.code == "password.too_personal"


def test_short_context_words_only_match_whole_password() -> None:
    # "abc" appears by chance in good passphrases; only the exact password is refused.
    POLICY.check("abc-kumo-shiro", context_words=["abc"])
    policy = PasswordPolicy(min_length=3)
    assert refusal("ABC", policy, context_words=["abc"]).code == "password.too_personal"


@pytest.mark.parametrize(
    "password",
    [
        "password",
        "Password1",
        "12345678",
        "qwertyuiop",
        "iloveyou",
        "doraemon",
        "PASSWORD1234",  # ASVS 6.2.4's own examples
        "123456789012",
        "qwertyuiopasdf",
        "pasuwaado",
        "arigatou",
    ],
)
def test_too_common(password: str) -> None:
    error = refusal(password)
    assert (error.code, error.field) == ("password.too_common", "password")
    assert POLICY.is_common(password)


def test_japanese_blocklist_entry_after_nfkc() -> None:
    # Half-width katakana typed by an IME becomes the listed full-width form under NFKC.
    policy = PasswordPolicy(min_length=5)
    password = normalise_password("ﾊﾟｽﾜｰﾄﾞ")
    assert refusal(password, policy).code == "password.too_common"


def test_is_common_is_whole_password_only() -> None:
    assert not POLICY.is_common("password-kumo-shiro")
    assert not POLICY.is_common("kumo no ue no shiro")


def test_check_order() -> None:
    # Short beats personal and common; personal beats common.
    assert refusal("sekisho", context_words=["password"]).code == "password.too_short"
    assert refusal("password", context_words=["password"]).code == "password.too_personal"
    assert refusal("a" * 300 + "sekisho").code == "password.too_long"


def test_field_is_settable() -> None:
    assert refusal("short", field="new_password").field == "new_password"


@pytest.mark.parametrize(("low", "high"), [(0, 8), (9, 8)])
def test_rejects_inconsistent_bounds(low: int, high: int) -> None:
    with pytest.raises(ValueError):
        PasswordPolicy(min_length=low, max_length=high)


# Padding drawn from characters no context word here contains, so it cannot overlap the word.
PADDING = st.text(string.digits + "!#$%&*", max_size=3)


@settings(max_examples=200, deadline=None)
@given(st.text(string.ascii_lowercase + ".-_", min_size=4, max_size=20), PADDING, PADDING)
def test_context_word_with_little_padding_is_refused(word: str, before: str, after: str) -> None:
    password = before + word.upper() + after
    policy = PasswordPolicy(min_length=1)
    built_from_word = len(before + after) <= 4
    assert policy.is_personal(password, context_words=[word]) == built_from_word
    if built_from_word:
        assert refusal(password, policy, context_words=[word]).code == "password.too_personal"
