"""The RankingModel spec: what to serve, how to roll it out, when to retrain."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from .fields import (
    SpecError,
    _bool,
    _choice,
    _duration,
    _float,
    _int,
    _list,
    _mapping,
    _opt_float,
    _opt_str,
    _str,
    _strings,
    _template,
    default,
)

__all__ = [
    "SEMVER_PATTERN",
    "AnalysisSpec",
    "DriftThresholds",
    "DriftTrigger",
    "ExperimentSpec",
    "ModelRef",
    "NewDataTrigger",
    "PromotionGate",
    "QualityDropTrigger",
    "RankingModelSpec",
    "RetrainSpec",
    "RetrainTriggers",
    "RolloutSpec",
    "ServingSpec",
    "Step",
    "TrafficRouting",
    "TrainerSpec",
    "parse_drift",
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
    max_analysis_duration_s: float | None = None  # unset: the rollout's progressDeadline


@dataclass(frozen=True)
class ExperimentSpec:
    """An A/B experiment instead of canary steps (``core.experiment``): one fixed split, judged at the end."""

    weight: int = 50  # the candidate's share of traffic, percent
    duration_s: float = 7 * 24 * 3600.0  # the runbook's 7 days
    alpha: float = 0.05
    minimum_effect: float = 0.02  # NDCG@3 difference the early stop is tuned to (its mixing scale)
    early_stopping: bool = False
    on_inconclusive: Literal["Keep", "Promote"] = "Keep"


@dataclass(frozen=True)
class RolloutSpec:
    steps: tuple[Step, ...] = (Step(weight=100),)
    traffic_routing: TrafficRouting = TrafficRouting()
    analysis: AnalysisSpec | None = None
    progress_deadline_s: float = 600.0
    auto_rollback: bool = True
    # Set: the rollout is one step at the experiment's split (``steps`` holds just that step).
    experiment: ExperimentSpec | None = None

    def step_requires_analysis(self, index: int) -> bool:
        """Whether step ``index`` needs a Pass verdict before the rollout moves on."""
        if self.analysis is None:
            return False
        if self.experiment is not None:
            return True
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
class NewDataTrigger:
    """Retrain once the feedback since the parent reaches this fraction of the base training set."""

    fraction: float = 0.2


@dataclass(frozen=True)
class RetrainTriggers:
    drift: DriftTrigger | None = None
    relative_quality_drop: QualityDropTrigger | None = None
    schedule: str | None = None
    time_zone: str = "UTC"  # the schedule's wall clock (IANA name), as a MaintenanceWindow's
    new_data: NewDataTrigger | None = None

    @property
    def any(self) -> bool:
        return any(
            t is not None for t in (self.drift, self.relative_quality_drop, self.schedule, self.new_data)
        )


@dataclass(frozen=True)
class TrainerSpec:
    template: Mapping[str, Any] | None = None
    data: str | None = None
    output_uri: str | None = None
    feedback_log: str | None = None  # the durable feedback log the serving pods write


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
        max_analysis_duration_s=_duration(a, "maxAnalysisDuration", ap, None),
    )
    if analysis.interval_s <= 0:
        raise SpecError(f"{ap}.interval", "must be positive")
    if analysis.max_analysis_duration_s is not None and analysis.max_analysis_duration_s <= 0:
        raise SpecError(f"{ap}.maxAnalysisDuration", "must be positive")
    return analysis


def _parse_rollout(d: Mapping[str, Any]) -> RolloutSpec:
    path = "spec.rollout"
    analysis = None
    if d.get("analysis") is not None:
        analysis = _parse_analysis(_mapping(d["analysis"], f"{path}.analysis"), f"{path}.analysis")
    deadline = _duration(d, "progressDeadline", path, default(RolloutSpec, "progress_deadline_s"))
    experiment = None
    if d.get("experiment") is not None:
        experiment = _parse_experiment(_mapping(d["experiment"], f"{path}.experiment"), f"{path}.experiment")
        if d.get("steps") is not None:
            raise SpecError(path, "experiment and steps are mutually exclusive")
        if analysis is None:
            raise SpecError(f"{path}.experiment", "needs rollout.analysis (its sloRef names the objectives)")
    steps = _parse_steps(d.get("steps"), f"{path}.steps")
    if experiment is not None:
        steps = (Step(weight=experiment.weight, analysis=True),)
    return RolloutSpec(
        steps=steps,
        traffic_routing=_parse_routing(
            _mapping(d.get("trafficRouting"), f"{path}.trafficRouting"), f"{path}.trafficRouting"
        ),
        analysis=analysis,
        progress_deadline_s=deadline or 0.0,
        auto_rollback=_bool(d, "autoRollback", path, default(RolloutSpec, "auto_rollback")),
        experiment=experiment,
    )


def _parse_experiment(e: Mapping[str, Any], path: str) -> ExperimentSpec:
    def value(attr: str) -> Any:
        return default(ExperimentSpec, attr)

    alpha = _float(e, "alpha", path, value("alpha"))
    if not 0.0 < alpha < 1.0:
        raise SpecError(f"{path}.alpha", f"must be between 0 and 1 (exclusive), got {alpha:g}")
    effect = _float(e, "minimumEffect", path, value("minimum_effect"))
    if not 0.0 < effect <= 1.0:
        raise SpecError(f"{path}.minimumEffect", f"must be in (0, 1], got {effect:g}")
    duration = _duration(e, "duration", path, value("duration_s")) or 0.0
    if duration <= 0:
        raise SpecError(f"{path}.duration", "must be positive")
    return ExperimentSpec(
        weight=_int(e, "weight", path, value("weight"), minimum=1, maximum=99),
        duration_s=duration,
        alpha=alpha,
        minimum_effect=effect,
        early_stopping=_bool(e, "earlyStopping", path, value("early_stopping")),
        on_inconclusive=cast(
            Literal["Keep", "Promote"],
            _choice(e, "onInconclusive", path, ("Keep", "Promote"), value("on_inconclusive")),
        ),
    )


def parse_drift(d: Mapping[str, Any], path: str) -> DriftThresholds:
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
        thresholds = parse_drift(drift_d, dp)
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
    time_zone = _str(t, "timeZone", tp, default(RetrainTriggers, "time_zone"))
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SpecError(f"{tp}.timeZone", f"unknown time zone {time_zone!r}") from None
    new_data = None
    if t.get("newData") is not None:
        np_ = f"{tp}.newData"
        n = _mapping(t["newData"], np_)
        new_data = NewDataTrigger(fraction=_float(n, "fraction", np_, default(NewDataTrigger, "fraction")))
        if not new_data.fraction > 0:
            raise SpecError(f"{np_}.fraction", f"must be positive, got {new_data.fraction}")
    tr = _mapping(d.get("trainer"), f"{path}.trainer")
    trp = f"{path}.trainer"
    g = _mapping(d.get("promotionGate"), f"{path}.promotionGate")
    gp = f"{path}.promotionGate"
    return RetrainSpec(
        triggers=RetrainTriggers(
            drift=drift, relative_quality_drop=drop, schedule=schedule, time_zone=time_zone, new_data=new_data
        ),
        trainer=TrainerSpec(
            template=_template(tr, "template", trp),
            data=_opt_str(tr, "data", trp),
            output_uri=_opt_str(tr, "outputUri", trp),
            feedback_log=_opt_str(tr, "feedbackLog", trp),
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
