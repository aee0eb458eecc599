"""Exact, non-extrapolated counter increases from raw samples. Pure: no I/O, no clock.

Why: PromQL's ``increase()`` extrapolates each series to the window's edges and clamps that
extrapolation where the counter would reach zero. For a series that starts inside the window
the clamp differs between ``_count``, ``_sum`` and ``_squares_sum_total``, and the variance
derived from the three (a difference of large, nearly equal terms) is inflated many times.
Computed here from the scraped samples themselves, the three increases come from the same
scrapes, so they stay consistent, and ``n`` is an exact integer.

Public API:

- ``counter_increase(samples, start) -> float | None``: one series' increase over the window
  ``(start, end]``, from its samples ``(timestamp, value)`` (oldest first; samples at or
  before ``start`` serve as the baseline; the caller fetches a lookback before ``start``).
  ``None`` when the series has no sample inside the window.
- ``total_increase(series, start) -> float | None``: the sum over series; ``None`` when no
  series has a sample inside the window (no data).

Semantics, per series:

- the baseline is the last sample at or before ``start``; without one the series started
  inside the window and counts from 0 (counters are created at 0; the ranking service even
  pre-creates its series at 0), so its first sample is all increase;
- then every step adds ``value - previous`` when it is non-negative; a value below the
  previous one is a counter reset (a process restart), after which the counter restarted at 0,
  so the step adds the post-reset ``value``;
- gaps (missed scrapes) need nothing special: the steps around them still add up exactly.

Over a window whose first scraped sample comes after increments that happened before the
window (a baseline older than the lookback the caller fetched), those increments count too:
consistently for every counter of the same scrape, which is what the judge needs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["counter_increase", "total_increase"]


def counter_increase(samples: Sequence[tuple[float, float]], start: float) -> float | None:
    """The exact increase of one counter series over ``(start, end]`` (module docstring)."""
    previous = 0.0  # no sample before the window: the series started inside it, from 0
    increase = 0.0
    inside = False
    for timestamp, value in sorted(samples, key=lambda s: s[0]):
        if math.isnan(value):
            continue  # a staleness marker or a NaN sample carries no count
        if timestamp <= start:
            previous = value
            continue
        inside = True
        increase += value - previous if value >= previous else value
        previous = value
    return increase if inside else None


def total_increase(series: Iterable[Sequence[tuple[float, float]]], start: float) -> float | None:
    """Sum of ``counter_increase`` over series; ``None`` when none has a sample in the window."""
    parts = [inc for inc in (counter_increase(s, start) for s in series) if inc is not None]
    return math.fsum(parts) if parts else None
