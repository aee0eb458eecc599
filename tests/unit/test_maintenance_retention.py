"""Backup retention: grandfather-father-son counts in the window's time zone, and what is never deleted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rankops.operator.core.maintenance.retention import Backup, Retention, kept_reasons, select_for_deletion


def b(
    i: int, when: datetime, *, version: str | None = None, verified: bool = True, keep: bool = False
) -> Backup:
    return Backup(f"m/{i}", "m", version or f"1.0.{i}", when, verified, keep)


def test_daily_backups_for_a_year_keep_7_daily_4_weekly_12_monthly() -> None:
    start = datetime(2025, 1, 1, 3, tzinfo=UTC)
    backups = [b(i, start + timedelta(days=i)) for i in range(400)]
    deleted = {x.id for x in select_for_deletion(backups, Retention(), "UTC")}
    kept = [x for x in backups if x.id not in deleted]
    newest = backups[-1].taken_at
    days = {x.taken_at.date() for x in kept if newest - x.taken_at < timedelta(days=7)}
    assert len(days) == 7
    # 7 daily + weekly/monthly that are not already daily; the last 12 months each have one.
    months = {(x.taken_at.year, x.taken_at.month) for x in kept}
    assert len(months) == 12
    assert len(kept) <= 7 + 4 + 12
    assert backups[-1] in kept


def test_days_are_counted_in_the_window_time_zone() -> None:
    a = b(1, datetime(2026, 5, 1, 10, 0, tzinfo=UTC))  # 1 May in UTC and in Berlin
    b2 = b(2, datetime(2026, 5, 1, 21, 30, tzinfo=UTC))  # 1 May 23:30 in Berlin (CEST)
    c = b(3, datetime(2026, 5, 1, 22, 30, tzinfo=UTC))  # 2 May 00:30 in Berlin, 1 May in UTC
    r = Retention(daily=2, weekly=0, monthly=0)
    # UTC: one day holds all three, its newest (c) stays.
    assert [x.id for x in select_for_deletion([a, b2, c], r, "UTC")] == ["m/1", "m/2"]
    # Berlin: two days, the newest of each (b2, c) stays.
    assert [x.id for x in select_for_deletion([a, b2, c], r, "Europe/Berlin")] == ["m/1"]


def test_zero_counts_still_keep_the_newest_verified_and_protected_and_keep_marked() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    backups = [
        b(1, t, version="1.0.0"),
        b(2, t + timedelta(days=1), keep=True),
        b(3, t + timedelta(days=2)),
        b(4, t + timedelta(days=3), verified=False),
    ]
    reasons = kept_reasons(backups, Retention(0, 0, 0), "UTC", [("m", "1.0.0")])
    assert reasons == {"m/1": ["protected"], "m/2": ["keep"], "m/3": ["newest"], "m/4": ["unverified"]}
    assert select_for_deletion(backups, Retention(0, 0, 0), "UTC", [("m", "1.0.0")]) == []


def test_protection_is_per_model() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    a = Backup("a/1", "a", "1.0.0", t, True)
    a_new = Backup("a/2", "a", "2.0.0", t + timedelta(days=40), True)
    other = Backup("z/1", "z", "9.0.0", t + timedelta(days=80), True)
    got = select_for_deletion([a, a_new, other], Retention(1, 0, 0), "UTC", [("z", "1.0.0")])
    assert got == [a]


def test_duplicate_ids_and_negative_counts_are_refused() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="unique"):
        select_for_deletion([b(1, t), b(1, t)], Retention(), "UTC")
    with pytest.raises(ValueError, match="daily"):
        Retention(daily=-1)


backup_lists = st.lists(
    st.builds(
        lambda offset, version, verified, keep: (offset, version, verified, keep),
        st.integers(0, 800 * 24),  # hours since the start
        st.sampled_from([f"1.{i}.0" for i in range(8)]),
        st.booleans(),
        st.booleans() | st.just(False),
    ),
    max_size=60,
)


def _materialize(rows: list[tuple[int, str, bool, bool]]) -> list[Backup]:
    t = datetime(2024, 1, 1, tzinfo=UTC)
    return [
        Backup(f"m/{i}", "m", version, t + timedelta(hours=h), verified, keep)
        for i, (h, version, verified, keep) in enumerate(rows)
    ]


@settings(max_examples=300, deadline=None)
@given(
    rows=backup_lists,
    daily=st.integers(0, 10),
    weekly=st.integers(0, 6),
    monthly=st.integers(0, 14),
    tz=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Pacific/Kiritimati"]),
    protected=st.sets(st.sampled_from([f"1.{i}.0" for i in range(8)]), max_size=3),
)
def test_retention_invariants(
    rows: list[tuple[int, str, bool, bool]],
    daily: int,
    weekly: int,
    monthly: int,
    tz: str,
    protected: set[str],
) -> None:
    backups = _materialize(rows)
    retention = Retention(daily, weekly, monthly)
    deleted = select_for_deletion(backups, retention, tz, [("m", v) for v in protected])
    deleted_ids = {x.id for x in deleted}
    kept = [x for x in backups if x.id not in deleted_ids]
    assert set(deleted) <= set(backups)
    # Never the newest verified backup.
    verified = [x for x in backups if x.verified]
    if verified:
        newest = max(verified, key=lambda x: (x.taken_at, x.id))
        assert newest.id not in deleted_ids
    # Never one marked keep, never one that could not be verified.
    assert not any(x.keep or not x.verified for x in deleted)
    # Never the last copy of a protected version.
    for version in protected:
        if any(x.version == version for x in backups):
            assert any(x.version == version for x in kept)
    # Bounded: at most the slots plus what is always kept.
    always = {x.id for x in backups if x.keep or not x.verified}
    assert len({x.id for x in kept} - always) <= daily + weekly + monthly + 1 + len(protected)
    # Idempotent: pruning what is left deletes nothing more.
    assert select_for_deletion(kept, retention, tz, [("m", v) for v in protected]) == []
    # Monotone: more slots never delete more.
    wider = Retention(daily + 1, weekly + 1, monthly + 1)
    assert {
        x.id for x in select_for_deletion(backups, wider, tz, [("m", v) for v in protected])
    } <= deleted_ids
