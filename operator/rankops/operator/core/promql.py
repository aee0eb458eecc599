"""PromQL for the objectives, as plain strings. Pure string building, no HTTP.

Public API:

- ``escape_label_value(value) -> str``: backslash, double quote and newline escaped, for
  use inside ``"..."``.
- ``selector(metric, labels) -> str``: ``metric{k="v",...}`` with keys sorted.
- ``track_labels(model, track, version, namespace=None) -> dict``.
- ``objective_queries(objective, *, model, track, version, window_s, namespace=None)
  -> TrackQueries``: what to run for one track of one objective. For ``kind == "summary"``
  the shell runs ``count``, ``total`` and ``squares`` (instant queries, each one number or an
  empty vector = no data) and builds ``judge.TrackSummary.from_increases(count, total,
  squares)``; for ``kind == "value"`` it runs ``value`` and passes the number as
  ``ObjectiveData.canary_value``/``stable_value``. Built-in summaries also carry
  ``count_series``, ``total_series`` and ``squares_series``: the bare series selectors
  (``metric{...}``, no range, no function), for a source that fetches their raw samples and
  computes exact increases (``core.counters``); the shell prefers those: ``increase()``'s
  per-series extrapolation differs between the three counters while a series starts inside
  the window, which inflates the derived variance.

Built-in queries (window ``[<window_s>s]``, labels ``model``, ``track``, ``version`` and,
when given, ``namespace``):

- ``ndcg_at_3``: ``sum(increase(rankops_ndcg_at_3_count{...}[w]))``, ``..._sum``,
  ``rankops_ndcg_at_3_squares_sum_total``.
- ``error_rate``: a Bernoulli summary: ``count`` = all requests, ``total`` = ``squares`` =
  requests with a 5xx ``code`` (``x² = x`` for 0/1 outcomes), so the judge's mean is the error
  rate and Welch applies unchanged.
- ``golden_ndcg_at_3``: ``avg(rankops_golden_ndcg_at_3{...})``.
- ``latency_p95``: ``histogram_quantile(0.95, sum by (le)
  (rate(rankops_request_duration_seconds_bucket{...}[w])))``.
- ``custom`` or any objective with ``query``: the user's query with ``$model``, ``$track``,
  ``$version``, ``$namespace`` replaced by escaped label values and ``$window`` by ``<n>s``
  (``${name}`` also works; ``$$`` is a literal ``$``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from string import Template
from typing import Literal

from .spec import Objective

__all__ = ["TrackQueries", "escape_label_value", "objective_queries", "selector", "track_labels"]


@dataclass(frozen=True)
class TrackQueries:
    kind: Literal["summary", "value"]
    count: str | None = None
    total: str | None = None
    squares: str | None = None
    value: str | None = None
    count_series: str | None = None
    total_series: str | None = None
    squares_series: str | None = None

    @property
    def series(self) -> tuple[str, str, str] | None:
        """``(count, total, squares)`` series selectors for exact increases, when known."""
        if self.count_series is None or self.total_series is None or self.squares_series is None:
            return None
        return self.count_series, self.total_series, self.squares_series


def escape_label_value(value: str) -> str:
    """Escape for a double-quoted PromQL string: ``\\`` -> ``\\\\``, ``"`` -> ``\\"``, newline -> ``\\n``."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def selector(metric: str, labels: Mapping[str, str], extra: str = "") -> str:
    """``metric{a="x",b="y"}`` with sorted keys and escaped values; ``extra`` appends raw matchers."""
    parts = [f'{key}="{escape_label_value(labels[key])}"' for key in sorted(labels)]
    if extra:
        parts.append(extra)
    return f"{metric}{{{','.join(parts)}}}"


def track_labels(model: str, track: str, version: str, namespace: str | None = None) -> dict[str, str]:
    labels = {"model": model, "track": track, "version": version}
    if namespace:
        labels["namespace"] = namespace
    return labels


def _window(window_s: float) -> str:
    return f"{max(1, math.ceil(window_s))}s"


def objective_queries(
    objective: Objective,
    *,
    model: str,
    track: str,
    version: str,
    window_s: float,
    namespace: str | None = None,
) -> TrackQueries:
    """The PromQL for one track of one objective over the last ``window_s`` seconds."""
    labels = track_labels(model, track, version, namespace)
    w = _window(window_s)
    if objective.query:
        mapping = {key: escape_label_value(value) for key, value in labels.items()}
        mapping.setdefault("namespace", "")
        mapping["window"] = w
        return TrackQueries(kind="value", value=Template(objective.query).safe_substitute(mapping))
    metric = objective.metric
    if metric == "ndcg_at_3":
        return _summary(
            selector("rankops_ndcg_at_3_count", labels),
            selector("rankops_ndcg_at_3_sum", labels),
            selector("rankops_ndcg_at_3_squares_sum_total", labels),
            w,
        )
    if metric == "error_rate":
        errors = selector("rankops_requests_total", labels, 'code=~"5.."')
        return _summary(selector("rankops_requests_total", labels), errors, errors, w)
    if metric == "golden_ndcg_at_3":
        return TrackQueries(kind="value", value=f"avg({selector('rankops_golden_ndcg_at_3', labels)})")
    if metric == "latency_p95":
        bucket = selector("rankops_request_duration_seconds_bucket", labels)
        return TrackQueries(
            kind="value", value=f"histogram_quantile(0.95, sum by (le) (rate({bucket}[{w}])))"
        )
    raise ValueError(f"objective {objective.name!r}: metric {metric!r} needs a query")


def _summary(count: str, total: str, squares: str, window: str) -> TrackQueries:
    def increase(series: str) -> str:
        return f"sum(increase({series}[{window}]))"

    return TrackQueries(
        kind="summary",
        count=increase(count),
        total=increase(total),
        squares=increase(squares),
        count_series=count,
        total_series=total,
        squares_series=squares,
    )
