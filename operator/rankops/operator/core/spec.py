"""Typed specs of the three custom resources, parsed once from the plain dicts kopf hands over.

Each default is written once, as a dataclass field default; the parser reads it from there.
The CRDs (``crds/*.yaml``) default the same fields to the same values, so an object that
skipped API-server defaulting reads the same (``tests/unit/test_spec_defaults.py`` checks every
CRD default against its field). The parser also checks what a schema cannot express well;
every problem raises :class:`SpecError` whose ``path`` names the field
(``spec.rollout.steps[2].weight``).

Public API:

- ``parse_ranking_model_spec(spec) -> RankingModelSpec`` (``model``, ``serving``,
  ``rollout``, ``retrain``: ``ModelRef``, ``ServingSpec``, ``RolloutSpec`` of ``Step``,
  ``TrafficRouting``, ``AnalysisSpec``; ``RetrainSpec``).
- ``parse_quality_slo_spec(spec) -> QualitySLOSpec`` (``Objective``, ``SeverityTier``,
  ``Comparison``).
- ``parse_maintenance_window_spec(spec) -> MaintenanceWindowSpec`` (``LabelSelector``,
  ``Task`` with ``BackupTask``/``BackupRetention``, ``RetrainTask``, ``EvaluateTask``,
  ``DriftThresholds``).
- ``SUMMARY_METRICS`` (objectives judged statistically from count/sum/squares) and
  ``VALUE_METRICS`` (judged from one value per track); ``SEMVER_PATTERN``.

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

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from .timeutil import parse_duration

__all__ = [
    "DEFAULT_BREACH",
    "DEFAULT_TARGET",
    "SEMVER_PATTERN",
    "SUMMARY_METRICS",
    "VALUE_METRICS",
    "AnalysisSpec",
    "BackupRetention",
    "BackupTask",
    "Comparison",
    "DriftThresholds",
    "DriftTrigger",
    "EvaluateTask",
    "LabelSelector",
    "MaintenanceWindowSpec",
    "ModelRef",
    "Objective",
    "PromotionGate",
    "QualityDropTrigger",
    "QualitySLOSpec",
    "RankingModelSpec",
    "RetrainSpec",
    "RetrainTask",
    "RetrainTriggers",
    "RolloutSpec",
    "SelectorRequirement",
    "ServingSpec",
    "SeverityTier",
    "SpecError",
    "Step",
    "Task",
    "TrafficRouting",
    "TrainerSpec",
    "default",
    "parse_maintenance_window_spec",
    "parse_quality_slo_spec",
    "parse_ranking_model_spec",
]

# The CRD's pattern for spec.model.version, verbatim (tests/unit/test_spec_defaults.py compares them;
# serving keeps the same text for `rankops train --version`, as it may not import the operator).
SEMVER_PATTERN = (
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(-((0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(\+([0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*))?$"
)
_SEMVER_RE = re.compile(SEMVER_PATTERN)

METRICS = ("ndcg_at_3", "golden_ndcg_at_3", "error_rate", "latency_p95", "custom")
SUMMARY_METRICS = frozenset({"ndcg_at_3", "error_rate"})
VALUE_METRICS = frozenset({"golden_ndcg_at_3", "latency_p95", "custom"})
# Not CRD defaults (the schema cannot default by metric): the NDCG metrics' target and breach.
DEFAULT_TARGET = 0.70
DEFAULT_BREACH = 0.65
_NDCG_METRICS = frozenset({"ndcg_at_3", "golden_ndcg_at_3"})


class SpecError(ValueError):
    """A spec problem, with ``path`` naming the field and ``message`` saying what is wrong."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def default(cls: type, name: str) -> Any:
    """The default of dataclass field ``name``: the one place a spec default is written."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            raise KeyError(f"{cls.__name__}.{name} has no default")
    raise KeyError(f"{cls.__name__} has no field {name}")


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
class DriftThresholds:
    """When live queries count as drifted from the artifact's reference statistics."""

    psi_threshold: float = 0.2
    p_value: float = 0.01


@dataclass(frozen=True)
class DriftTrigger(DriftThresholds):
    features: tuple[str, ...] = ()


@dataclass(frozen=True)
class QualityDropTrigger:
    max_drop: float = 0.05
    window_s: float = 3600.0


@dataclass(frozen=True)
class RetrainTriggers:
    drift: DriftTrigger | None = None
    relative_quality_drop: QualityDropTrigger | None = None
    schedule: str | None = None


@dataclass(frozen=True)
class TrainerSpec:
    template: Mapping[str, Any] | None = None
    data: str | None = None
    output_uri: str | None = None


@dataclass(frozen=True)
class PromotionGate:
    min_golden_ndcg_at_3: float | None = None
    min_improvement: float = 0.0
    mode: Literal["Manual", "Automatic"] = "Manual"


@dataclass(frozen=True)
class RetrainSpec:
    triggers: RetrainTriggers = RetrainTriggers()
    trainer: TrainerSpec = TrainerSpec()
    promotion_gate: PromotionGate = PromotionGate()


@dataclass(frozen=True)
class RankingModelSpec:
    model: ModelRef
    serving: ServingSpec
    rollout: RolloutSpec = RolloutSpec()
    retrain: RetrainSpec | None = None


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


# --------------------------------------------------------------------------- MaintenanceWindow


@dataclass(frozen=True)
class SelectorRequirement:
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelSelector:
    """A metav1.LabelSelector; the empty selector selects everything."""

    match_labels: Mapping[str, str] = field(default_factory=dict)
    match_expressions: tuple[SelectorRequirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        for req in self.match_expressions:
            present = req.key in labels
            if req.operator == "In" and not (present and labels[req.key] in req.values):
                return False
            if req.operator == "NotIn" and present and labels[req.key] in req.values:
                return False
            if req.operator == "Exists" and not present:
                return False
            if req.operator == "DoesNotExist" and present:
                return False
        return True


@dataclass(frozen=True)
class BackupRetention:
    """Grandfather-father-son: the newest backup per day, ISO week and month, this many of each."""

    daily: int = 7
    weekly: int = 4
    monthly: int = 6


@dataclass(frozen=True)
class BackupTask:
    destination: str
    retention: BackupRetention = BackupRetention()
    verify: bool = True


@dataclass(frozen=True)
class RetrainTask:
    template: Mapping[str, Any] | None = None
    data: str | None = None


@dataclass(frozen=True)
class EvaluateTask:
    data: str | None = None
    split: Literal["dev", "test"] = "test"


TaskType = Literal["Backup", "Retrain", "Evaluate", "DriftCheck"]
TASK_TYPES: tuple[TaskType, ...] = ("Backup", "Retrain", "Evaluate", "DriftCheck")


@dataclass(frozen=True)
class Task:
    name: str
    type: TaskType
    timeout_s: float | None = None
    backup: BackupTask | None = None
    retrain: RetrainTask | None = None
    evaluate: EvaluateTask | None = None
    drift_check: DriftThresholds | None = None


@dataclass(frozen=True)
class MaintenanceWindowSpec:
    schedule: str
    duration_s: float
    time_zone: str = "UTC"
    suspend: bool = False
    selector: LabelSelector = LabelSelector()
    rollout_policy: Literal["Always", "OnlyInWindow"] = "Always"
    concurrency_policy: Literal["Forbid", "Allow", "Replace"] = "Forbid"
    tasks: tuple[Task, ...] = ()


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


def _choice(
    obj: Mapping[str, Any], key: str, path: str, choices: Sequence[str], default: str | None = None
) -> str:
    value = obj.get(key, default)
    if value is None:
        raise SpecError(f"{path}.{key}", "Required value")
    if value not in choices:
        raise SpecError(f"{path}.{key}", f"must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


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


def _opt_float(obj: Mapping[str, Any], key: str, path: str) -> float | None:
    return None if obj.get(key) is None else _float(obj, key, path)


def _bool(obj: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise SpecError(f"{path}.{key}", f"must be a boolean, not {value!r}")
    return value


def _duration(obj: Mapping[str, Any], key: str, path: str, default: float | None) -> float | None:
    """Seconds in the duration at ``key``; ``default`` (seconds) when it is absent."""
    value = obj.get(key)
    if value is None:
        return default
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


def _strings(value: Any, path: str) -> tuple[str, ...]:
    items = _list(value, path)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise SpecError(f"{path}[{i}]", f"must be a string, not {type(item).__name__}")
    return tuple(items)


def _template(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any] | None:
    value = obj.get(key)
    return None if value is None else dict(_mapping(value, f"{path}.{key}"))


# --------------------------------------------------------------------------- RankingModel parser


def parse_ranking_model_spec(spec: Mapping[str, Any]) -> RankingModelSpec:
    """Parse ``.spec`` of a RankingModel, applying the defaults; raises :class:`SpecError`."""
    spec = _mapping(spec, "spec", required=True)
    model_d = _mapping(spec.get("model"), "spec.model", required=True)
    version = _str(model_d, "version", "spec.model")
    if not _SEMVER_RE.fullmatch(version):
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
    sp = "spec.serving"
    serving = ServingSpec(
        image=_str(serving_d, "image", sp),
        replicas=_int(serving_d, "replicas", sp, default(ServingSpec, "replicas"), minimum=1),
        port=_int(serving_d, "port", sp, default(ServingSpec, "port"), minimum=1, maximum=65535),
        resources=dict(_mapping(serving_d.get("resources"), "spec.serving.resources")),
        env=env,
    )

    rollout = _parse_rollout(_mapping(spec.get("rollout"), "spec.rollout"))
    retrain = None
    if spec.get("retrain") is not None:
        retrain = _parse_retrain(_mapping(spec["retrain"], "spec.retrain"))
    return RankingModelSpec(model=model, serving=serving, rollout=rollout, retrain=retrain)


def _parse_steps(raw_steps: Any, path: str) -> tuple[Step, ...]:
    if raw_steps is None:
        return cast(tuple[Step, ...], default(RolloutSpec, "steps"))
    items = _list(raw_steps, path)
    if not items:
        raise SpecError(path, "must have at least one step")
    steps: list[Step] = []
    for i, raw in enumerate(items):
        sp = f"{path}[{i}]"
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
                f"{path}[{i}].weight",
                f"weights must not decrease ({steps[i - 1].weight} then {steps[i].weight})",
            )
    if steps[-1].weight != 100:
        raise SpecError(path, f"the last step must have weight 100, not {steps[-1].weight}")
    return tuple(steps)


def _parse_routing(tr_d: Mapping[str, Any], path: str) -> TrafficRouting:
    gw = tr_d.get("gatewayAPI")
    if tr_d.get("replicaRatio") is not None and gw is not None:
        raise SpecError(path, "exactly one of replicaRatio or gatewayAPI may be set")
    if gw is None:
        return TrafficRouting()
    gp = f"{path}.gatewayAPI"
    gw_d = _mapping(gw, gp)
    return TrafficRouting(
        kind="gatewayAPI",
        http_route=_str(gw_d, "httpRoute", gp),
        gateway=_opt_str(gw_d, "gateway", gp),
        gateway_namespace=_opt_str(gw_d, "gatewayNamespace", gp),
    )


def _parse_analysis(a: Mapping[str, Any], ap: str) -> AnalysisSpec:
    slo_ref = _mapping(a.get("sloRef"), f"{ap}.sloRef", required=True)
    min_samples = a.get("minSamples")
    analysis = AnalysisSpec(
        slo_ref=_str(slo_ref, "name", f"{ap}.sloRef"),
        interval_s=_duration(a, "interval", ap, default(AnalysisSpec, "interval_s")) or 0.0,
        failure_limit=_int(a, "failureLimit", ap, default(AnalysisSpec, "failure_limit"), minimum=1),
        inconclusive_limit=_int(
            a, "inconclusiveLimit", ap, default(AnalysisSpec, "inconclusive_limit"), minimum=1
        ),
        min_samples=None if min_samples is None else _int(a, "minSamples", ap, minimum=2),
    )
    if analysis.interval_s <= 0:
        raise SpecError(f"{ap}.interval", "must be positive")
    return analysis


def _parse_rollout(d: Mapping[str, Any]) -> RolloutSpec:
    path = "spec.rollout"
    analysis = None
    if d.get("analysis") is not None:
        analysis = _parse_analysis(_mapping(d["analysis"], f"{path}.analysis"), f"{path}.analysis")
    deadline = _duration(d, "progressDeadline", path, default(RolloutSpec, "progress_deadline_s"))
    return RolloutSpec(
        steps=_parse_steps(d.get("steps"), f"{path}.steps"),
        traffic_routing=_parse_routing(
            _mapping(d.get("trafficRouting"), f"{path}.trafficRouting"), f"{path}.trafficRouting"
        ),
        analysis=analysis,
        progress_deadline_s=deadline or 0.0,
        auto_rollback=_bool(d, "autoRollback", path, default(RolloutSpec, "auto_rollback")),
    )


def _parse_drift(d: Mapping[str, Any], path: str) -> DriftThresholds:
    return DriftThresholds(
        psi_threshold=_float(d, "psiThreshold", path, default(DriftThresholds, "psi_threshold")),
        p_value=_float(d, "pValue", path, default(DriftThresholds, "p_value")),
    )


def _parse_retrain(d: Mapping[str, Any]) -> RetrainSpec:
    path = "spec.retrain"
    t = _mapping(d.get("triggers"), f"{path}.triggers")
    tp = f"{path}.triggers"
    drift = None
    if t.get("drift") is not None:
        dp = f"{tp}.drift"
        drift_d = _mapping(t["drift"], dp)
        thresholds = _parse_drift(drift_d, dp)
        drift = DriftTrigger(
            psi_threshold=thresholds.psi_threshold,
            p_value=thresholds.p_value,
            features=_strings(drift_d.get("features"), f"{dp}.features"),
        )
    drop = None
    if t.get("relativeQualityDrop") is not None:
        qp = f"{tp}.relativeQualityDrop"
        q = _mapping(t["relativeQualityDrop"], qp)
        drop = QualityDropTrigger(
            max_drop=_float(q, "maxDrop", qp, default(QualityDropTrigger, "max_drop")),
            window_s=_duration(q, "window", qp, default(QualityDropTrigger, "window_s")) or 0.0,
        )
    schedule = _opt_str(t, "schedule", tp)
    if schedule is not None and not croniter.is_valid(schedule):
        raise SpecError(f"{tp}.schedule", f"not a cron schedule: {schedule!r}")
    tr = _mapping(d.get("trainer"), f"{path}.trainer")
    trp = f"{path}.trainer"
    g = _mapping(d.get("promotionGate"), f"{path}.promotionGate")
    gp = f"{path}.promotionGate"
    return RetrainSpec(
        triggers=RetrainTriggers(drift=drift, relative_quality_drop=drop, schedule=schedule),
        trainer=TrainerSpec(
            template=_template(tr, "template", trp),
            data=_opt_str(tr, "data", trp),
            output_uri=_opt_str(tr, "outputUri", trp),
        ),
        promotion_gate=PromotionGate(
            min_golden_ndcg_at_3=_opt_float(g, "minGoldenNdcgAt3", gp),
            min_improvement=_float(g, "minImprovement", gp, default(PromotionGate, "min_improvement")),
            mode=cast(
                Literal["Manual", "Automatic"],
                _choice(g, "mode", gp, ("Manual", "Automatic"), default(PromotionGate, "mode")),
            ),
        ),
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


# --------------------------------------------------------------------------- MaintenanceWindow parser


def parse_maintenance_window_spec(spec: Mapping[str, Any]) -> MaintenanceWindowSpec:
    """Parse ``.spec`` of a MaintenanceWindow, applying defaults; raises :class:`SpecError`."""
    spec = _mapping(spec, "spec", required=True)
    path = "spec"
    schedule = _str(spec, "schedule", path)
    if not croniter.is_valid(schedule):
        raise SpecError(f"{path}.schedule", f"not a cron schedule: {schedule!r}")
    time_zone = _str(spec, "timeZone", path, default(MaintenanceWindowSpec, "time_zone"))
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SpecError(f"{path}.timeZone", f"unknown time zone {time_zone!r}") from None
    duration = _duration(spec, "duration", path, None)
    if duration is None:
        raise SpecError(f"{path}.duration", "Required value")
    if duration <= 0:
        raise SpecError(f"{path}.duration", "must be positive")
    tasks: list[Task] = []
    seen: set[str] = set()
    for i, raw in enumerate(_list(spec.get("tasks"), f"{path}.tasks")):
        task = _parse_task(_mapping(raw, f"{path}.tasks[{i}]"), f"{path}.tasks[{i}]")
        if task.name in seen:
            raise SpecError(f"{path}.tasks[{i}].name", f"duplicate task name {task.name!r}")
        seen.add(task.name)
        tasks.append(task)
    rollout_policy = _choice(
        spec,
        "rolloutPolicy",
        path,
        ("Always", "OnlyInWindow"),
        default(MaintenanceWindowSpec, "rollout_policy"),
    )
    concurrency = _choice(
        spec,
        "concurrencyPolicy",
        path,
        ("Forbid", "Allow", "Replace"),
        default(MaintenanceWindowSpec, "concurrency_policy"),
    )
    return MaintenanceWindowSpec(
        schedule=schedule,
        duration_s=duration,
        time_zone=time_zone,
        suspend=_bool(spec, "suspend", path, default(MaintenanceWindowSpec, "suspend")),
        selector=_parse_selector(_mapping(spec.get("selector"), f"{path}.selector"), f"{path}.selector"),
        rollout_policy=cast(Literal["Always", "OnlyInWindow"], rollout_policy),
        concurrency_policy=cast(Literal["Forbid", "Allow", "Replace"], concurrency),
        tasks=tuple(tasks),
    )


def _parse_selector(d: Mapping[str, Any], path: str) -> LabelSelector:
    labels = _mapping(d.get("matchLabels"), f"{path}.matchLabels")
    for key, value in labels.items():
        if not isinstance(value, str):
            raise SpecError(f"{path}.matchLabels.{key}", f"must be a string, not {value!r}")
    requirements: list[SelectorRequirement] = []
    for i, raw in enumerate(_list(d.get("matchExpressions"), f"{path}.matchExpressions")):
        rp = f"{path}.matchExpressions[{i}]"
        r = _mapping(raw, rp)
        operator = _choice(r, "operator", rp, ("In", "NotIn", "Exists", "DoesNotExist"))
        values = _strings(r.get("values"), f"{rp}.values")
        if (operator in ("In", "NotIn")) != bool(values):
            raise SpecError(f"{rp}.values", "In and NotIn need values; Exists and DoesNotExist take none")
        requirements.append(
            SelectorRequirement(
                key=_str(r, "key", rp),
                operator=cast(Literal["In", "NotIn", "Exists", "DoesNotExist"], operator),
                values=values,
            )
        )
    return LabelSelector(match_labels=dict(labels), match_expressions=tuple(requirements))


def _parse_task(t: Mapping[str, Any], path: str) -> Task:
    task_type = cast(TaskType, _choice(t, "type", path, TASK_TYPES))
    backup = retrain = evaluate = drift = None
    if t.get("backup") is not None:
        bp = f"{path}.backup"
        b = _mapping(t["backup"], bp)
        r = _mapping(b.get("retention"), f"{bp}.retention")
        rp = f"{bp}.retention"
        backup = BackupTask(
            destination=_str(b, "destination", bp),
            retention=BackupRetention(
                daily=_int(r, "daily", rp, default(BackupRetention, "daily"), minimum=0),
                weekly=_int(r, "weekly", rp, default(BackupRetention, "weekly"), minimum=0),
                monthly=_int(r, "monthly", rp, default(BackupRetention, "monthly"), minimum=0),
            ),
            verify=_bool(b, "verify", bp, default(BackupTask, "verify")),
        )
    elif task_type == "Backup":
        raise SpecError(f"{path}.backup", "Required value: a Backup task needs backup.destination")
    if t.get("retrain") is not None:
        rp = f"{path}.retrain"
        r = _mapping(t["retrain"], rp)
        retrain = RetrainTask(template=_template(r, "template", rp), data=_opt_str(r, "data", rp))
    if t.get("evaluate") is not None:
        ep = f"{path}.evaluate"
        e = _mapping(t["evaluate"], ep)
        split = _choice(e, "split", ep, ("dev", "test"), default(EvaluateTask, "split"))
        evaluate = EvaluateTask(data=_opt_str(e, "data", ep), split=cast(Literal["dev", "test"], split))
    if t.get("driftCheck") is not None:
        drift = _parse_drift(_mapping(t["driftCheck"], f"{path}.driftCheck"), f"{path}.driftCheck")
    return Task(
        name=_str(t, "name", path),
        type=task_type,
        timeout_s=_duration(t, "timeout", path, None),
        backup=backup,
        retrain=retrain,
        evaluate=evaluate,
        drift_check=drift,
    )
