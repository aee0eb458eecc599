"""One QualitySLO evaluation: per-model states from grouped results, NoData, budget, changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rankops.operator.core.slo.evaluate import ModelTarget, evaluate
from rankops.operator.core.slo.policy import parse_live_slo

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LIVE = parse_live_slo(
    {
        "objectives": [
            {
                "name": "ndcg",
                "metric": "ndcg_at_3",
                "severityTiers": [
                    {"name": "P0", "below": 0.5},
                    {"name": "P1", "below": 0.6},
                    {"name": "P2", "below": 0.7},
                ],
            },
            {
                "name": "errors",
                "metric": "error_rate",
                "target": 0.001,
                "breach": 0.01,
                "direction": "lowerIsBetter",
            },
        ],
        "errorBudget": {"period": "1h", "compliance": 0.9},
    }
)
TARGETS = [ModelTarget("search", "1.1.0"), ModelTarget("news", "2.0.0", canary_version="2.1.0")]


def test_states_per_model_from_one_result_per_objective() -> None:
    results = {
        "ndcg": {
            ("search", "1.1.0", "stable"): (0.41, 300.0),
            ("search", "1.0.0", "stable"): (0.90, 300.0),  # an old pod still reporting: not this revision
            ("news", "2.0.0", "stable"): (0.80, 300.0),
            ("news", "2.1.0", "canary"): (0.62, 50.0),
        },
        "errors": {("search", "1.1.0", "stable"): (0.0, 300.0), ("news", "2.0.0", "stable"): (0.05, 5.0)},
    }
    ev = evaluate(LIVE, TARGETS, results, None, T0)
    search, news = ev.model("search"), ev.model("news")
    assert search is not None and news is not None
    assert [(o.name, o.state, o.severity) for o in search.objectives] == [
        ("ndcg", "Breached", "P0"),
        ("errors", "Met", None),
    ]
    assert search.observation().describe() == "ndcg Breached at 0.41 (P0)"
    assert search.healthy is False
    # news: errors has 5 samples (< 20): NoData, never Met; the canary is reported apart
    assert [o.state for o in news.objectives] == ["Met", "NoData"] and news.state == "NoData"
    assert news.healthy is None and news.observation().state == "NoData"
    assert [(o.name, o.state) for o in news.canary] == [("ndcg", "Breached"), ("errors", "NoData")]
    status = ev.status()
    assert status["state"] == "Breached" and [m["model"] for m in status["models"]] == ["news", "search"]
    assert status["models"][0]["canary"]["version"] == "2.1.0"
    assert status["models"][1]["objectives"][0] == {
        "name": "ndcg",
        "state": "Breached",
        "value": 0.41,
        "samples": 300.0,
        "severity": "P0",
        "errorBudgetRemaining": 1.0,
        "breaches": [{"from": "2026-03-01T12:00:00Z"}],
    }
    assert set(ev.changes) == {
        ("search", "ndcg", None, "Breached"),
        ("search", "errors", None, "Met"),
        ("news", "ndcg", None, "Met"),
        ("news", "errors", None, "NoData"),
    }


def test_prometheus_down_is_no_data_for_everyone() -> None:
    ev = evaluate(LIVE, TARGETS, {"ndcg": None, "errors": None}, None, T0, "Prometheus unreachable")
    assert all(o.state == "NoData" and o.value is None for m in ev.models for o in m.objectives)
    assert ev.state == "NoData" and ev.status()["message"] == "Prometheus unreachable"
    assert all(m.observation().state == "NoData" for m in ev.models)


def test_budget_and_changes_carry_over_from_the_previous_status() -> None:
    breached = {"ndcg": {("search", "1.1.0", "stable"): (0.41, 300.0)}, "errors": {}}
    first = evaluate(LIVE, TARGETS[:1], breached, None, T0)
    later = T0 + timedelta(minutes=3)
    second = evaluate(LIVE, TARGETS[:1], breached, first.status(), later)
    assert second.changes == ()  # the same states: no Events
    (ndcg, _) = second.models[0].objectives
    assert ndcg.budget_remaining is not None and abs(ndcg.budget_remaining - 0.5) < 1e-9  # 180 s of 360 s
    healed = {"ndcg": {("search", "1.1.0", "stable"): (0.8, 300.0)}, "errors": {}}
    third = evaluate(LIVE, TARGETS[:1], healed, second.status(), later + timedelta(minutes=1))
    assert third.changes == (("search", "ndcg", "Breached", "Met"),)
    spent = third.models[0].objectives[0].budget_remaining
    assert spent is not None and abs(spent - 1 / 3) < 1e-9  # breached 12:00-12:04, 240 s of 360 s
    assert third.models[0].observation().state == "NoData"  # errors has no data at all


def test_an_acting_breach_decides_before_a_recording_one() -> None:
    live = parse_live_slo(
        {
            "objectives": [
                {"name": "ndcg", "metric": "ndcg_at_3", "severityTiers": [{"name": "P2", "below": 0.7}]},
                {
                    "name": "latency",
                    "metric": "latency_p95",
                    "target": 0.5,
                    "breach": 1.0,
                    "direction": "lowerIsBetter",
                },
            ]
        }
    )
    results = {
        "ndcg": {("m", "1", "stable"): (0.62, 100.0)},
        "latency": {("m", "1", "stable"): (2.5, 100.0)},
    }
    ev = evaluate(live, [ModelTarget("m", "1")], results, None, T0)
    obs = ev.models[0].observation()
    assert (obs.objective, obs.acts) == ("latency", True)
