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
  ``ObjectiveData.canary_value``/``stable_value``.

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

from .models import Objective

__all__ = ["TrackQueries", "escape_label_value", "objective_queries", "selector", "track_labels"]


@dataclass(frozen=True)
class TrackQueries:
    kind: Literal["summary", "value"]
    count: str | None = None
    total: str | None = None
    squares: str | None = None
    value: str | None = None


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
        return TrackQueries(
            kind="summary",
            count=f"sum(increase({selector('rankops_ndcg_at_3_count', labels)}[{w}]))",
            total=f"sum(increase({selector('rankops_ndcg_at_3_sum', labels)}[{w}]))",
            squares=f"sum(increase({selector('rankops_ndcg_at_3_squares_sum_total', labels)}[{w}]))",
        )
    if metric == "error_rate":
        server_errors = 'code=~"5.."'
        errors = f"sum(increase({selector('rankops_requests_total', labels, server_errors)}[{w}]))"
        return TrackQueries(
            kind="summary",
            count=f"sum(increase({selector('rankops_requests_total', labels)}[{w}]))",
            total=errors,
            squares=errors,
        )
    if metric == "golden_ndcg_at_3":
        return TrackQueries(kind="value", value=f"avg({selector('rankops_golden_ndcg_at_3', labels)})")
    if metric == "latency_p95":
        bucket = selector("rankops_request_duration_seconds_bucket", labels)
        return TrackQueries(
            kind="value", value=f"histogram_quantile(0.95, sum by (le) (rate({bucket}[{w}])))"
        )
    raise ValueError(f"objective {objective.name!r}: metric {metric!r} needs a query")
