"""Default objectives for the built-in metrics and their PromQL, one query per objective for
every model at once. Pure string building.

The live watch asks Prometheus once per objective, not once per model: every query here is
grouped ``by (model, version, track)`` and selects the models that use the SLO with one
``model=~"a|b"`` matcher, so an SLO used by fifty models costs two queries per objective.

``grouped_queries(objective, models, window_s, namespace=None) -> GroupedQueries``:

- ``value``: one number per (model, version, track) series;
- ``samples``: how much evidence stands behind it, per series (feedback count, requests,
  cache lookups, series count for gauges); ``None`` for a custom query, whose value is taken
  as is.

Built-in metrics (``[w]`` is the objective's window):

- ``ndcg_at_3``: online NDCG@3 from feedback, ``increase(_sum[w]) / increase(_count[w])``;
  samples = feedback count.
- ``golden_ndcg_at_3``: the artifact's golden-set NDCG@3 gauge; samples = reporting pods.
- ``latency_p95``: ``histogram_quantile(0.95, ...)`` over ``rate(_bucket[w])``; samples =
  requests.
- ``error_rate``: 5xx share of requests; a window without any 5xx is 0, not no data.
- ``cache_hit_rate``: hits over lookups.
- ``drift_psi``: the largest feature PSI reported by the pods.

A custom objective's ``query`` may use ``$window``, ``$namespace`` and ``$models`` (the
``model=~`` regular expression of the models using the SLO); it must return series labelled
``model``, ``version`` and ``track``. The per-track placeholders of the canary analysis
(``$model``, ``$track``, ``$version``) have no single value here, so such a query is refused
with :class:`ValueError` naming it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from string import Template

from ..promql import escape_label_value
from ..spec import METRIC_DEFAULTS, Objective, SeverityTier

__all__ = [
    "BUILTIN_METRICS",
    "DEFAULT_OBJECTIVES",
    "GROUP_LABELS",
    "RUNBOOK_TIERS",
    "GroupedQueries",
    "default_objective",
    "grouped_queries",
    "models_regex",
]

GROUP_LABELS = ("model", "version", "track")
_BY = f"by ({', '.join(GROUP_LABELS)})"
RUNBOOK_TIERS = (
    SeverityTier("P0", below=0.50),
    SeverityTier("P1", below=0.60),
    SeverityTier("P2", below=0.70),
)

# The runbook's KPIs as defaults: NDCG@3 >= 0.70 (breach < 0.65, tiers P0/P1/P2), p95 latency
# under 1 s, error rate under 1 %, cache hit rate 0.80, PSI above 0.25 is a significant shift.
_D = METRIC_DEFAULTS
DEFAULT_OBJECTIVES: tuple[Objective, ...] = (
    Objective("ndcg", "ndcg_at_3", *_D["ndcg_at_3"], severity_tiers=RUNBOOK_TIERS),
    Objective("golden-ndcg", "golden_ndcg_at_3", *_D["golden_ndcg_at_3"], severity_tiers=RUNBOOK_TIERS),
    Objective("latency", "latency_p95", target=0.5, breach=1.0, direction="lowerIsBetter"),
    Objective("errors", "error_rate", target=0.001, breach=0.01, direction="lowerIsBetter"),
    Objective("cache-hit-rate", "cache_hit_rate", *_D["cache_hit_rate"]),
    Objective("drift", "drift_psi", *_D["drift_psi"], direction="lowerIsBetter"),
)
BUILTIN_METRICS = tuple(o.metric for o in DEFAULT_OBJECTIVES)
_RE2_SPECIAL = frozenset("\\.+*?()|[]{}^$")
_PER_TRACK = re.compile(r"\$\{?(model|track|version)\b")


def default_objective(metric: str) -> Objective:
    """The runbook default for a built-in metric; ``KeyError`` for others."""
    for objective in DEFAULT_OBJECTIVES:
        if objective.metric == metric:
            return objective
    raise KeyError(metric)


@dataclass(frozen=True)
class GroupedQueries:
    value: str
    samples: str | None


def models_regex(models: Sequence[str] | None) -> str:
    """An RE2 alternation matching exactly these model names (PromQL-escaped; Prometheus anchors
    ``=~``); ``None`` matches every model."""
    if models is None:
        return ".+"
    if not models:
        raise ValueError("no models to query")
    alternation = "|".join(
        "".join("\\" + c if c in _RE2_SPECIAL else c for c in m) for m in sorted(set(models))
    )
    return alternation.replace("\\", "\\\\").replace('"', '\\"')


def _window(window_s: float) -> str:
    return f"{max(1, math.ceil(window_s))}s"


def grouped_queries(
    objective: Objective, models: Sequence[str] | None, window_s: float, namespace: str | None = None
) -> GroupedQueries:
    """The value and sample-count queries of ``objective`` for all ``models`` at once (``None``:
    every model)."""
    regex = models_regex(models)
    w = _window(objective.window_s or window_s)
    if objective.query:
        if _PER_TRACK.search(objective.query):
            raise ValueError(
                f"objective {objective.name!r}: the live watch runs one query for all models, so "
                "$model, $track and $version cannot be substituted; use $models (a model=~ regex) "
                "and return series labelled model, version, track"
            )
        text = Template(objective.query).safe_substitute(
            window=w, models=regex, namespace=escape_label_value(namespace or "")
        )
        return GroupedQueries(value=text, samples=None)
    matchers = f'model=~"{regex}"'
    if namespace:
        matchers += f',namespace="{escape_label_value(namespace)}"'

    def sel(metric: str, extra: str = "") -> str:
        return f"{metric}{{{matchers}{',' + extra if extra else ''}}}"

    def inc(metric: str, extra: str = "") -> str:
        return f"sum {_BY} (increase({sel(metric, extra)}[{w}]))"

    def share(metric: str, part: str) -> GroupedQueries:
        # `or ... * 0`: a window without a single matching series is a share of 0, not no data
        whole = inc(metric)
        return GroupedQueries(value=f"({inc(metric, part)} or {whole} * 0) / {whole}", samples=whole)

    metric = objective.metric
    if metric == "ndcg_at_3":
        count = inc("rankops_ndcg_at_3_count")
        return GroupedQueries(value=f"{inc('rankops_ndcg_at_3_sum')} / {count}", samples=count)
    if metric == "golden_ndcg_at_3":
        gauge = sel("rankops_golden_ndcg_at_3")
        return GroupedQueries(value=f"avg {_BY} ({gauge})", samples=f"count {_BY} ({gauge})")
    if metric == "latency_p95":
        bucket = sel("rankops_request_duration_seconds_bucket")
        buckets = f"sum by ({', '.join(GROUP_LABELS)}, le) (rate({bucket}[{w}]))"
        return GroupedQueries(
            value=f"histogram_quantile(0.95, {buckets})",
            samples=inc("rankops_request_duration_seconds_count"),
        )
    if metric == "error_rate":
        return share("rankops_requests_total", 'code=~"5.."')
    if metric == "cache_hit_rate":
        return share("rankops_cache_requests_total", 'result="hit"')
    if metric == "drift_psi":
        gauge = sel("rankops_drift_psi")
        return GroupedQueries(value=f"max {_BY} ({gauge})", samples=f"count {_BY} ({gauge})")
    raise ValueError(f"objective {objective.name!r}: metric {metric!r} needs a query")
