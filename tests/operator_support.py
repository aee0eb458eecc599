"""Test doubles and helpers for the operator's metrics adapter (tests only; never shipped).

- ``StaticMetricsSource``: an in-memory ``MetricsSource`` with fixed NDCG@3 summaries per
  (model, track, version).
- ``summary_queries``, ``summary_from_sums``, ``track_summary``: one track's NDCG@3 summary
  through a ``MetricsSource``, the way the RankingModel controller gathers it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime

from rankops.operator.adapters.prometheus import MetricsSource, MetricsUnavailable
from rankops.operator.core.promql import objective_queries
from rankops.operator.core.spec import DEFAULT_BREACH, DEFAULT_TARGET, Objective
from rankops.operator.core.verdict import TrackSummary

_NDCG_OBJECTIVE = Objective(
    name="ndcg_at_3", metric="ndcg_at_3", target=DEFAULT_TARGET, breach=DEFAULT_BREACH
)


def summary_queries(model: str, track: str, version: str, window_seconds: float) -> dict[str, str]:
    """The three PromQL expressions (sum, squares, count) of one track over a window (``core.promql``)."""
    q = objective_queries(_NDCG_OBJECTIVE, model=model, track=track, version=version, window_s=window_seconds)
    assert q.count and q.total and q.squares
    return {"sum": q.total, "squares": q.squares, "count": q.count}


def summary_from_sums(total: float | None, squares: float | None, count: float | None) -> TrackSummary | None:
    """The judge's ``TrackSummary`` from window increases; ``None`` when the window holds no sample."""
    return TrackSummary.from_increases(count, total, squares)


async def track_summary(
    source: MetricsSource, model: str, track: str, version: str, window_seconds: float
) -> TrackSummary | None:
    """NDCG@3 summary of one track over the last window from exact increases; ``None``: no data."""
    q = objective_queries(_NDCG_OBJECTIVE, model=model, track=track, version=version, window_s=window_seconds)
    assert q.series is not None
    count, total, squares = await source.increases(q.series, window_seconds)
    return summary_from_sums(total, squares, count)


_SUMMARY_QUERY = re.compile(r"rankops_ndcg_at_3_(?P<part>count|sum|squares_sum_total)\{(?P<labels>[^}]*)\}")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


class StaticMetricsSource:
    """In-memory ``MetricsSource`` for tests: fixed summaries per (model, track, version)."""

    def __init__(
        self,
        summaries: Mapping[tuple[str, str, str], TrackSummary | None] | None = None,
        *,
        error: MetricsUnavailable | None = None,
    ) -> None:
        self.summaries: dict[tuple[str, str, str], TrackSummary | None] = dict(summaries or {})
        self.values: dict[str, float | None] = {}
        self.error = error
        self.calls: list[tuple[str, ...]] = []

    async def query(self, promql: str, at: datetime | None = None) -> float | None:
        """``values[promql]`` if set, else the NDCG summary queries of ``core.promql`` from ``summaries``."""
        self.calls.append(("query", promql))
        if self.error is not None:
            raise self.error
        if promql in self.values:
            return self.values[promql]
        match = _SUMMARY_QUERY.search(promql)
        if match is None:
            return None
        labels = dict(_LABEL.findall(match.group("labels")))
        summary = self.summaries.get(
            (labels.get("model", ""), labels.get("track", ""), labels.get("version", ""))
        )
        if summary is None:
            return None
        part = match.group("part")
        return summary.n if part == "count" else summary.total if part == "sum" else summary.squares_total

    async def increases(
        self, selectors: Sequence[str], window_seconds: float, at: datetime | None = None
    ) -> list[float | None]:
        """Like ``query`` per selector: ``values[selector]`` if set, else from ``summaries``."""
        return [await self.query(selector, at) for selector in selectors]
