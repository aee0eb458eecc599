"""Spec parsing: defaults, typed values, and errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest

from rankops.operator.core.models import (
    AnalysisSpec,
    Comparison,
    RolloutSpec,
    SpecError,
    Step,
    TrafficRouting,
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
