"""When a MaintenanceWindow is open: cron schedule (croniter) in an IANA time zone (zoneinfo).

A window opens at every wall-clock time of ``timeZone`` that the cron expression matches and
stays open for ``duration``. Daylight-saving changes follow cron's intent (a schedule names
wall-clock times, each runs once):

- a wall time that does not exist (spring forward, e.g. 02:30 in Europe/Berlin on the last
  Sunday of March) opens its window at the end of the gap, the transition instant (03:00
  local); several skipped times collapse into that one window;
- a wall time that occurs twice (fall back) opens one window, at its first occurrence.

Missed windows (the operator was down at a start) follow CronJob's ``startingDeadlineSeconds``:
a start may still be acted on until ``deadline`` seconds after it, and never after the
window has closed; older starts are reported as missed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from rankops.operator.core.spec import SpecError

__all__ = [
    "DueWindow",
    "Schedule",
    "ScheduleError",
    "Window",
    "current_window",
    "due_window",
    "next_window",
    "parse_schedule",
    "previous_start",
    "window_starts",
]

# A DST transition moves wall time by at most a few hours (Lord Howe: 30 min, most: 1 h); the
# iteration starts this far before the first instant of interest so no start is skipped.
_DST_MARGIN = timedelta(hours=3)
# Missed-window accounting stops counting here, as CronJob gives up after 100 missed starts.
MAX_MISSED = 100


class ScheduleError(SpecError):
    """An invalid cron expression or time zone; ``field`` (``path``) names the spec field."""

    @property
    def field(self) -> str:
        return self.path


@dataclass(frozen=True)
class Schedule:
    cron: str
    time_zone: str
    duration: timedelta

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.time_zone)


@dataclass(frozen=True)
class Window:
    start: datetime  # UTC
    end: datetime  # UTC

    def contains(self, when: datetime) -> bool:
        return self.start <= when < self.end


@dataclass(frozen=True)
class DueWindow:
    """What a reconcile at ``now`` should do about window starts since ``last_start``.

    ``window``: the window whose Jobs should start now (``None``: nothing to start).
    ``missed``: starts after ``last_start`` that were not acted on in time (capped at
    ``MAX_MISSED``); ``latest``: the newest start at or before ``now`` (record it as the new
    ``last_start`` whether or not it ran, so a missed start is reported once)."""

    window: Window | None
    missed: tuple[datetime, ...]
    latest: datetime | None


@functools.cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def parse_schedule(cron: str, time_zone: str, duration_s: float) -> Schedule:
    """Validate and bundle a schedule; raises ``ScheduleError`` naming the field."""
    if not isinstance(cron, str) or not croniter.is_valid(cron):
        raise ScheduleError("spec.schedule", f"not a valid cron expression: {cron!r}")
    try:
        # croniter accepts some expressions that can never match (``0 0 31 2 *``): find one start.
        croniter(cron, datetime(2000, 1, 1)).get_next(datetime)
    except (CroniterBadCronError, CroniterBadDateError) as exc:
        raise ScheduleError("spec.schedule", f"cron expression {cron!r} never matches: {exc}") from None
    if not time_zone or time_zone != time_zone.strip():
        raise ScheduleError("spec.timeZone", f"unknown time zone: {time_zone!r}")
    try:
        _zone(time_zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(
            "spec.timeZone", f"unknown time zone: {time_zone!r} (expected an IANA name such as Europe/Berlin)"
        ) from None
    if duration_s <= 0:
        raise ScheduleError("spec.duration", f"must be positive, got {duration_s:g}s")
    return Schedule(cron, time_zone, timedelta(seconds=duration_s))


def _require_aware(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("naive datetime: pass a timezone-aware time")
    return when.astimezone(UTC)


def _exists(wall: datetime, zone: ZoneInfo) -> bool:
    aware = wall.replace(tzinfo=zone, fold=0)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall


def _gap_end(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant at which the DST gap holding the non-existent ``wall`` ends."""
    # Interpreted with the offset after (fold=1) and before (fold=0) the transition, ``wall``
    # lands on either side of it; bisect to the second where the offset changes.
    lo = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    hi = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if lo > hi:
        lo, hi = hi, lo
    before = lo.astimezone(zone).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return hi.replace(microsecond=0)


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    if _exists(wall, zone):
        return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    return _gap_end(wall, zone)


def window_starts(schedule: Schedule, after: datetime) -> Iterator[datetime]:
    """Window starts strictly after ``after``, ascending, in UTC, without duplicates."""
    after = _require_aware(after)
    zone = schedule.zone
    wall = (after.astimezone(zone) - _DST_MARGIN).replace(tzinfo=None)
    it = croniter(schedule.cron, wall)
    previous: datetime | None = None
    while True:
        instant = _instant(it.get_next(datetime), zone)
        if instant <= after or instant == previous:
            continue
        if previous is not None and instant < previous:
            continue  # the second occurrence of a repeated hour's wall time: already opened
        previous = instant
        yield instant


def previous_start(schedule: Schedule, now: datetime) -> datetime | None:
    """The latest window start at or before ``now`` (``None`` if there never was one)."""
    now = _require_aware(now)
    zone = schedule.zone
    it = croniter(schedule.cron, (now.astimezone(zone) + _DST_MARGIN).replace(tzinfo=None))
    for _ in range(10_000):
        try:
            wall = it.get_prev(datetime)
        except (CroniterBadDateError, ValueError):
            return None
        instant = _instant(wall, zone)
        if instant <= now:
            return instant
    return None


def next_window(schedule: Schedule, now: datetime) -> Window:
    """The first window that starts strictly after ``now``."""
    start = next(window_starts(schedule, now))
    return Window(start, start + schedule.duration)


def _starts_between(schedule: Schedule, after: datetime, until: datetime) -> Iterator[datetime]:
    for start in window_starts(schedule, after):
        if start > until:
            return
        yield start


def _latest_starts(schedule: Schedule, after: datetime, until: datetime, limit: int) -> list[datetime]:
    """The last ``limit`` window starts in ``(after, until]``, ascending (as ``_starts_between``)."""
    zone = schedule.zone
    it = croniter(schedule.cron, (until.astimezone(zone) + _DST_MARGIN).replace(tzinfo=None))
    out: list[datetime] = []
    while len(out) < limit:
        try:
            wall = it.get_prev(datetime)
        except (CroniterBadDateError, ValueError):
            break
        instant = _instant(wall, zone)
        if instant > until:
            continue
        if instant <= after:
            # Wall times within the DST margin may still map later than this one; past the margin
            # none can reach back above ``after``.
            if wall.replace(tzinfo=zone) < (after - _DST_MARGIN).astimezone(zone):
                break
            continue
        if out and instant >= out[-1]:
            continue  # a skipped or repeated wall time collapsing onto a start already counted
        out.append(instant)
    return out[::-1]


def current_window(schedule: Schedule, now: datetime) -> Window | None:
    """The window open at ``now`` (the latest one to start, if windows overlap), else ``None``."""
    now = _require_aware(now)
    latest = None
    for start in _starts_between(schedule, now - schedule.duration, now):
        latest = start
    return None if latest is None else Window(latest, latest + schedule.duration)


def due_window(
    schedule: Schedule,
    now: datetime,
    last_start: datetime | None,
    *,
    starting_deadline_s: float | None = None,
) -> DueWindow:
    """Which window (if any) to start Jobs for at ``now``, given the last start acted on.

    ``last_start=None`` (a new MaintenanceWindow) looks back one window length only: a
    window created mid-window runs, older history is not "missed". A start is due while
    ``now - start`` is within ``starting_deadline_s`` (``None``: no deadline) and the window is
    still open; of several pending starts only the newest can be due, as with CronJob."""
    now = _require_aware(now)
    since = now - schedule.duration if last_start is None else _require_aware(last_start)
    # Backwards from now, at most MAX_MISSED + 1 starts: walking forwards from a last start long
    # ago (a minutely schedule, months) would take minutes of CPU on the event loop.
    pending = _latest_starts(schedule, since, now, MAX_MISSED + 1)
    if not pending:
        return DueWindow(None, (), None)
    latest = pending[-1]
    window = Window(latest, latest + schedule.duration)
    in_time = starting_deadline_s is None or (now - latest).total_seconds() <= starting_deadline_s
    if window.contains(now) and in_time:
        return DueWindow(window, tuple(pending[:-1]), latest)
    return DueWindow(None, tuple(pending), latest)
