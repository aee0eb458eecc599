"""The QualitySLO spec: objectives (metric, target, breach, severity tiers, comparison with stable)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .fields import SpecError, _duration, _float, _int, _list, _mapping, _opt_str, _str, default

__all__ = [
    "DEFAULT_BREACH",
    "DEFAULT_TARGET",
    "METRICS",
    "SUMMARY_METRICS",
    "VALUE_METRICS",
    "Comparison",
    "Objective",
    "QualitySLOSpec",
    "SeverityTier",
    "parse_quality_slo_spec",
]


METRICS = ("ndcg_at_3", "golden_ndcg_at_3", "error_rate", "latency_p95", "custom")
SUMMARY_METRICS = frozenset({"ndcg_at_3", "error_rate"})
VALUE_METRICS = frozenset({"golden_ndcg_at_3", "latency_p95", "custom"})
# Not CRD defaults (the schema cannot default by metric): the NDCG metrics' target and breach.
DEFAULT_TARGET = 0.70
DEFAULT_BREACH = 0.65
_NDCG_METRICS = frozenset({"ndcg_at_3", "golden_ndcg_at_3"})


@dataclass(frozen=True)
class SeverityTier:
    """A runbook severity: fires when the value is below ``below`` (or above ``above``)."""

    name: str
    below: float | None = None
    above: float | None = None


@dataclass(frozen=True)
class Comparison:
    max_degradation: float = 0.02
    alpha: float = 0.05
    min_samples: int = 50


@dataclass(frozen=True)
class Objective:
    name: str
    metric: str
    target: float
    breach: float
    query: str | None = None
    direction: Literal["higherIsBetter", "lowerIsBetter"] = "higherIsBetter"
    severity_tiers: tuple[SeverityTier, ...] = ()
    comparison: Comparison = Comparison()
    window_s: float | None = None

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "higherIsBetter"

    @property
    def kind(self) -> Literal["summary", "value"]:
        """``summary``: judged from count/sum/squares (Welch); ``value``: one number per track."""
        if self.query is None and self.metric in SUMMARY_METRICS:
            return "summary"
        return "value"


@dataclass(frozen=True)
class QualitySLOSpec:
    objectives: tuple[Objective, ...]

    def objective(self, name: str) -> Objective:
        for objective in self.objectives:
            if objective.name == name:
                return objective
        raise KeyError(name)


def parse_quality_slo_spec(spec: Mapping[str, Any]) -> QualitySLOSpec:
    """Parse ``.spec`` of a QualitySLO, applying defaults; raises :class:`SpecError`."""
    spec = _mapping(spec, "spec", required=True)
    items = _list(spec.get("objectives"), "spec.objectives")
    if not items:
        raise SpecError("spec.objectives", "Required value: at least one objective")
    objectives: list[Objective] = []
    seen: set[str] = set()
    for i, raw in enumerate(items):
        objective = _parse_objective(_mapping(raw, f"spec.objectives[{i}]"), f"spec.objectives[{i}]")
        if objective.name in seen:
            raise SpecError(f"spec.objectives[{i}].name", f"duplicate objective name {objective.name!r}")
        seen.add(objective.name)
        objectives.append(objective)
    return QualitySLOSpec(objectives=tuple(objectives))


def _parse_comparison(c: Mapping[str, Any], cp: str) -> Comparison:
    comparison = Comparison(
        max_degradation=_float(c, "maxDegradation", cp, default(Comparison, "max_degradation")),
        alpha=_float(c, "alpha", cp, default(Comparison, "alpha")),
        min_samples=_int(c, "minSamples", cp, default(Comparison, "min_samples"), minimum=2),
    )
    if comparison.max_degradation < 0:
        raise SpecError(f"{cp}.maxDegradation", "must be >= 0")
    if not 0 < comparison.alpha < 0.5:
        raise SpecError(f"{cp}.alpha", f"must be in (0, 0.5), got {comparison.alpha}")
    return comparison


def _parse_objective(o: Mapping[str, Any], path: str) -> Objective:
    name = _str(o, "name", path)
    metric = _str(o, "metric", path)
    if metric not in METRICS:
        raise SpecError(f"{path}.metric", f"unsupported metric {metric!r}; supported: {', '.join(METRICS)}")
    query = _opt_str(o, "query", path)
    if metric == "custom" and not query:
        raise SpecError(f"{path}.query", "Required value: a custom objective needs a PromQL query")
    direction = o.get("direction", default(Objective, "direction"))
    if direction not in ("higherIsBetter", "lowerIsBetter"):
        raise SpecError(f"{path}.direction", f"must be higherIsBetter or lowerIsBetter, not {direction!r}")
    defaults = metric in _NDCG_METRICS
    target = _float(o, "target", path, DEFAULT_TARGET if defaults else None)
    breach = _float(o, "breach", path, DEFAULT_BREACH if defaults else None)
    if direction == "higherIsBetter" and not breach < target:
        raise SpecError(
            f"{path}.breach", f"must be below target ({breach} >= {target}) when higher is better"
        )
    if direction == "lowerIsBetter" and not breach > target:
        raise SpecError(f"{path}.breach", f"must be above target ({breach} <= {target}) when lower is better")
    tiers: list[SeverityTier] = []
    for j, raw in enumerate(_list(o.get("severityTiers"), f"{path}.severityTiers")):
        tp = f"{path}.severityTiers[{j}]"
        t = _mapping(raw, tp)
        below = t.get("below")
        above = t.get("above")
        if (below is None) == (above is None):
            raise SpecError(tp, "exactly one of below or above must be set")
        tiers.append(
            SeverityTier(
                name=_str(t, "name", tp),
                below=None if below is None else _float(t, "below", tp),
                above=None if above is None else _float(t, "above", tp),
            )
        )
    return Objective(
        name=name,
        metric=metric,
        target=target,
        breach=breach,
        query=query,
        direction=direction,
        severity_tiers=tuple(tiers),
        comparison=_parse_comparison(
            _mapping(o.get("comparison"), f"{path}.comparison"), f"{path}.comparison"
        ),
        window_s=_duration(o, "window", path, None),
    )
