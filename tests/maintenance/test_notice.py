"""The login page announces a window from maintenance_notice_hours (24) before it starts."""

from __future__ import annotations

import re
from datetime import timedelta

from maintenance.maintenance_support import once, tokyo, weekly

from sekisho.status.components import Component

MONDAY_MORNING = weekly(0, 0, 0, timedelta(hours=7), note_ja="定期メンテナンスです。",
                        note_en="Weekly upkeep.")  # Monday 00:00 to 07:00, Tokyo
NOTICE = re.compile(r'<p class="notice" role="status" data-maintenance-notice="([^"]*)">'
                    r'([^<]*)(?:<br><span class="hint">([^<]*)</span>)?</p>')


async def notices(client, path="/login"):
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return NOTICE.findall(page.text)


async def test_banner_from_24_hours_before(client, schedule, clock):
    await schedule.add(MONDAY_MORNING)
    clock.set(tokyo(2026, 1, 10, 23, 59))  # 24 h 1 min before
    assert await notices(client) == []
    clock.set(tokyo(2026, 1, 11, 0, 0))  # exactly 24 h before
    [(scope, text, note)] = await notices(client)
    assert scope == "all"
    assert "2026-01-12 00:00" in text and "2026-01-12 07:00" in text
    assert note == "定期メンテナンスです。"
    clock.set(tokyo(2026, 1, 11, 23, 59))
    [(_, english, note)] = await notices(client, "/login?lang=en")
    assert english.startswith("Maintenance is planned from 2026-01-12 00:00 to 2026-01-12 07:00.")
    assert "The whole service will be unavailable" in english and note == "Weekly upkeep."


async def test_banner_names_the_components_of_a_partial_window(client, schedule, clock):
    await schedule.add(once(tokyo(2026, 1, 6, 2, 0), tokyo(2026, 1, 6, 4, 0), Component.SMS,
                            Component.LOGIN))
    clock.set(tokyo(2026, 1, 5, 12, 0))
    [(scope, text, note)] = await notices(client, "/login?lang=en")
    assert scope == "login,sms" and note == ""
    assert "these will be unavailable: Login, SMS delivery." in text
    clock.set(tokyo(2026, 1, 6, 4, 0))  # over
    assert await notices(client) == []


async def test_notices_in_both_languages(schedule, clock):
    await schedule.add(MONDAY_MORNING)
    now = tokyo(2026, 1, 11, 12, 0)
    [ja] = await schedule.upcoming_notices(now, "ja")
    [en] = await schedule.upcoming_notices(now, "en")
    assert ja.starts_at == en.starts_at == tokyo(2026, 1, 12, 0, 0)
    assert (ja.note, en.note) == ("定期メンテナンスです。", "Weekly upkeep.")
    assert ja.components == en.components == ()
    assert await schedule.upcoming_notices(tokyo(2026, 1, 12, 0, 0), "ja") == []  # running now
