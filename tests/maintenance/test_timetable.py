"""Recurrence arithmetic without I/O: midnight, New Year, DST, leap days, back-to-back windows."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from maintenance.maintenance_support import TOKYO, tokyo

from sekisho.errors import SekishoError
from sekisho.maintenance.models import Recurrence
from sekisho.maintenance.spec import (
    WindowSpec,
    format_duration,
    from_cli,
    parse_duration,
)
from sekisho.maintenance.timetable import Rule, Timetable
from sekisho.status.components import Component

BERLIN = ZoneInfo("Europe/Berlin")
_ids = iter(range(1, 10_000))


def rule(spec: WindowSpec, zone: ZoneInfo = TOKYO) -> Rule:
    spec = spec.checked(zone)
    return Rule(id=next(_ids), recurrence=spec.recurrence, components=frozenset(spec.components),
                starts_at=spec.starts_at, ends_at=spec.ends_at, weekday=spec.weekday,
                month=spec.month, day=spec.day, start_time=spec.start_time,
                duration=spec.duration, note_ja=spec.note_ja, note_en=spec.note_en)


def weekly(weekday: int, at: time, hours: float, *components: Component) -> WindowSpec:
    return WindowSpec(Recurrence.WEEKLY, weekday=weekday, start_time=at,
                      duration=timedelta(hours=hours), components=components)


def test_weekly_window_across_midnight():
    sunday_night = Timetable([rule(weekly(6, time(23, 0), 8))], TOKYO)
    # 2026-01-11 is a Sunday.
    assert sunday_night.active(tokyo(2026, 1, 11, 22, 59)) is None
    window = sunday_night.active(tokyo(2026, 1, 11, 23, 0))
    assert window is not None
    assert window.starts_at == tokyo(2026, 1, 11, 23, 0)
    assert window.ends_at == tokyo(2026, 1, 12, 7, 0)
    assert window.ends_at.tzinfo == UTC
    assert sunday_night.active(tokyo(2026, 1, 12, 6, 59)) is not None
    assert sunday_night.active(tokyo(2026, 1, 12, 7, 0)) is None
    # And again a week later.
    assert sunday_night.active(tokyo(2026, 1, 19, 3, 0)).ends_at == tokyo(2026, 1, 19, 7, 0)


def test_every_monday_midnight_to_seven():
    monday = Timetable([rule(weekly(0, time(0, 0), 7))], TOKYO)
    assert monday.active(tokyo(2026, 1, 4, 23, 59)) is None
    assert monday.active(tokyo(2026, 1, 5, 0, 0)).ends_at == tokyo(2026, 1, 5, 7, 0)


def test_yearly_window_across_new_year():
    new_year = Timetable([rule(WindowSpec(Recurrence.YEARLY, month=12, day=31,
                                          start_time=time(22, 0),
                                          duration=timedelta(days=3)))], TOKYO)
    assert new_year.active(tokyo(2026, 12, 31, 21, 59)) is None
    assert new_year.active(tokyo(2026, 12, 31, 22, 0)).ends_at == tokyo(2027, 1, 3, 22, 0)
    # Asked in the new year, the window that began last year is found.
    during = new_year.active(tokyo(2027, 1, 2, 12, 0))
    assert during.starts_at == tokyo(2026, 12, 31, 22, 0)
    assert new_year.active(tokyo(2027, 1, 3, 21, 59)) is not None
    assert new_year.active(tokyo(2027, 1, 3, 22, 0)) is None
    upcoming = new_year.upcoming(tokyo(2027, 12, 31, 0, 0), timedelta(hours=24))
    assert [o.starts_at for o in upcoming] == [tokyo(2027, 12, 31, 22, 0)]


def test_dec_31_18_00_for_four_days():
    spec = from_cli(once=None, weekly=None, yearly=("12-31", "18:00"), duration="4d",
                    components=(), note_ja=None, note_en=None)
    window = Timetable([rule(spec)], TOKYO).active(tokyo(2027, 1, 3, 9, 0))
    assert window.ends_at == tokyo(2027, 1, 4, 18, 0)


def test_wall_clock_end_on_the_nights_the_clocks_change():
    monday = Timetable([rule(weekly(6, time(0, 0), 7), BERLIN)], BERLIN)
    # 2026-03-29: 02:00 CET jumps to 03:00 CEST. 00:00 CET is 23:00 UTC; 07:00 CEST is 05:00 UTC.
    spring = monday.active(datetime(2026, 3, 29, 1, 0, tzinfo=UTC))
    assert spring.starts_at == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert spring.ends_at == datetime(2026, 3, 29, 5, 0, tzinfo=UTC)  # 6 hours that night
    # 2026-10-25: 03:00 CEST falls back to 02:00 CET; 07:00 CET is 06:00 UTC.
    autumn = monday.active(datetime(2026, 10, 25, 1, 0, tzinfo=UTC))
    assert autumn.starts_at == datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
    assert autumn.ends_at == datetime(2026, 10, 25, 6, 0, tzinfo=UTC)  # 8 hours that night
    assert autumn.ends_at.astimezone(BERLIN).hour == spring.ends_at.astimezone(BERLIN).hour == 7


def test_start_inside_the_skipped_hour_begins_when_the_clocks_jump():
    gap = Timetable([rule(weekly(6, time(2, 30), 1), BERLIN)], BERLIN)
    # 02:30 does not exist on 2026-03-29 (02:00 CET -> 03:00 CEST, at 01:00 UTC): the span
    # 02:30-03:30 on the wall clock is what is left of it, 03:00-03:30 CEST.
    window = gap.active(datetime(2026, 3, 29, 1, 15, tzinfo=UTC))
    assert window.starts_at == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert window.ends_at == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    # The repeated hour in autumn: 02:30 is its first pass (CEST, 00:30 UTC).
    autumn = gap.active(datetime(2026, 10, 25, 0, 45, tzinfo=UTC))
    assert autumn.starts_at == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert autumn.ends_at == datetime(2026, 10, 25, 2, 30, tzinfo=UTC)  # 03:30 CET


def test_leap_day_window_only_in_leap_years():
    leap = rule(WindowSpec(Recurrence.YEARLY, month=2, day=29, start_time=time(1, 0),
                           duration=timedelta(hours=2)))
    table = Timetable([leap], TOKYO)
    assert table.active(tokyo(2027, 3, 1, 1, 30)) is None
    assert table.active(tokyo(2028, 2, 29, 1, 30)) is not None
    assert leap.next_occurrence(TOKYO, tokyo(2026, 1, 1)).starts_at == tokyo(2028, 2, 29, 1, 0)


def test_back_to_back_windows_end_together():
    nightly = rule(weekly(6, time(23, 0), 8))
    extension = rule(WindowSpec(Recurrence.ONCE, starts_at=tokyo(2026, 1, 12, 7, 0),
                                ends_at=tokyo(2026, 1, 12, 9, 30)))
    window = Timetable([nightly, extension], TOKYO).active(tokyo(2026, 1, 12, 1, 0))
    assert window.ends_at == tokyo(2026, 1, 12, 9, 30)


def test_partial_windows_cover_only_their_components():
    sms = Timetable([rule(weekly(6, time(23, 0), 8, Component.SMS))], TOKYO)
    at = tokyo(2026, 1, 11, 23, 30)
    assert sms.active(at) is None  # not a whole-service window
    assert sms.active(at, Component.LOGIN) is None
    window = sms.active(at, Component.LOGIN, Component.SMS)
    assert window is not None and window.components == {Component.SMS}
    assert sms.down(at) == {Component.SMS}


def test_whole_service_window_covers_every_component():
    whole = Timetable([rule(weekly(6, time(23, 0), 8))], TOKYO)
    at = tokyo(2026, 1, 11, 23, 30)
    assert whole.active(at, Component.REGISTRATION).whole_service
    assert whole.down(at) == set(Component)


@pytest.mark.parametrize(("text", "expected"), [
    ("7h", timedelta(hours=7)), ("4d", timedelta(days=4)), ("90m", timedelta(minutes=90)),
    ("1d12h", timedelta(days=1, hours=12)), ("1h30m", timedelta(hours=1, minutes=30)),
    ("45min", timedelta(minutes=45)),
])
def test_durations_as_operators_type_them(text, expected):
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize("text", ["", "7", "h", "7x", "-1h", "1.5h"])
def test_bad_durations_are_request_invalid(text):
    with pytest.raises(SekishoError) as caught:
        parse_duration(text)
    assert caught.value.code == "request.invalid" and caught.value.field == "duration"


@pytest.mark.parametrize(("spec", "field", "reason"), [
    (weekly(0, time(0, 0), 24 * 7), "duration", "out_of_range"),
    (weekly(0, time(0, 0), 0), "duration", "out_of_range"),
    (WindowSpec(Recurrence.WEEKLY, start_time=time(0, 0), duration=timedelta(hours=1)),
     "weekday", "missing"),
    (WindowSpec(Recurrence.YEARLY, month=2, day=30, start_time=time(0, 0),
                duration=timedelta(hours=1)), "day", "out_of_range"),
    (WindowSpec(Recurrence.ONCE, starts_at=datetime(2026, 1, 2), ends_at=datetime(2026, 1, 1)),
     "ends_at", "ends_before_start"),
    (WindowSpec(Recurrence.ONCE, starts_at=datetime(2026, 1, 2)), "ends_at", "missing"),
])
def test_inconsistent_specs_name_the_field(spec, field, reason):
    with pytest.raises(SekishoError) as caught:
        spec.checked(TOKYO)
    assert (caught.value.field, caught.value.params["reason"]) == (field, reason)


def test_cli_text_becomes_the_same_spec_as_typed_values():
    spec = from_cli(once=None, weekly=("MON", "00:00"), yearly=None, duration="7h",
                    components=("login", "SMS"), note_ja=" 定期メンテナンス ", note_en=None)
    checked = spec.checked(TOKYO)
    assert checked == WindowSpec(Recurrence.WEEKLY, weekday=0, start_time=time(0, 0),
                                 duration=timedelta(hours=7),
                                 components=(Component.LOGIN, Component.SMS),
                                 note_ja="定期メンテナンス")
    naive = from_cli(once=("2026-12-31T22:00", "2027-01-01 02:00"), weekly=None, yearly=None,
                     duration=None, components=(), note_ja=None, note_en=None).checked(TOKYO)
    assert naive.starts_at == tokyo(2026, 12, 31, 22, 0)
    with pytest.raises(SekishoError):
        from_cli(once=None, weekly=None, yearly=None, duration=None, components=(),
                 note_ja=None, note_en=None)
    with pytest.raises(SekishoError) as caught:
        from_cli(once=None, weekly=("MON", "00:00"), yearly=None, duration="7h",
                 components=("frontend",), note_ja=None, note_en=None)
    assert caught.value.params["reason"] == "unknown_component"
