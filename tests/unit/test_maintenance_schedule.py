"""MaintenanceWindow schedule: time zones, DST changes, missed windows."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rankops.operator.core.maintenance.schedule import (
    ScheduleError,
    current_window,
    due_window,
    next_window,
    parse_schedule,
    previous_start,
    window_starts,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def starts(cron: str, tz: str, after: datetime, n: int) -> list[datetime]:
    it = window_starts(parse_schedule(cron, tz, 3600), after)
    return [next(it) for _ in range(n)]


def test_daily_in_berlin_is_utc_plus_one_in_winter_and_two_in_summer() -> None:
    s = parse_schedule("0 3 * * *", "Europe/Berlin", 7200)
    assert next_window(s, utc(2026, 1, 10, 12)).start == utc(2026, 1, 11, 2)
    w = next_window(s, utc(2026, 7, 10, 12))
    assert w.start == utc(2026, 7, 11, 1)
    assert w.end == utc(2026, 7, 11, 3)


def test_spring_forward_berlin_skipped_time_opens_at_end_of_gap() -> None:
    # 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC); 02:30 does not exist that day.
    got = starts("30 2 * * *", "Europe/Berlin", utc(2026, 3, 27, 12), 3)
    assert got == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]


def test_spring_forward_new_york_quarter_hours_in_gap_collapse_into_one_window() -> None:
    # 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
    got = starts("*/15 2 * * *", "America/New_York", utc(2026, 3, 8, 0), 2)
    assert got == [utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 0)]


def test_fall_back_berlin_repeated_time_opens_once_at_first_occurrence() -> None:
    # 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens at 00:30 and 01:30 UTC.
    got = starts("30 2 * * *", "Europe/Berlin", utc(2026, 10, 24, 12), 2)
    assert got == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_fall_back_new_york_hourly_opens_each_wall_time_once() -> None:
    # 2026-11-01: 02:00 EDT falls back to 01:00 EST (06:00 UTC); 01:00 local occurs twice.
    got = starts("0 * * * *", "America/New_York", utc(2026, 11, 1, 3, 30), 4)
    assert got == [utc(2026, 11, 1, 4), utc(2026, 11, 1, 5), utc(2026, 11, 1, 7), utc(2026, 11, 1, 8)]


def test_current_window_open_and_closed() -> None:
    s = parse_schedule("0 1 * * *", "UTC", 3600)
    assert current_window(s, utc(2026, 5, 1, 1, 30)) is not None
    assert current_window(s, utc(2026, 5, 1, 2, 0)) is None
    w = current_window(s, utc(2026, 5, 1, 1, 0))
    assert w is not None and w.start == utc(2026, 5, 1, 1)


@pytest.mark.parametrize(
    ("cron", "tz", "field"),
    [
        ("61 * * * *", "UTC", "spec.schedule"),
        ("* * *", "UTC", "spec.schedule"),
        ("0 0 31 2 *", "UTC", "spec.schedule"),
        ("0 3 * * *", "Mars/Olympus", "spec.timeZone"),
        ("0 3 * * *", "", "spec.timeZone"),
        ("0 3 * * *", "../etc/passwd", "spec.timeZone"),
    ],
)
def test_invalid_schedule_names_the_field(cron: str, tz: str, field: str) -> None:
    with pytest.raises(ScheduleError) as err:
        parse_schedule(cron, tz, 60)
    assert err.value.field == field
    assert field in str(err.value)


def test_due_window_on_time_and_after_restart_within_deadline() -> None:
    s = parse_schedule("0 2 * * *", "UTC", 2 * 3600)
    at_start = due_window(s, utc(2026, 6, 1, 2, 0, 5), utc(2026, 5, 31, 2))
    assert at_start.window is not None and at_start.window.start == utc(2026, 6, 1, 2)
    assert at_start.missed == ()
    # Acted on already: nothing due again (a second replica or a restart in the window).
    again = due_window(s, utc(2026, 6, 1, 2, 30), utc(2026, 6, 1, 2))
    assert again.window is None and again.missed == () and again.latest is None
    late = due_window(s, utc(2026, 6, 1, 2, 40), utc(2026, 5, 31, 2), starting_deadline_s=3600)
    assert late.window is not None


def test_due_window_past_deadline_is_missed_not_run() -> None:
    s = parse_schedule("0 2 * * *", "UTC", 2 * 3600)
    d = due_window(s, utc(2026, 6, 1, 3, 30), utc(2026, 5, 31, 2), starting_deadline_s=600)
    assert d.window is None
    assert d.missed == (utc(2026, 6, 1, 2),)
    assert d.latest == utc(2026, 6, 1, 2)


def test_due_window_down_for_days_runs_only_the_open_window_and_reports_the_rest() -> None:
    s = parse_schedule("0 2 * * *", "UTC", 2 * 3600)
    d = due_window(s, utc(2026, 6, 5, 2, 10), utc(2026, 6, 1, 2))
    assert d.window is not None and d.window.start == utc(2026, 6, 5, 2)
    assert d.missed == (utc(2026, 6, 2, 2), utc(2026, 6, 3, 2), utc(2026, 6, 4, 2))


def test_due_window_never_runs_after_the_window_closed_even_without_deadline() -> None:
    s = parse_schedule("0 2 * * *", "UTC", 3600)
    d = due_window(s, utc(2026, 6, 1, 3, 0), utc(2026, 5, 31, 2))
    assert d.window is None and d.missed == (utc(2026, 6, 1, 2),)


def test_due_window_new_object_created_mid_window_runs_it() -> None:
    s = parse_schedule("0 2 * * *", "UTC", 3600)
    d = due_window(s, utc(2026, 6, 1, 2, 20), None)
    assert d.window is not None and d.missed == ()
    assert due_window(s, utc(2026, 6, 1, 12), None).missed == ()


ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"]
CRONS = ["30 2 * * *", "0 * * * *", "*/20 1-3 * * *", "15 3 * * 0", "0 0 1 * *", "45 1 * * 1-5"]


@settings(max_examples=150, deadline=None)
@given(
    cron=st.sampled_from(CRONS),
    tz=st.sampled_from(ZONES),
    after=st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)
    ),
)
def test_starts_are_strictly_increasing_and_after_the_given_time(cron: str, tz: str, after: datetime) -> None:
    got = starts(cron, tz, after, 6)
    assert got[0] > after
    assert all(a < b for a, b in itertools.pairwise(got))
    # Resuming from any start yields the same sequence (restarts never skip or repeat a window).
    assert starts(cron, tz, got[1], 4) == got[2:6]


@settings(max_examples=100, deadline=None)
@given(
    tz=st.sampled_from(ZONES),
    now=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)),
    hours=st.integers(1, 30),
)
def test_current_window_agrees_with_due_window(tz: str, now: datetime, hours: int) -> None:
    s = parse_schedule("30 2 * * *", tz, hours * 3600)
    open_now = current_window(s, now)
    due = due_window(s, now, now - timedelta(days=3))
    assert (open_now is not None) == (due.window is not None)
    if open_now is not None and due.window is not None:
        assert open_now == due.window and open_now.contains(now)


@settings(max_examples=150, deadline=None)
@given(
    cron=st.sampled_from(CRONS),
    tz=st.sampled_from(ZONES),
    now=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)),
)
def test_previous_start_is_the_latest_start_at_or_before_now(cron: str, tz: str, now: datetime) -> None:
    s = parse_schedule(cron, tz, 3600)
    prev = previous_start(s, now)
    assert prev is not None and prev <= now
    assert next(window_starts(s, prev)) > now


def test_due_window_after_a_long_gap_counts_back_from_now_only() -> None:
    """A minutely window last acted on ten months ago: the latest start, 100 missed, no long walk."""
    from datetime import UTC, datetime, timedelta

    from rankops.operator.core.maintenance.schedule import MAX_MISSED, due_window, parse_schedule

    schedule = parse_schedule("* * * * *", "Europe/Berlin", 3600)
    now = datetime(2026, 11, 2, 10, 30, 30, tzinfo=UTC)
    due = due_window(schedule, now, datetime(2026, 1, 1, tzinfo=UTC))
    assert due.window is not None and due.window.start == datetime(2026, 11, 2, 10, 30, tzinfo=UTC)
    assert len(due.missed) == MAX_MISSED and due.missed[-1] == now.replace(second=0) - timedelta(minutes=1)
