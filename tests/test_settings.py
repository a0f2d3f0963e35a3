"""Settings: env prefix, TOML file, documented defaults with reasons."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from sekisho.settings import Settings
from sekisho.settings_docs import render

DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_every_setting_has_a_reason():
    missing = [n for n, f in Settings.model_fields.items() if not (f.description or "").strip()]
    assert missing == []


def test_configuration_doc_is_current():
    assert DOCS.read_text() == render(), "run: python -m sekisho.settings_docs > docs/configuration.md"


def test_environment_and_toml(tmp_path, monkeypatch):
    config = tmp_path / "sekisho.toml"
    config.write_text('base_url = "https://id.example.jp"\npassword_min_length = 12\n')
    monkeypatch.setenv("SEKISHO_CONFIG", str(config))
    monkeypatch.setenv("SEKISHO_PASSWORD_MIN_LENGTH", "10")
    settings = Settings()
    assert settings.base_url == "https://id.example.jp" and settings.https
    assert settings.password_min_length == 10  # the environment wins over the file


def test_defaults_follow_the_contract(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("SEKISHO_CONFIG", "SEKISHO_DATABASE_URL", "SEKISHO_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.resolved_database_url == \
        f"sqlite+aiosqlite:///{(tmp_path / 'var' / 'sekisho.db').resolve()}"
    assert (settings.argon2_memory_kib, settings.argon2_time_cost,
            settings.argon2_parallelism) == (19456, 2, 1)
    key = settings.resolved_secret_key()
    assert len(key) >= 40 and key == Settings().resolved_secret_key()
    assert oct((tmp_path / "var" / "secret_key").stat().st_mode)[-3:] == "600"


def test_unknown_locale_is_refused():
    with pytest.raises(ValueError):
        Settings(default_locale="fr")


def test_lockout_numbers_must_be_positive():
    for name in ("lockout_threshold", "lockout_window_seconds", "login_failure_cap"):
        with pytest.raises(ValidationError, match=name):
            Settings(**{name: 0})
