"""QualitySLO core: objective state with sample counts, grouped PromQL, policy parsing, budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rankops.operator.core.slo.budget import MAX_SPANS, BreachSpans, breached_seconds, record, remaining
from rankops.operator.core.slo.objectives import (
    BUILTIN_METRICS,
    DEFAULT_OBJECTIVES,
    default_objective,
    grouped_queries,
    models_regex,
)
from rankops.operator.core.slo.policy import BudgetPolicy, parse_live_slo, parse_post_promotion
from rankops.operator.core.slo.state import ObjectiveState, acts_at_once, assess, worst
from rankops.operator.core.spec import Objective, SpecError

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NDCG = default_objective("ndcg_at_3")


# --------------------------------------------------------------------------- state


@pytest.mark.parametrize(
    ("value", "samples", "expected"),
    [
        (0.75, 100, ObjectiveState("Met")),
        (0.68, 100, ObjectiveState("AtRisk", "P2")),
        (0.62, 100, ObjectiveState("Breached", "P2")),
        (0.55, 100, ObjectiveState("Breached", "P1")),
        (0.40, 100, ObjectiveState("Breached", "P0")),
        (0.40, 19, ObjectiveState("NoData")),  # too few samples: no verdict, and never Met
        (0.90, 0, ObjectiveState("NoData")),
        (None, 100, ObjectiveState("NoData")),
        (float("nan"), 100, ObjectiveState("NoData")),
        (0.40, None, ObjectiveState("Breached", "P0")),  # a custom query has no sample count
    ],
)
def test_assess_with_samples(value: float | None, samples: float | None, expected: ObjectiveState) -> None:
    assert assess(NDCG, value, samples, min_samples=20) == expected


@given(st.one_of(st.none(), st.floats(allow_nan=True)), st.floats(0, 1000))
def test_no_data_is_never_met(value: float | None, samples: float) -> None:
    state = assess(NDCG, value, samples, min_samples=20)
    if value is None or value != value or samples < 20:
        assert state == ObjectiveState("NoData")


def test_urgency_and_worst() -> None:
    assert acts_at_once("P0") and acts_at_once("P1") and acts_at_once(None)
    assert not acts_at_once("P2") and not acts_at_once("P3")
    assert worst(["Met", "AtRisk", "NoData"]) == "NoData"
    assert worst(["Met", "Breached", "NoData"]) == "Breached"
    assert worst(["Met"]) == "Met" and worst([]) == "NoData"


# --------------------------------------------------------------------------- grouped queries


def test_defaults_cover_the_builtin_metrics() -> None:
    assert set(BUILTIN_METRICS) == {
        "ndcg_at_3",
        "golden_ndcg_at_3",
        "latency_p95",
        "error_rate",
        "cache_hit_rate",
        "drift_psi",
    }
    assert default_objective("latency_p95").breach == 1.0  # the runbook's p95 < 1 s
    assert default_objective("error_rate").breach == 0.01
    assert default_objective("cache_hit_rate").target == 0.80
    assert [t.below for t in NDCG.severity_tiers] == [0.50, 0.60, 0.70]


@pytest.mark.parametrize("objective", DEFAULT_OBJECTIVES, ids=lambda o: o.metric)
def test_one_query_per_objective_for_all_models(objective: Objective) -> None:
    q = grouped_queries(objective, ["search", "ads.v2", "news"], 600, namespace="prod")
    for text in (q.value, q.samples):
        assert text is not None
        # one matcher for all three models, grouped per series, never a per-model query
        assert 'model=~"ads\\\\.v2|news|search"' in text
        assert 'namespace="prod"' in text
        assert "by (model, version, track" in text
        assert text.count("(") == text.count(")")


def test_shares_count_a_window_without_errors_as_zero() -> None:
    q = grouped_queries(default_objective("error_rate"), ["m"], 60)
    assert 'code=~"5.."' in q.value and " or " in q.value and "* 0" in q.value
    assert "[60s]" in q.value
    hits = grouped_queries(default_objective("cache_hit_rate"), ["m"], 60)
    assert 'result="hit"' in hits.value


def test_objective_window_wins_over_the_slo_default() -> None:
    windowed = Objective("n", "ndcg_at_3", 0.7, 0.65, window_s=30)
    assert "[30s]" in grouped_queries(windowed, ["m"], 600).value


def test_custom_queries() -> None:
    custom = Objective(
        "c", "custom", 1, 0, query='max by (model, version, track) (x{model=~"$models"}[$window])'
    )
    q = grouped_queries(custom, ["a", "b"], 120)
    assert q.value == 'max by (model, version, track) (x{model=~"a|b"}[120s])' and q.samples is None
    per_track = Objective("c", "custom", 1, 0, query='x{model="$model"}')
    with pytest.raises(ValueError, match=r"\$models"):
        grouped_queries(per_track, ["a"], 60)


def test_models_regex() -> None:
    assert models_regex(None) == ".+"
    assert models_regex(["b", "a", "a"]) == "a|b"
    with pytest.raises(ValueError):
        models_regex([])


# --------------------------------------------------------------------------- policy


def test_parse_live_slo_defaults_and_new_metrics() -> None:
    slo = parse_live_slo(
        {
            "objectives": [
                {"name": "ndcg", "metric": "ndcg_at_3"},
                {"name": "hits", "metric": "cache_hit_rate"},
            ]
        }
    )
    assert slo.evaluation.interval_s == 60 and slo.evaluation.min_samples == 20
    assert slo.remediation.max_attempts == 2 and slo.remediation.settle_s == 30
    assert slo.budget.allowed_breach_s == pytest.approx(864.0)
    hits = slo.objectives[1]
    assert (hits.metric, hits.target, hits.breach, hits.query) == ("cache_hit_rate", 0.80, 0.60, None)
    assert slo.window_s(hits) == 600


def test_parse_live_slo_full() -> None:
    slo = parse_live_slo(
        {
            "objectives": [
                {"name": "psi", "metric": "drift_psi", "direction": "lowerIsBetter", "breach": 0.3}
            ],
            "evaluation": {"interval": "15s", "window": "5m", "minSamples": 5},
            "errorBudget": {"period": "1h", "compliance": 0.9},
            "alerting": {"for": "30s", "severityFor": {"P0": "0s"}, "labels": {"team": "search"}},
            "remediation": {"settle": "10s", "cooldown": "5m", "maxAttempts": 3, "qualityThreshold": 0.6},
            "notifications": [{"name": "slack", "secretRef": {"name": "hook"}, "events": ["Rollback"]}],
        }
    )
    assert slo.objectives[0].breach == 0.3 and slo.objectives[0].direction == "lowerIsBetter"
    assert slo.evaluation.interval_s == 15 and slo.budget.allowed_breach_s == pytest.approx(360)
    assert slo.alerting.severity_for_s == {"P0": 0.0} and slo.alerting.labels == {"team": "search"}
    assert slo.remediation.quality_threshold == 0.6 and slo.remediation.max_attempts == 3
    (target,) = slo.notifications
    assert (target.secret_name, target.secret_key, target.events) == ("hook", "url", frozenset({"Rollback"}))


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"objectives": []}, "spec.objectives"),
        ({"objectives": [{"name": "p", "metric": "drift_psi"}]}, "spec.objectives[0].direction"),
        (
            {"objectives": [{"name": "h", "metric": "cache_hit_rate", "breach": 0.9}]},
            "spec.objectives[0].breach",
        ),
        (
            {"objectives": [{"name": "n", "metric": "ndcg_at_3"}], "evaluation": {"interval": "soon"}},
            "spec.evaluation.interval",
        ),
        (
            {"objectives": [{"name": "n", "metric": "ndcg_at_3"}], "remediation": {"maxAttempts": 0}},
            "spec.remediation.maxAttempts",
        ),
        (
            {"objectives": [{"name": "n", "metric": "ndcg_at_3"}], "errorBudget": {"compliance": 1}},
            "spec.errorBudget.compliance",
        ),
        (
            {
                "objectives": [{"name": "n", "metric": "ndcg_at_3"}],
                "notifications": [{"name": "x", "secretRef": {}}],
            },
            "spec.notifications[0].secretRef.name",
        ),
        (
            {
                "objectives": [{"name": "n", "metric": "ndcg_at_3"}],
                "notifications": [{"name": "x", "secretRef": {"name": "s"}, "events": ["Lunch"]}],
            },
            "spec.notifications[0].events",
        ),
    ],
)
def test_parse_live_slo_errors_name_the_field(spec: dict[str, object], path: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_live_slo(spec)
    assert info.value.path == path


def test_parse_post_promotion() -> None:
    assert parse_post_promotion({}) is None
    pp = parse_post_promotion({"postPromotion": {}})
    assert pp is not None and (pp.window_s, pp.action) == (3600, "Rollback")
    pp = parse_post_promotion({"postPromotion": {"window": "15m", "action": "Remediate"}})
    assert pp is not None and (pp.window_s, pp.action) == (900, "Remediate")
    with pytest.raises(SpecError, match="Rollback or Remediate"):
        parse_post_promotion({"postPromotion": {"action": "Pray"}})


# --------------------------------------------------------------------------- budget


def test_budget_spends_breached_time_only() -> None:
    budget = BudgetPolicy(period_s=3600, compliance=0.9)  # 360 s of breach allowed per hour
    spans = BreachSpans()
    spans = record(spans, T0, True, budget.period_s)
    assert remaining(spans, T0, budget) == 1.0
    spans = record(spans, T0 + timedelta(seconds=60), True, budget.period_s)
    spans = record(spans, T0 + timedelta(seconds=180), False, budget.period_s)
    assert breached_seconds(spans, T0 + timedelta(seconds=600), budget.period_s) == 180
    assert remaining(spans, T0 + timedelta(seconds=600), budget) == pytest.approx(0.5)
    # the span leaves the period an hour later and the budget is whole again
    later = T0 + timedelta(hours=1, seconds=181)
    assert remaining(record(spans, later, False, budget.period_s), later, budget) == 1.0
    assert BreachSpans.from_status(spans.to_status()) == spans


def _reference_breached(history: list[tuple[datetime, bool]], now: datetime, period_s: float) -> float:
    """Breached seconds inside the period, straight from the definition."""
    horizon = now - timedelta(seconds=period_s)
    total = 0.0
    for i, (at, breached) in enumerate(history):
        if not breached:
            continue
        until = history[i + 1][0] if i + 1 < len(history) else now
        total += max(0.0, (min(until, now) - max(at, horizon)).total_seconds())
    return total


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 4000)), max_size=80))
def test_budget_invariants(evaluations: list[tuple[bool, int]]) -> None:
    budget = BudgetPolicy(period_s=7200, compliance=0.95)
    spans, now = BreachSpans(), T0
    history: list[tuple[datetime, bool]] = []
    merged = False
    for breached, step in evaluations:
        now += timedelta(seconds=step)
        history.append((now, breached))
        before = len(spans.spans) + 1
        spans = record(spans, now, breached, budget.period_s)
        merged = merged or before > MAX_SPANS
        assert len(spans.spans) <= MAX_SPANS
        assert 0.0 <= remaining(spans, now, budget) <= 1.0
        spent = breached_seconds(spans, now, budget.period_s)
        expected = _reference_breached(history, now, budget.period_s)
        # exact until spans had to merge; after that it errs towards spent, never towards healthy
        assert spent >= expected - 1e-6
        if not merged:
            assert spent == pytest.approx(expected)
    assert BreachSpans.from_status(spans.to_status()) == spans
