"""Spec parsing: defaults, typed values, and errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest

from rankops.operator.core.spec import (
    AnalysisSpec,
    BackupRetention,
    BackupTask,
    Comparison,
    DriftCheckTask,
    DriftTrigger,
    EvaluateTask,
    LabelSelector,
    RolloutSpec,
    SpecError,
    Step,
    TrafficRouting,
    parse_maintenance_window_spec,
    parse_quality_slo_spec,
    parse_ranking_model_spec,
)

MINIMAL: dict[str, Any] = {"model": {"version": "1.0.0", "uri": "file:///m"}, "serving": {"image": "img"}}


def test_minimal_defaults() -> None:
    spec = parse_ranking_model_spec(MINIMAL)
    assert spec.serving.replicas == 2 and spec.serving.port == 8080
    assert spec.rollout == RolloutSpec(
        steps=(Step(weight=100),),
        traffic_routing=TrafficRouting(),
        analysis=None,
        progress_deadline_s=600.0,
        auto_rollback=True,
    )
    assert spec.retrain is None


def test_full_rollout() -> None:
    spec = parse_ranking_model_spec(
        {
            **MINIMAL,
            "rollout": {
                "steps": [
                    {"weight": 10, "pause": "1m30s"},
                    {"weight": 50, "analysis": False},
                    {"weight": 100},
                ],
                "trafficRouting": {"gatewayAPI": {"httpRoute": "r", "gateway": "g"}},
                "analysis": {"sloRef": {"name": "q"}, "interval": "15s", "minSamples": 20},
                "progressDeadline": "5m",
                "autoRollback": False,
            },
        }
    )
    r = spec.rollout
    assert r.steps[0] == Step(weight=10, pause_s=90.0)
    assert r.traffic_routing == TrafficRouting(kind="gatewayAPI", http_route="r", gateway="g")
    assert r.analysis == AnalysisSpec(
        slo_ref="q", interval_s=15.0, failure_limit=2, inconclusive_limit=3, min_samples=20
    )
    assert r.progress_deadline_s == 300.0 and r.auto_rollback is False
    assert [r.step_requires_analysis(i) for i in range(3)] == [True, False, False]
    assert r.looks_per_step == 4


def test_final_step_analysis_only_when_asked() -> None:
    spec = parse_ranking_model_spec(
        {
            **MINIMAL,
            "rollout": {"steps": [{"weight": 100, "analysis": True}], "analysis": {"sloRef": {"name": "q"}}},
        }
    )
    assert spec.rollout.step_requires_analysis(0)


@pytest.mark.parametrize(
    ("mutation", "path"),
    [
        ({"model": {"version": "1.0", "uri": "u"}}, "spec.model.version"),
        ({"model": {"version": "1.0.0"}}, "spec.model.uri"),
        ({"serving": {}}, "spec.serving.image"),
        ({"serving": {"image": "i", "replicas": 0}}, "spec.serving.replicas"),
        ({"serving": {"image": "i", "replicas": True}}, "spec.serving.replicas"),
        ({"serving": {"image": "i", "env": [{"name": "RANKOPS_X"}]}}, "spec.serving.env[0].name"),
        ({"rollout": {"steps": []}}, "spec.rollout.steps"),
        ({"rollout": {"steps": [{"weight": 50}]}}, "spec.rollout.steps"),
        ({"rollout": {"steps": [{"weight": 150}]}}, "spec.rollout.steps[0].weight"),
        (
            {"rollout": {"steps": [{"weight": 60}, {"weight": 40}, {"weight": 100}]}},
            "spec.rollout.steps[1].weight",
        ),
        ({"rollout": {"steps": [{"weight": 100, "pause": "soon"}]}}, "spec.rollout.steps[0].pause"),
        (
            {"rollout": {"trafficRouting": {"gatewayAPI": {}}}},
            "spec.rollout.trafficRouting.gatewayAPI.httpRoute",
        ),
        (
            {"rollout": {"trafficRouting": {"replicaRatio": {}, "gatewayAPI": {"httpRoute": "r"}}}},
            "spec.rollout.trafficRouting",
        ),
        ({"rollout": {"analysis": {}}}, "spec.rollout.analysis.sloRef"),
        (
            {"rollout": {"analysis": {"sloRef": {"name": "q"}, "failureLimit": 0}}},
            "spec.rollout.analysis.failureLimit",
        ),
        (
            {"rollout": {"analysis": {"sloRef": {"name": "q"}, "interval": "0s"}}},
            "spec.rollout.analysis.interval",
        ),
        ({"rollout": {"autoRollback": "yes"}}, "spec.rollout.autoRollback"),
    ],
)
def test_errors_name_the_field(mutation: dict[str, Any], path: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_ranking_model_spec({**MINIMAL, **mutation})
    assert info.value.path == path
    assert str(info.value).startswith(path + ":")


def test_missing_spec_sections() -> None:
    with pytest.raises(SpecError, match=r"spec\.model"):
        parse_ranking_model_spec({"serving": {"image": "i"}})
    with pytest.raises(SpecError, match="spec"):
        parse_ranking_model_spec(None)  # type: ignore[arg-type]


def test_slo_defaults_and_kinds() -> None:
    slo = parse_quality_slo_spec(
        {
            "objectives": [
                {
                    "name": "ndcg",
                    "metric": "ndcg_at_3",
                    "severityTiers": [{"name": "P0", "below": 0.5}],
                    "window": "10m",
                },
                {
                    "name": "err",
                    "metric": "error_rate",
                    "target": 0.001,
                    "breach": 0.01,
                    "direction": "lowerIsBetter",
                },
                {"name": "q", "metric": "ndcg_at_3", "query": "vector(1)"},
            ]
        }
    )
    ndcg, err, q = slo.objectives
    assert (ndcg.target, ndcg.breach, ndcg.comparison) == (0.70, 0.65, Comparison())
    assert ndcg.window_s == 600 and ndcg.kind == "summary" and ndcg.higher_is_better
    assert err.kind == "summary" and not err.higher_is_better
    assert q.kind == "value"
    assert slo.objective("err") is err
    with pytest.raises(KeyError):
        slo.objective("nope")


@pytest.mark.parametrize(
    ("objective", "path"),
    [
        ({"name": "a", "metric": "mrr"}, "spec.objectives[0].metric"),
        ({"name": "a", "metric": "custom", "target": 1, "breach": 0}, "spec.objectives[0].query"),
        ({"name": "a", "metric": "latency_p95"}, "spec.objectives[0].target"),
        ({"name": "a", "metric": "ndcg_at_3", "breach": 0.8}, "spec.objectives[0].breach"),
        (
            {
                "name": "a",
                "metric": "error_rate",
                "target": 0.01,
                "breach": 0.001,
                "direction": "lowerIsBetter",
            },
            "spec.objectives[0].breach",
        ),
        ({"name": "a", "metric": "ndcg_at_3", "direction": "up"}, "spec.objectives[0].direction"),
        (
            {"name": "a", "metric": "ndcg_at_3", "comparison": {"alpha": 0.7}},
            "spec.objectives[0].comparison.alpha",
        ),
        (
            {"name": "a", "metric": "ndcg_at_3", "comparison": {"maxDegradation": -1}},
            "spec.objectives[0].comparison.maxDegradation",
        ),
        (
            {"name": "a", "metric": "ndcg_at_3", "severityTiers": [{"name": "P0"}]},
            "spec.objectives[0].severityTiers[0]",
        ),
    ],
)
def test_slo_errors_name_the_field(objective: dict[str, Any], path: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_quality_slo_spec({"objectives": [objective]})
    assert info.value.path == path


def test_slo_duplicate_and_empty() -> None:
    with pytest.raises(SpecError, match=r"spec.objectives\[1\].name"):
        parse_quality_slo_spec({"objectives": [{"name": "a", "metric": "ndcg_at_3"}] * 2})
    with pytest.raises(SpecError, match=r"spec\.objectives"):
        parse_quality_slo_spec({"objectives": []})


# --------------------------------------------------------------------------- retrain and MaintenanceWindow

WINDOW: dict[str, Any] = {"schedule": "0 3 * * *", "duration": "2h"}


def test_retrain_is_typed_with_defaults() -> None:
    spec = parse_ranking_model_spec(
        {
            **MINIMAL,
            "retrain": {
                "triggers": {"drift": {"features": ["query_length"]}, "schedule": "@weekly"},
                "trainer": {"template": {"spec": {}}, "outputUri": "file:///out"},
                "promotionGate": {"mode": "Automatic", "minGoldenNdcgAt3": 0.7},
            },
        }
    )
    assert spec.retrain is not None
    triggers = spec.retrain.triggers
    assert triggers.drift == DriftTrigger(psi_threshold=0.2, p_value=0.01, features=("query_length",))
    assert triggers.relative_quality_drop is None and triggers.schedule == "@weekly"
    assert spec.retrain.trainer.template == {"spec": {}} and spec.retrain.trainer.output_uri == "file:///out"
    assert spec.retrain.promotion_gate.mode == "Automatic"
    assert spec.retrain.promotion_gate.min_golden_ndcg_at_3 == 0.7
    assert spec.retrain.promotion_gate.min_improvement == 0.0


@pytest.mark.parametrize(
    ("retrain", "path"),
    [
        ({"triggers": {"schedule": "every tuesday"}}, "spec.retrain.triggers.schedule"),
        ({"promotionGate": {"mode": "Yolo"}}, "spec.retrain.promotionGate.mode"),
        (
            {"triggers": {"relativeQualityDrop": {"window": "soon"}}},
            "spec.retrain.triggers.relativeQualityDrop.window",
        ),
    ],
)
def test_retrain_errors_name_the_field(retrain: dict[str, Any], path: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_ranking_model_spec({**MINIMAL, "retrain": retrain})
    assert info.value.path == path


def test_maintenance_window_defaults_and_tasks() -> None:
    spec = parse_maintenance_window_spec(
        {
            **WINDOW,
            "selector": {"matchLabels": {"team": "search"}},
            "tasks": [
                {"name": "backup", "type": "Backup", "backup": {"destination": "file:///b"}},
                {"name": "eval", "type": "Evaluate", "timeout": "30m", "evaluate": {"data": "file:///d"}},
                {"name": "drift", "type": "DriftCheck", "driftCheck": {"psiThreshold": 0.3}},
            ],
        }
    )
    assert (spec.schedule, spec.duration_s, spec.time_zone, spec.suspend) == (
        "0 3 * * *",
        7200.0,
        "UTC",
        False,
    )
    assert (spec.rollout_policy, spec.concurrency_policy) == ("Always", "Forbid")
    backup, evaluate, drift = spec.tasks
    assert backup.backup == BackupTask(destination="file:///b", retention=BackupRetention(), verify=True)
    assert evaluate.timeout_s == 1800.0 and evaluate.evaluate == EvaluateTask(data="file:///d", split="test")
    assert drift.drift_check == DriftCheckTask(psi_threshold=0.3, p_value=0.05, min_samples=200)
    assert spec.selector.matches({"team": "search", "x": "y"}) and not spec.selector.matches({"team": "ads"})


def test_label_selector_expressions() -> None:
    spec = parse_maintenance_window_spec(
        {
            **WINDOW,
            "selector": {
                "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["gold", "silver"]},
                    {"key": "frozen", "operator": "DoesNotExist"},
                ]
            },
        }
    )
    assert spec.selector.matches({"tier": "gold"})
    assert not spec.selector.matches({"tier": "bronze"})
    assert not spec.selector.matches({"tier": "gold", "frozen": "yes"})
    assert LabelSelector().matches({"anything": "goes"})


@pytest.mark.parametrize(
    ("window", "path"),
    [
        ({"schedule": "whenever", "duration": "1h"}, "spec.schedule"),
        ({"schedule": "@daily"}, "spec.duration"),
        ({"schedule": "@daily", "duration": "1h", "timeZone": "Mars/Olympus"}, "spec.timeZone"),
        ({**WINDOW, "rolloutPolicy": "Sometimes"}, "spec.rolloutPolicy"),
        ({**WINDOW, "tasks": [{"name": "b", "type": "Backup"}]}, "spec.tasks[0].backup"),
        (
            {**WINDOW, "tasks": [{"name": "b", "type": "Evaluate"}, {"name": "b", "type": "Evaluate"}]},
            "spec.tasks[1].name",
        ),
        (
            {
                **WINDOW,
                "tasks": [
                    {
                        "name": "b",
                        "type": "Backup",
                        "backup": {"destination": "x", "retention": {"daily": -1}},
                    }
                ],
            },
            "spec.tasks[0].backup.retention.daily",
        ),
        (
            {**WINDOW, "selector": {"matchExpressions": [{"key": "k", "operator": "In"}]}},
            "spec.selector.matchExpressions[0].values",
        ),
    ],
)
def test_maintenance_window_errors_name_the_field(window: dict[str, Any], path: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_maintenance_window_spec(window)
    assert info.value.path == path
