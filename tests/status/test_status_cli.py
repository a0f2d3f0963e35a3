"""``sekisho status incident ...``: the same incidents from a shell, configured by environment."""

from __future__ import annotations

import json
import os
from typing import Any

from typer.testing import CliRunner

from sekisho.status.cli import status_app


def run(settings, *args: str) -> Any:
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SEKISHO_")}
    env = {**unset, "SEKISHO_DATABASE_URL": settings.database_url,
           "SEKISHO_DATA_DIR": str(settings.data_dir), "SEKISHO_SECRET_KEY": "test-secret",
           "SEKISHO_BASE_URL": "https://id.example.jp"}
    return CliRunner().invoke(status_app, ["incident", *args], env=env)


def test_incident_lifecycle_from_the_shell(settings):
    opened = run(settings, "open", "--title-ja", "SMSが遅れています", "--title-en", "SMS is slow",
                 "--ja", "調査中です。", "--en", "Looking into it.", "-c", "sms", "-c", "login",
                 "--impact", "degraded", "--json")
    assert opened.exit_code == 0, opened.output
    incident = json.loads(opened.output)
    number = incident["id"]
    assert incident["components"] == ["sms", "login"]
    assert incident["url"] == f"https://id.example.jp/status#incident-{number}"
    assert incident["updates"][0]["posted_by"] is None  # from the shell, not a staff account

    updated = run(settings, "update", str(number), "--state", "monitoring", "--ja", "監視中です。",
                  "--en", "Watching.", "--impact", "outage")
    assert updated.exit_code == 0, updated.output
    assert updated.output.startswith(f"#{number} monitoring (outage: sms,login)")

    listed = run(settings, "list")
    assert listed.exit_code == 0 and f"#{number} monitoring" in listed.output

    half = run(settings, "resolve", str(number), "--ja", "解決しました。")
    assert half.exit_code != 0 and "both --ja and --en" in half.output
    resolved = run(settings, "resolve", str(number), "--json")
    assert resolved.exit_code == 0, resolved.output
    assert json.loads(resolved.output)["state"] == "resolved"

    again = run(settings, "update", str(number), "--state", "identified", "--ja", "再発",
                "--en", "Again")
    assert again.exit_code != 0
    missing = run(settings, "resolve", "9999")
    assert missing.exit_code != 0 and "not_found" in missing.output

    everything = run(settings, "list", "--all", "--json")
    assert [i["state"] for i in json.loads(everything.output)] == ["resolved"]


def test_open_needs_a_known_component(settings):
    refused = run(settings, "open", "--title-ja", "題", "--title-en", "T", "--ja", "本文",
                  "--en", "Body", "-c", "mainframe")
    assert refused.exit_code == 2
    assert "mainframe" in refused.output
