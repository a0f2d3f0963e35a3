"""Passkeys end to end: headless Chromium with the DevTools virtual authenticator (a platform
authenticator with user verification, as a phone's fingerprint or face unlock)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import databases, live
from support.factories import seed_members

from sekisho.settings import Settings

EMAIL = "passkey@example.jp"
PASSWORD = "kaede tsuki hoshi"


@pytest.fixture(scope="module")
def passkey_url(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[str]:
    """A live sekisho whose pages are on ``localhost``: WebAuthn refuses IP addresses."""
    data = tmp_path_factory.mktemp("passkeys")
    port = live.free_port()
    settings = Settings(data_dir=data, database_url=databases.sqlite_copy(sqlite_template, data),
                        secret_key="passkey-test", base_url=f"http://localhost:{port}",
                        argon2_memory_kib=1024, argon2_time_cost=1)
    asyncio.run(seed_members(settings, [EMAIL], PASSWORD))
    with live.serve_in_thread(settings, port=port):
        yield f"http://localhost:{port}"


@pytest.fixture
def authenticated_page(browser: object) -> Iterator[object]:
    """A page whose browser has a virtual platform authenticator that verifies the user."""
    context = browser.new_context(locale="en-US")  # type: ignore[attr-defined]
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True}})
    yield page
    context.close()


def log_in_with_password(page: object, url: str) -> None:
    page.goto(f"{url}/login")  # type: ignore[attr-defined]
    page.fill("#identifier", EMAIL)  # type: ignore[attr-defined]
    page.fill("#password", PASSWORD)  # type: ignore[attr-defined]
    page.click("form[action='/login'] button[type=submit]")  # type: ignore[attr-defined]


def log_out(page: object) -> None:
    page.click("form[action='/logout'] button")  # type: ignore[attr-defined]
    page.wait_for_url("**/login?notice=logged_out")  # type: ignore[attr-defined]


def test_register_log_in_passwordless_then_remove(passkey_url, authenticated_page):
    page = authenticated_page
    log_in_with_password(page, passkey_url)
    page.wait_for_url("**/account")
    page.fill("[data-passkey-name]", "Pixel")
    page.click("[data-passkey-add]")
    codes = page.locator("[data-new-recovery-codes] li")
    codes.first.wait_for()
    assert codes.count() == 10  # the first second factor comes with recovery codes
    page.goto(f"{passkey_url}/account")
    assert "Pixel" in page.inner_text("[data-section=second-factors]")
    log_out(page)

    # Passwordless: the passkey alone, unlocked by the (virtual) fingerprint.
    page.click("[data-passkey-login]")
    page.wait_for_url("**/account")
    assert EMAIL in page.inner_text("[data-email]")
    log_out(page)

    # With a second factor enrolled, the password alone is not enough: the passkey finishes.
    log_in_with_password(page, passkey_url)
    page.locator("[data-form=second-factor]").wait_for()
    page.click("[data-passkey-login]")
    page.wait_for_url("**/account")

    # Removed from the account page, the passkey no longer logs in.
    page.click("[data-factor] button")
    page.wait_for_url("**/account?notice=second_factor_removed")
    assert "Pixel" not in page.inner_text("[data-section=second-factors]")
    log_out(page)
    page.click("[data-passkey-login]")
    error = page.locator("[data-passkey-error]")
    error.wait_for()
    assert error.get_attribute("data-code") == "passkey.invalid"
