"""Message templates: every template in both locales, escaping, fallback, strictness."""

from __future__ import annotations

from typing import Any

import pytest
from jinja2 import TemplateNotFound, UndefinedError

from sekisho.notify.render import MessageRenderer, resolve_locale
from sekisho.settings import Settings

EMAIL_CONTEXTS: dict[str, dict[str, Any]] = {
    "verify_email": {"code": "482913", "link": "https://id.example.test/v?t=abc", "minutes": 30},
    "registration_exists": {
        "login_url": "https://id.example.test/login",
        "recovery_url": "https://id.example.test/recovery",
    },
    "password_reset": {
        "code": "771204",
        "link": "https://id.example.test/r?t=xyz",
        "minutes": 30,
        "requested_at": "2026-01-05 12:00",
    },
    "password_changed": {
        "changed_at": "2026-01-05 12:00",
        "ip": "203.0.113.9",
        "recovery_url": "https://id.example.test/recovery",
    },
}


@pytest.fixture
def renderer(settings: Settings) -> MessageRenderer:
    return MessageRenderer(settings)


@pytest.mark.parametrize("locale", ["ja", "en"])
@pytest.mark.parametrize("template", sorted(EMAIL_CONTEXTS))
def test_every_email_template_renders_subject_text_and_html(
    renderer: MessageRenderer, template: str, locale: str
) -> None:
    context = EMAIL_CONTEXTS[template]
    message = renderer.render(template, locale, context)

    assert message.subject and "\n" not in message.subject
    assert message.html is not None and f'<html lang="{locale}">' in message.html
    for value in context.values():
        assert str(value) in message.text
        assert str(value) in message.html
    assert message.text.endswith("https://id.example.test\n")  # shared footer


def test_japanese_is_polite_and_english_is_english(renderer: MessageRenderer) -> None:
    ja = renderer.render("verify_email", "ja", EMAIL_CONTEXTS["verify_email"])
    en = renderer.render("verify_email", "en", EMAIL_CONTEXTS["verify_email"])

    assert ja.subject == "【sekisho】メールアドレスの確認"
    assert "確認コード: 482913" in ja.text
    assert "有効期限は 30 分です" in ja.text
    assert "最後に届いたメールのコードとリンクだけが有効です" in ja.text
    assert "sekisho をご利用のお客様" in ja.text  # no display name
    assert en.subject == "Confirm your email address for sekisho"
    assert "Confirmation code: 482913" in en.text
    assert "expire in 30 minutes" in en.text
    assert "ignore this email" in en.text
    assert "確認" not in en.text and "確認" not in (en.html or "")


def test_password_reset_says_password_unchanged(renderer: MessageRenderer) -> None:
    ja = renderer.render("password_reset", "ja", EMAIL_CONTEXTS["password_reset"])
    en = renderer.render("password_reset", "en", EMAIL_CONTEXTS["password_reset"])
    assert "パスワードは変更されていません" in ja.text
    assert "Your password has not been changed" in en.text


@pytest.mark.parametrize(
    ("asked", "used"),
    [("fr", "ja"), ("", "ja"), ("en-US", "en"), ("EN_gb", "en"), ("ja-JP", "ja")],
)
def test_locale_resolution_falls_back_to_japanese(
    renderer: MessageRenderer, asked: str, used: str
) -> None:
    assert resolve_locale(asked) == used
    html = renderer.render("verify_email", asked, EMAIL_CONTEXTS["verify_email"]).html
    assert html is not None and f'<html lang="{used}">' in html


def test_html_is_escaped_and_text_is_not(renderer: MessageRenderer) -> None:
    context = {
        **EMAIL_CONTEXTS["verify_email"],
        "link": "https://id.example.test/v?t=abc&u=1",
        "display_name": "<script>alert(1)</script>",
        "reference": "R-7K3M-Q9TA",
    }
    message = renderer.render("verify_email", "ja", context)

    assert message.html is not None
    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; 様" in message.html
    assert 'href="https://id.example.test/v?t=abc&amp;u=1"' in message.html
    assert "<script>alert(1)</script> 様" in message.text
    assert "https://id.example.test/v?t=abc&u=1\n" in message.text
    assert "受付番号 R-7K3M-Q9TA" in message.text


def test_subject_is_always_one_line(tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="k", service_name="evil\r\nBcc: x@y")
    subject = MessageRenderer(settings).render("verify_email", "en", EMAIL_CONTEXTS["verify_email"])
    assert subject.subject == "Confirm your email address for evil Bcc: x@y"


def test_missing_context_variable_fails_loudly(renderer: MessageRenderer) -> None:
    with pytest.raises(UndefinedError):
        renderer.render("verify_email", "ja", {"code": "123456", "minutes": 30})


def test_unknown_template_fails(renderer: MessageRenderer) -> None:
    with pytest.raises(TemplateNotFound):
        renderer.render("no_such_template", "ja", {})


@pytest.mark.parametrize(
    ("locale", "expected", "segment"),
    [
        # One SMS segment: 70 characters in UCS-2 (Japanese), 160 in GSM-7 (English).
        ("ja", "sekishoの確認コード: 654321（10分間有効）。誰にも教えないでください。", 70),
        ("en", "Your sekisho code is 654321. It expires in 10 min. Never share it.", 160),
    ],
)
def test_sms_is_short_text_only_with_webotp_line(
    renderer: MessageRenderer, locale: str, expected: str, segment: int
) -> None:
    message = renderer.render("sms_code", locale, {"code": "654321", "minutes": 10})

    assert message.subject is None and message.html is None
    assert message.text == f"{expected}\n\n@id.example.test #654321\n"
    assert len(message.text.strip()) <= segment


def test_sms_has_no_webotp_line_without_https(tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="k", base_url="http://127.0.0.1:8000")
    text = MessageRenderer(settings).render("sms_code", "en", {"code": "1", "minutes": 10}).text
    assert "@" not in text and "#" not in text
