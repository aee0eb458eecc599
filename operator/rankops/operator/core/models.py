"""Typed views of the custom resources' specs, parsed from the plain dicts kopf hands over.

The parsers apply the same defaults as the CRDs (so an object that skipped API-server
defaulting reads the same) and check what the CRD schema cannot express well; every
problem raises :class:`SpecError` whose ``path`` names the field (``spec.rollout.steps[2].weight``).

Public API (used by the kopf shell):

- ``parse_ranking_model_spec(spec: Mapping) -> RankingModelSpec``
- ``parse_quality_slo_spec(spec: Mapping) -> QualitySLOSpec``
- dataclasses ``RankingModelSpec`` (``model``, ``serving``, ``rollout``, ``retrain``),
  ``ModelRef``, ``ServingSpec``, ``Step``, ``TrafficRouting``, ``AnalysisSpec``,
  ``RolloutSpec``; ``QualitySLOSpec``, ``Objective``, ``SeverityTier``, ``Comparison``.
- ``SUMMARY_METRICS`` (objectives judged statistically from count/sum/squares) and
  ``VALUE_METRICS`` (judged from one value per track).

Semantics worth knowing:

- A step requires analysis when ``step.analysis`` is true, or when it is unset, the rollout
  has an ``analysis`` block and the step's weight is below 100 (the final 100 % step is the
  promotion step; set ``analysis: true`` on it explicitly to judge at full weight too).
- ``RolloutSpec.looks_per_step`` = ``failureLimit + inconclusiveLimit - 1``: the most
  analysis runs one step can take (counters are per step and do not reset each other),
  which is the number of looks the judge splits ``alpha`` across.
- Objectives ``ndcg_at_3`` and ``golden_ndcg_at_3`` default ``target`` 0.70 and ``breach``
  0.65; other metrics must state both. ``direction`` ``lowerIsBetter`` flips every
  comparison (``breach`` must then be above ``target``).
- An objective with an explicit ``query`` is judged as a value metric: the query (with
  ``$model``, ``$track``, ``$version``, ``$window``, ``$namespace`` placeholders, see
  ``promql``) must return one number per track.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .timeutil import parse_duration

__all__ = [
    "DEFAULT_BREACH",
    "DEFAULT_TARGET",
    "SEMVER_PATTERN",
    "SUMMARY_METRICS",
    "VALUE_METRICS",
    "AnalysisSpec",
    "Comparison",
    "ModelRef",
    "Objective",
    "QualitySLOSpec",
    "RankingModelSpec",
    "RolloutSpec",
    "ServingSpec",
    "SeverityTier",
    "SpecError",
    "Step",
    "TrafficRouting",
    "parse_quality_slo_spec",
    "parse_ranking_model_spec",
]

SEMVER_PATTERN = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_SEMVER_RE = re.compile(SEMVER_PATTERN)

METRICS = ("ndcg_at_3", "golden_ndcg_at_3", "error_rate", "latency_p95", "custom")
SUMMARY_METRICS = frozenset({"ndcg_at_3", "error_rate"})
VALUE_METRICS = frozenset({"golden_ndcg_at_3", "latency_p95", "custom"})
DEFAULT_TARGET = 0.70
DEFAULT_BREACH = 0.65
_NDCG_METRICS = frozenset({"ndcg_at_3", "golden_ndcg_at_3"})


class SpecError(ValueError):
    """A spec problem, with ``path`` naming the field and ``message`` saying what is wrong."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


# --------------------------------------------------------------------------- RankingModel


@dataclass(frozen=True)
class ModelRef:
    version: str
    uri: str


@dataclass(frozen=True)
class ServingSpec:
    image: str
    replicas: int = 2
    port: int = 8080
    resources: Mapping[str, Any] = field(default_factory=dict)
    env: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Step:
    weight: int
    pause_s: float | None = None
    analysis: bool | None = None


@dataclass(frozen=True)
class TrafficRouting:
    kind: Literal["replicaRatio", "gatewayAPI"] = "replicaRatio"
    http_route: str | None = None
    gateway: str | None = None
    gateway_namespace: str | None = None


@dataclass(frozen=True)
class AnalysisSpec:
    slo_ref: str
    interval_s: float = 30.0
    failure_limit: int = 2
    inconclusive_limit: int = 3
    min_samples: int | None = None


@dataclass(frozen=True)
class RolloutSpec:
    steps: tuple[Step, ...] = (Step(weight=100),)
    traffic_routing: TrafficRouting = TrafficRouting()
    analysis: AnalysisSpec | None = None
    progress_deadline_s: float = 600.0
    auto_rollback: bool = True

    def step_requires_analysis(self, index: int) -> bool:
        """Whether step ``index`` needs a Pass verdict before the rollout moves on."""
        if self.analysis is None:
            return False
        step = self.steps[index]
        if step.analysis is not None:
            return step.analysis
        return step.weight < 100

    @property
    def looks_per_step(self) -> int:
        """Most analysis runs one step can take: ``failureLimit + inconclusiveLimit - 1``."""
        if self.analysis is None:
            return 1
        return self.analysis.failure_limit + self.analysis.inconclusive_limit - 1


@dataclass(frozen=True)
class RankingModelSpec:
    model: ModelRef
    serving: ServingSpec
    rollout: RolloutSpec = RolloutSpec()
    retrain: Mapping[str, Any] | None = None


# --------------------------------------------------------------------------- QualitySLO


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


# --------------------------------------------------------------------------- parsing helpers


def _mapping(value: Any, path: str, *, required: bool = False) -> Mapping[str, Any]:
    if value is None:
        if required:
            raise SpecError(path, "Required value")
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(path, f"must be an object, not {type(value).__name__}")
    return value


def _str(obj: Mapping[str, Any], key: str, path: str, default: str | None = None) -> str:
    value = obj.get(key, default)
    if value is None or value == "":
        raise SpecError(f"{path}.{key}", "Required value")
    if not isinstance(value, str):
        raise SpecError(f"{path}.{key}", f"must be a string, not {type(value).__name__}")
    return value


def _opt_str(obj: Mapping[str, Any], key: str, path: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SpecError(f"{path}.{key}", f"must be a string, not {type(value).__name__}")
    return value


def _int(
    obj: Mapping[str, Any],
    key: str,
    path: str,
    default: int | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    value = obj.get(key, default)
    if value is None:
        raise SpecError(f"{path}.{key}", "Required value")
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{path}.{key}", f"must be an integer, not {value!r}")
    if minimum is not None and value < minimum:
        raise SpecError(f"{path}.{key}", f"must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise SpecError(f"{path}.{key}", f"must be <= {maximum}, got {value}")
    return value


def _float(obj: Mapping[str, Any], key: str, path: str, default: float | None = None) -> float:
    value = obj.get(key, default)
    if value is None:
        raise SpecError(f"{path}.{key}", "Required value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"{path}.{key}", f"must be a number, not {value!r}")
    return float(value)


def _bool(obj: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise SpecError(f"{path}.{key}", f"must be a boolean, not {value!r}")
    return value


def _duration(obj: Mapping[str, Any], key: str, path: str, default: str | None) -> float | None:
    value = obj.get(key, default)
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise SpecError(f"{path}.{key}", str(exc)) from None


def _list(value: Any, path: str) -> Sequence[Any]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise SpecError(path, f"must be a list, not {type(value).__name__}")
    return value


# --------------------------------------------------------------------------- RankingModel parser


def parse_ranking_model_spec(spec: Mapping[str, Any]) -> RankingModelSpec:
    """Parse ``.spec`` of a RankingModel, applying CRD defaults; raises :class:`SpecError`."""
    spec = _mapping(spec, "spec", required=True)
    model_d = _mapping(spec.get("model"), "spec.model", required=True)
    version = _str(model_d, "version", "spec.model")
    if not _SEMVER_RE.match(version):
        raise SpecError("spec.model.version", f"must be a semantic version (e.g. 1.2.0), got {version!r}")
    model = ModelRef(version=version, uri=_str(model_d, "uri", "spec.model"))

    serving_d = _mapping(spec.get("serving"), "spec.serving", required=True)
    env = tuple(
        _mapping(e, f"spec.serving.env[{i}]")
        for i, e in enumerate(_list(serving_d.get("env"), "spec.serving.env"))
    )
    for i, e in enumerate(env):
        _str(e, "name", f"spec.serving.env[{i}]")
        if str(e["name"]).startswith("RANKOPS_"):
            raise SpecError(
                f"spec.serving.env[{i}].name", "names starting with RANKOPS_ are reserved for the operator"
            )
    serving = ServingSpec(
        image=_str(serving_d, "image", "spec.serving"),
        replicas=_int(serving_d, "replicas", "spec.serving", 2, minimum=1),
        port=_int(serving_d, "port", "spec.serving", 8080, minimum=1, maximum=65535),
        resources=dict(_mapping(serving_d.get("resources"), "spec.serving.resources")),
        env=env,
    )

    rollout = _parse_rollout(_mapping(spec.get("rollout"), "spec.rollout"))
    retrain = spec.get("retrain")
    if retrain is not None:
        retrain = dict(_mapping(retrain, "spec.retrain"))
    return RankingModelSpec(model=model, serving=serving, rollout=rollout, retrain=retrain)


def _parse_rollout(d: Mapping[str, Any]) -> RolloutSpec:
    path = "spec.rollout"
    raw_steps = d.get("steps")
    steps: list[Step] = []
    if raw_steps is None:
        steps = [Step(weight=100)]
    else:
        items = _list(raw_steps, f"{path}.steps")
        if not items:
            raise SpecError(f"{path}.steps", "must have at least one step")
        for i, raw in enumerate(items):
            sp = f"{path}.steps[{i}]"
            s = _mapping(raw, sp)
            step_analysis = s.get("analysis")
            if step_analysis is not None and not isinstance(step_analysis, bool):
                raise SpecError(f"{sp}.analysis", f"must be a boolean, not {step_analysis!r}")
            steps.append(
                Step(
                    weight=_int(s, "weight", sp, minimum=1, maximum=100),
                    pause_s=_duration(s, "pause", sp, None),
                    analysis=step_analysis,
                )
            )
        for i in range(1, len(steps)):
            if steps[i].weight < steps[i - 1].weight:
                raise SpecError(
                    f"{path}.steps[{i}].weight",
                    f"weights must not decrease ({steps[i - 1].weight} then {steps[i].weight})",
                )
        if steps[-1].weight != 100:
            raise SpecError(f"{path}.steps", f"the last step must have weight 100, not {steps[-1].weight}")

    tr_d = _mapping(d.get("trafficRouting"), f"{path}.trafficRouting")
    has_rr = tr_d.get("replicaRatio") is not None
    gw = tr_d.get("gatewayAPI")
    if has_rr and gw is not None:
        raise SpecError(f"{path}.trafficRouting", "exactly one of replicaRatio or gatewayAPI may be set")
    if gw is not None:
        gw_d = _mapping(gw, f"{path}.trafficRouting.gatewayAPI")
        routing = TrafficRouting(
            kind="gatewayAPI",
            http_route=_str(gw_d, "httpRoute", f"{path}.trafficRouting.gatewayAPI"),
            gateway=_opt_str(gw_d, "gateway", f"{path}.trafficRouting.gatewayAPI"),
            gateway_namespace=_opt_str(gw_d, "gatewayNamespace", f"{path}.trafficRouting.gatewayAPI"),
        )
    else:
        routing = TrafficRouting()

    analysis: AnalysisSpec | None = None
    if d.get("analysis") is not None:
        ap = f"{path}.analysis"
        a = _mapping(d["analysis"], ap)
        slo_ref = _mapping(a.get("sloRef"), f"{ap}.sloRef", required=True)
        min_samples = a.get("minSamples")
        analysis = AnalysisSpec(
            slo_ref=_str(slo_ref, "name", f"{ap}.sloRef"),
            interval_s=_duration(a, "interval", ap, "30s") or 0.0,
            failure_limit=_int(a, "failureLimit", ap, 2, minimum=1),
            inconclusive_limit=_int(a, "inconclusiveLimit", ap, 3, minimum=1),
            min_samples=None if min_samples is None else _int(a, "minSamples", ap, minimum=2),
        )
        if analysis.interval_s <= 0:
            raise SpecError(f"{ap}.interval", "must be positive")

    return RolloutSpec(
        steps=tuple(steps),
        traffic_routing=routing,
        analysis=analysis,
        progress_deadline_s=_duration(d, "progressDeadline", path, "10m") or 0.0,
        auto_rollback=_bool(d, "autoRollback", path, True),
    )


# --------------------------------------------------------------------------- QualitySLO parser


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


def _parse_objective(o: Mapping[str, Any], path: str) -> Objective:
    name = _str(o, "name", path)
    metric = _str(o, "metric", path)
    if metric not in METRICS:
        raise SpecError(f"{path}.metric", f"unsupported metric {metric!r}; supported: {', '.join(METRICS)}")
    query = _opt_str(o, "query", path)
    if metric == "custom" and not query:
        raise SpecError(f"{path}.query", "Required value: a custom objective needs a PromQL query")
    direction = o.get("direction", "higherIsBetter")
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
    c = _mapping(o.get("comparison"), f"{path}.comparison")
    cp = f"{path}.comparison"
    comparison = Comparison(
        max_degradation=_float(c, "maxDegradation", cp, 0.02),
        alpha=_float(c, "alpha", cp, 0.05),
        min_samples=_int(c, "minSamples", cp, 50, minimum=2),
    )
    if comparison.max_degradation < 0:
        raise SpecError(f"{cp}.maxDegradation", "must be >= 0")
    if not 0 < comparison.alpha < 0.5:
        raise SpecError(f"{cp}.alpha", f"must be in (0, 0.5), got {comparison.alpha}")
    return Objective(
        name=name,
        metric=metric,
        target=target,
        breach=breach,
        query=query,
        direction=direction,
        severity_tiers=tuple(tiers),
        comparison=comparison,
        window_s=_duration(o, "window", path, None),
    )
