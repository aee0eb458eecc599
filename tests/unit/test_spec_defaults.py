"""The CRDs are the source of defaults: every ``default:`` in crds/*.yaml is the dataclass default of
the field it fills, and the parser reads the same value when the field is absent. Also: the API
names in ``rankops.operator.api`` and the semver pattern are the CRDs' own."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from rankops.operator import api
from rankops.operator.core.slo.policy import (
    AlertingPolicy,
    BudgetPolicy,
    EvaluationPolicy,
    LiveSLO,
    NotificationTarget,
    PostPromotion,
    RemediationPolicy,
    parse_live_slo,
    parse_post_promotion,
)
from rankops.operator.core.spec import (
    SEMVER_PATTERN,
    AnalysisSpec,
    BackupRetention,
    BackupTask,
    Comparison,
    DriftCheckTask,
    DriftThresholds,
    EvaluateTask,
    ExperimentSpec,
    MaintenanceWindowSpec,
    NewDataTrigger,
    Objective,
    PromotionGate,
    QualityDropTrigger,
    RankingModelSpec,
    RetrainTriggers,
    RolloutSpec,
    ServingSpec,
    TrafficRouting,
    default,
    parse_maintenance_window_spec,
    parse_quality_slo_spec,
    parse_ranking_model_spec,
)
from rankops.operator.core.timeutil import parse_duration
from rankops.serving.commands import SEMVER_PATTERN as SERVING_SEMVER_PATTERN

ROOT = Path(__file__).resolve().parents[2]
CRDS = {
    api.RANKING_MODEL: ROOT / "crds" / "rankingmodels.yaml",
    api.QUALITY_SLO: ROOT / "crds" / "qualityslos.yaml",
    api.MAINTENANCE_WINDOW: ROOT / "crds" / "maintenancewindows.yaml",
}

# A valid spec of each kind in which every object holding a defaulted field is present (so that
# setting one default changes nothing but that field). Array items are index 0.
BASE: dict[str, dict[str, Any]] = {
    api.RANKING_MODEL: {
        "model": {"version": "1.0.0", "uri": "file:///m"},
        "serving": {"image": "img"},
        "rollout": {"analysis": {"sloRef": {"name": "q"}}, "postPromotion": {}},
        "retrain": {
            "triggers": {"drift": {}, "relativeQualityDrop": {}, "newData": {}},
            "promotionGate": {},
        },
    },
    api.QUALITY_SLO: {
        "objectives": [{"name": "ndcg", "metric": "ndcg_at_3", "comparison": {}}],
        "evaluation": {},
        "errorBudget": {},
        "alerting": {},
        "remediation": {},
        "notifications": [{"name": "chat", "secretRef": {"name": "hook"}}],
    },
    api.MAINTENANCE_WINDOW: {
        "schedule": "0 3 * * *",
        "duration": "1h",
        "tasks": [
            {"name": "backup", "type": "Backup", "backup": {"destination": "file:///b", "retention": {}}},
            {"name": "eval", "type": "Evaluate", "evaluate": {}},
            {"name": "drift", "type": "DriftCheck", "driftCheck": {}},
        ],
    },
}
# The live quality watch's parts of both specs are parsed by core.slo.policy (its defaults written
# once there); the pair is what the operator reads.
PARSERS: dict[str, Callable[[Any], Any]] = {
    api.RANKING_MODEL: lambda s: (parse_ranking_model_spec(s), parse_post_promotion(s.get("rollout"))),
    api.QUALITY_SLO: lambda s: (parse_quality_slo_spec(s), parse_live_slo(s)),
    api.MAINTENANCE_WINDOW: parse_maintenance_window_spec,
}


def same(value: Any) -> Any:
    return value


def duration(value: Any) -> float:
    return parse_duration(value)


def rollout_of(value: Any) -> RolloutSpec:
    return parse_ranking_model_spec({**BASE[api.RANKING_MODEL], "rollout": value}).rollout


def comparison_of(value: Any) -> Comparison:
    objective = {"name": "n", "metric": "ndcg_at_3", "comparison": value}
    return parse_quality_slo_spec({"objectives": [objective]}).objectives[0].comparison


def retention_of(value: Any) -> BackupRetention:
    task = {"name": "b", "type": "Backup", "backup": {"destination": "file:///b", "retention": value}}
    parsed = parse_maintenance_window_spec({"schedule": "@daily", "duration": "1h", "tasks": [task]})
    backup = parsed.tasks[0].backup
    assert backup is not None
    return backup.retention


def live_of(key: str, attr: str) -> Callable[[Any], Any]:
    return lambda value: getattr(parse_live_slo({**BASE[api.QUALITY_SLO], key: value}), attr)


def routing_of(value: Any) -> TrafficRouting:
    return rollout_of({"trafficRouting": value}).traffic_routing


# (kind, CRD path) -> (dataclass, field, how the CRD value reads as the field's value)
RM, SLO, MW = api.RANKING_MODEL, api.QUALITY_SLO, api.MAINTENANCE_WINDOW
FIELDS: dict[tuple[str, str], tuple[type, str, Callable[[Any], Any]]] = {
    (RM, "spec.serving.replicas"): (ServingSpec, "replicas", same),
    (RM, "spec.serving.port"): (ServingSpec, "port", same),
    (RM, "spec.rollout"): (RankingModelSpec, "rollout", rollout_of),
    (RM, "spec.rollout.experiment.weight"): (ExperimentSpec, "weight", same),
    (RM, "spec.rollout.experiment.duration"): (ExperimentSpec, "duration_s", duration),
    (RM, "spec.rollout.experiment.alpha"): (ExperimentSpec, "alpha", same),
    (RM, "spec.rollout.experiment.minimumEffect"): (ExperimentSpec, "minimum_effect", same),
    (RM, "spec.rollout.experiment.earlyStopping"): (ExperimentSpec, "early_stopping", same),
    (RM, "spec.rollout.experiment.onInconclusive"): (ExperimentSpec, "on_inconclusive", same),
    (RM, "spec.rollout.trafficRouting"): (RolloutSpec, "traffic_routing", routing_of),
    (RM, "spec.rollout.analysis.interval"): (AnalysisSpec, "interval_s", duration),
    (RM, "spec.rollout.analysis.failureLimit"): (AnalysisSpec, "failure_limit", same),
    (RM, "spec.rollout.analysis.inconclusiveLimit"): (
        AnalysisSpec,
        "inconclusive_limit",
        same,
    ),
    (RM, "spec.rollout.progressDeadline"): (RolloutSpec, "progress_deadline_s", duration),
    (RM, "spec.rollout.autoRollback"): (RolloutSpec, "auto_rollback", same),
    (RM, "spec.retrain.triggers.drift.psiThreshold"): (DriftThresholds, "psi_threshold", same),
    (RM, "spec.retrain.triggers.drift.pValue"): (DriftThresholds, "p_value", same),
    (RM, "spec.retrain.triggers.relativeQualityDrop.maxDrop"): (
        QualityDropTrigger,
        "max_drop",
        same,
    ),
    (RM, "spec.retrain.triggers.relativeQualityDrop.window"): (
        QualityDropTrigger,
        "window_s",
        duration,
    ),
    (RM, "spec.retrain.promotionGate.minImprovement"): (
        PromotionGate,
        "min_improvement",
        same,
    ),
    (RM, "spec.retrain.promotionGate.mode"): (PromotionGate, "mode", same),
    (RM, "spec.retrain.triggers.timeZone"): (RetrainTriggers, "time_zone", same),
    (RM, "spec.retrain.triggers.newData.fraction"): (NewDataTrigger, "fraction", same),
    (RM, "spec.rollout.postPromotion.window"): (PostPromotion, "window_s", duration),
    (RM, "spec.rollout.postPromotion.action"): (PostPromotion, "action", same),
    (SLO, "spec.objectives[].direction"): (Objective, "direction", same),
    (SLO, "spec.evaluation"): (LiveSLO, "evaluation", live_of("evaluation", "evaluation")),
    (SLO, "spec.evaluation.interval"): (EvaluationPolicy, "interval_s", duration),
    (SLO, "spec.evaluation.window"): (EvaluationPolicy, "window_s", duration),
    (SLO, "spec.evaluation.minSamples"): (EvaluationPolicy, "min_samples", same),
    (SLO, "spec.errorBudget"): (LiveSLO, "budget", live_of("errorBudget", "budget")),
    (SLO, "spec.errorBudget.period"): (BudgetPolicy, "period_s", duration),
    (SLO, "spec.errorBudget.compliance"): (BudgetPolicy, "compliance", same),
    (SLO, "spec.alerting"): (LiveSLO, "alerting", live_of("alerting", "alerting")),
    (SLO, "spec.alerting.for"): (AlertingPolicy, "for_s", duration),
    (SLO, "spec.remediation"): (LiveSLO, "remediation", live_of("remediation", "remediation")),
    (SLO, "spec.remediation.settle"): (RemediationPolicy, "settle_s", duration),
    (SLO, "spec.remediation.cooldown"): (RemediationPolicy, "cooldown_s", duration),
    (SLO, "spec.remediation.maxAttempts"): (RemediationPolicy, "max_attempts", same),
    (SLO, "spec.notifications[].secretRef.key"): (NotificationTarget, "secret_key", same),
    (SLO, "spec.objectives[].comparison"): (Objective, "comparison", comparison_of),
    (SLO, "spec.objectives[].comparison.maxDegradation"): (Comparison, "max_degradation", same),
    (SLO, "spec.objectives[].comparison.alpha"): (Comparison, "alpha", same),
    (SLO, "spec.objectives[].comparison.minSamples"): (Comparison, "min_samples", same),
    (MW, "spec.timeZone"): (MaintenanceWindowSpec, "time_zone", same),
    (MW, "spec.suspend"): (MaintenanceWindowSpec, "suspend", same),
    (MW, "spec.rolloutPolicy"): (MaintenanceWindowSpec, "rollout_policy", same),
    (MW, "spec.concurrencyPolicy"): (MaintenanceWindowSpec, "concurrency_policy", same),
    (MW, "spec.tasks[].backup.retention"): (BackupTask, "retention", retention_of),
    (MW, "spec.tasks[].backup.retention.daily"): (BackupRetention, "daily", same),
    (MW, "spec.tasks[].backup.retention.weekly"): (BackupRetention, "weekly", same),
    (MW, "spec.tasks[].backup.retention.monthly"): (BackupRetention, "monthly", same),
    (MW, "spec.tasks[].backup.verify"): (BackupTask, "verify", same),
    (MW, "spec.tasks[].backup.keep"): (BackupTask, "keep", same),
    (MW, "spec.tasks[].evaluate.split"): (EvaluateTask, "split", same),
    (MW, "spec.tasks[].driftCheck.psiThreshold"): (DriftCheckTask, "psi_threshold", same),
    (MW, "spec.tasks[].driftCheck.pValue"): (DriftCheckTask, "p_value", same),
    (MW, "spec.tasks[].driftCheck.minSamples"): (DriftCheckTask, "min_samples", same),
}


def load(kind: str) -> dict[str, Any]:
    return yaml.safe_load(CRDS[kind].read_text())


def schema(kind: str) -> dict[str, Any]:
    return load(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def crd_defaults(kind: str) -> dict[str, Any]:
    """CRD path (``spec.tasks[].backup.verify``) -> default, for every defaulted field under spec."""
    out: dict[str, Any] = {}

    def walk(node: Any, path: str) -> None:
        if not isinstance(node, dict):
            return
        if "default" in node:
            out[path] = node["default"]
        for key, child in (node.get("properties") or {}).items():
            walk(child, f"{path}.{key}")
        walk(node.get("items"), f"{path}[]")

    walk(schema(kind)["properties"]["spec"], "spec")
    return out


ALL_DEFAULTS = [(kind, path, value) for kind in CRDS for path, value in crd_defaults(kind).items()]
IDS = [f"{kind}:{path}" for kind, path, _ in ALL_DEFAULTS]


def test_every_crd_default_has_a_field() -> None:
    assert {(kind, path) for kind, path, _ in ALL_DEFAULTS} == set(FIELDS)


@pytest.mark.parametrize(("kind", "path", "value"), ALL_DEFAULTS, ids=IDS)
def test_dataclass_default_is_the_crd_default(kind: str, path: str, value: Any) -> None:
    cls, name, read = FIELDS[(kind, path)]
    assert default(cls, name) == read(copy.deepcopy(value))


def with_value(spec: dict[str, Any], path: str, value: Any = ...) -> dict[str, Any]:
    """A copy of ``spec`` with the field at ``path`` set to ``value`` (removed when not given)."""
    out = copy.deepcopy(spec)
    node: Any = out
    parts = path.removeprefix("spec.").split(".")
    for part in parts[:-1]:
        key, many = part.removesuffix("[]"), part.endswith("[]")
        node = node[key][0] if many else node.setdefault(key, {})
    if value is ...:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = copy.deepcopy(value)
    return out


@pytest.mark.parametrize(("kind", "path", "value"), ALL_DEFAULTS, ids=IDS)
def test_parser_reads_an_absent_field_as_the_crd_default(kind: str, path: str, value: Any) -> None:
    parse = PARSERS[kind]
    assert parse(with_value(BASE[kind], path, value)) == parse(with_value(BASE[kind], path))


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_api_names_are_the_crds(kind: str) -> None:
    crd = load(kind)
    group, version, plural = api.resource(kind)
    assert (crd["spec"]["group"], crd["spec"]["names"]["kind"], crd["spec"]["names"]["plural"]) == (
        group,
        kind,
        plural,
    )
    assert crd["metadata"]["name"] == f"{plural}.{group}"
    assert [v["name"] for v in crd["spec"]["versions"] if v["storage"]] == [version]
    assert f"{group}/{version}" == api.API_VERSION


def test_semver_pattern_is_the_crds_in_operator_and_serving() -> None:
    version = schema(api.RANKING_MODEL)["properties"]["spec"]["properties"]["model"]["properties"]["version"]
    assert SEMVER_PATTERN == version["pattern"] == SERVING_SEMVER_PATTERN
    for good in ("1.0.0", "0.1.2-rc.1", "1.2.3+build.5", "10.20.30-alpha.beta"):
        assert re.fullmatch(SEMVER_PATTERN, good)
    for bad in ("v1.0.0", "1.01.0", "1.0", "1.0.0-", "1.0.0+", "1.0.0\n"):
        assert not re.fullmatch(SEMVER_PATTERN, bad)
