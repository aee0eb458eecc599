"""Exact window increases of counters from raw samples (``core.counters``): examples and properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rankops.operator.core.counters import counter_increase, total_increase


def test_series_with_a_baseline_counts_from_it() -> None:
    samples = [(0.0, 10.0), (5.0, 12.0), (10.0, 15.0), (15.0, 19.0)]
    assert counter_increase(samples, start=5.0) == 7.0  # baseline 12 at the window start
    assert counter_increase(samples, start=4.0) == 9.0  # baseline 10
    assert counter_increase(samples, start=15.0) is None  # no sample inside the window


def test_series_that_starts_inside_the_window_counts_from_zero() -> None:
    assert counter_increase([(6.0, 3.0), (7.0, 5.0)], start=5.0) == 5.0


def test_reset_adds_the_post_reset_value() -> None:
    # 10 -> 14 (+4), restart, 3 (+3), 6 (+3)
    assert counter_increase([(0.0, 10.0), (1.0, 14.0), (2.0, 3.0), (3.0, 6.0)], start=0.5) == 10.0
    # a reset right at the first sample inside the window
    assert counter_increase([(0.0, 10.0), (1.0, 2.0)], start=0.5) == 2.0


def test_gaps_and_unsorted_samples_and_nan() -> None:
    samples = [(9.0, 20.0), (1.0, 2.0), (0.0, 1.0), (4.0, math.nan)]
    assert counter_increase(samples, start=0.5) == 19.0


def test_total_sums_series_and_no_data_is_none() -> None:
    a = [(0.0, 1.0), (2.0, 4.0)]  # +3
    b = [(1.5, 2.0)]  # new: +2
    idle = [(0.0, 7.0)]  # nothing inside the window
    assert total_increase([a, b, idle], start=1.0) == 5.0
    assert total_increase([idle], start=1.0) is None
    assert total_increase([], start=1.0) is None
    assert total_increase([[(2.0, 0.0)]], start=1.0) == 0.0  # a series at 0 is data: nothing happened


# A counter's life, scrape by scrape: (increment since the previous scrape, restarted before it).
LIVES = st.lists(st.tuples(st.integers(0, 50), st.booleans()), min_size=1, max_size=30)


def _scrapes(life: list[tuple[int, bool]]) -> tuple[list[tuple[float, float]], list[int]]:
    """Scraped values (at t = 1, 2, ...) and the true increment each scrape reveals.

    The counter is created at 0 just before the first scrape. A restart sets it to 0 and then the
    increment accrues; a restart is only detectable when the value drops, so one whose new value
    would not be below the previous is skipped (it would read as plain growth, which it then is).
    """
    value, samples, increments = 0, [], []
    for i, (increment, restart) in enumerate(life):
        if restart and i > 0 and increment < value:
            value = increment
        else:
            value += increment
        samples.append((float(i + 1), float(value)))
        increments.append(increment)
    return samples, increments


@given(life=LIVES, start_index=st.integers(0, 30))
def test_increase_is_the_sum_of_true_increments_inside_the_window(
    life: list[tuple[int, bool]], start_index: int
) -> None:
    samples, increments = _scrapes(life)
    start = float(start_index) + 0.5  # scrapes 1..start_index are at or before the window start
    inside = increments[start_index:]
    expected = float(sum(inside)) if inside else None
    assert counter_increase(samples, start) == expected
    # A series first seen inside the window counts its first value in full.
    if start_index == 0:
        assert counter_increase(samples, 0.0) == float(sum(increments))


@given(
    increments=st.lists(st.integers(0, 50), min_size=2, max_size=30),
    dropped=st.sets(st.integers(0, 29)),
    start_index=st.integers(0, 29),
)
def test_missed_scrapes_change_nothing_without_restarts(
    increments: list[int], dropped: set[int], start_index: int
) -> None:
    samples, _ = _scrapes([(d, False) for d in increments])
    last = len(samples) - 1
    # Keep the last sample (the window's end) and the baseline (the last sample at or before start).
    start = float(min(start_index, last)) + 0.5
    baseline = max((i for i, (t, _) in enumerate(samples) if t <= start), default=None)
    kept = [s for i, s in enumerate(samples) if i not in dropped or i in (last, baseline)]
    assert counter_increase(kept, start) == counter_increase(samples, start)


@given(life=LIVES, start_index=st.integers(0, 30))
def test_counters_scraped_together_give_a_consistent_mean(
    life: list[tuple[int, bool]], start_index: int
) -> None:
    """count and sum of observations all equal to 0.25, scraped together: the mean is exactly 0.25."""
    counts, _ = _scrapes(life)
    sums = [(t, v * 0.25) for t, v in counts]
    start = float(start_index) + 0.5
    n, total = counter_increase(counts, start), counter_increase(sums, start)
    if n:
        assert total == pytest.approx(0.25 * n)
