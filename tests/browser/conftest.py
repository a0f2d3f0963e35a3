"""A live sekisho on loopback and headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import databases, live

from sekisho.settings import Settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[str]:
    data = tmp_path_factory.mktemp("live")
    port = live.free_port()
    settings = Settings(data_dir=data, database_url=databases.sqlite_copy(sqlite_template, data),
                        secret_key="browser-test", base_url=f"http://127.0.0.1:{port}",
                        argon2_memory_kib=1024, argon2_time_cost=1)
    with live.serve_in_thread(settings, port=port) as server:
        yield server.url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not shutil.which(CHROMIUM):
        databases.unavailable("Chromium", f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(locale="ja-JP")  # type: ignore[attr-defined]
    tab = context.new_page()
    yield tab
    context.close()
