"""With JavaScript, the login page warns about Caps Lock and full-width input while typing."""

from __future__ import annotations

from sekisho.web.i18n import translations

CAPS_MESSAGE = "Caps Lock is on."
WIDTH_MESSAGE = "You are typing in full-width (zenkaku) mode."

CAPS_ON = """el => el.dispatchEvent(new KeyboardEvent("keydown",
    {key: "A", bubbles: true, modifierCapsLock: true}))"""
CAPS_OFF = """el => el.dispatchEvent(new KeyboardEvent("keyup",
    {key: "a", bubbles: true, modifierCapsLock: false}))"""


def test_caps_lock_warning_follows_the_key_state(live_url, page):
    page.goto(f"{live_url}/login")
    warning = page.locator("[data-caps-warning]")
    assert warning.is_hidden()
    password = page.locator("#password")
    password.evaluate(CAPS_ON)
    assert warning.is_visible()
    assert warning.inner_text() == translations("ja").gettext(CAPS_MESSAGE)
    password.evaluate(CAPS_OFF)
    assert warning.is_hidden()


def test_full_width_warning_while_typing(live_url, page):
    page.goto(f"{live_url}/login?lang=en")
    warning = page.locator("[data-width-warning]")
    identifier = page.locator("#identifier")
    identifier.press_sequentially("abc")
    assert warning.is_hidden()
    identifier.fill("")
    identifier.press_sequentially("ａｂｃ")
    assert warning.is_visible()
    assert warning.inner_text() == translations("en").gettext(WIDTH_MESSAGE)


def test_page_works_without_javascript(live_url, browser):
    context = browser.new_context(java_script_enabled=False, locale="ja-JP")
    tab = context.new_page()
    tab.goto(f"{live_url}/login")
    tab.fill("#identifier", "nobody@example.jp")
    tab.fill("#password", "wrong password")
    tab.click("button[type=submit]")
    assert tab.locator("[data-code='login.invalid_credentials']").is_visible()
    assert "お問い合わせ番号" in tab.content()
    context.close()
