"""The judge: Welch non-inferiority from summary statistics, floors, no-data rules."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from rankops.operator.core.judge import judge, judge_objective, look_alpha
from rankops.operator.core.spec import Comparison, Objective
from rankops.operator.core.verdict import ObjectiveData, Outcome, TrackSummary, Verdict

NOW = datetime(2026, 3, 1, tzinfo=UTC)
NDCG = Objective(name="ndcg", metric="ndcg_at_3", target=0.70, breach=0.65)


def summary(mean: float, sd: float, n: int) -> TrackSummary:
    """A TrackSummary with exactly this sample mean and standard deviation."""
    total = mean * n
    squares = sd**2 * (n - 1) + n * mean**2
    return TrackSummary(n=n, total=total, squares_total=squares)


def data(c_mean: float, s_mean: float, n_c: int = 2000, n_s: int = 8000, sd: float = 0.25) -> ObjectiveData:
    return ObjectiveData(canary=summary(c_mean, sd, n_c), stable=summary(s_mean, sd, n_s))


# --------------------------------------------------------------------------- TrackSummary


def test_summary_statistics_match_numpy() -> None:
    rng = np.random.default_rng(3)
    x = rng.beta(2, 1, size=500)
    s = TrackSummary(n=len(x), total=float(x.sum()), squares_total=float((x**2).sum()))
    assert s.mean == pytest.approx(x.mean())
    assert s.variance == pytest.approx(x.var(ddof=1))


@pytest.mark.parametrize(
    "values",
    [
        (None, 1.0, 1.0),
        (10.0, None, 1.0),
        (10.0, 1.0, math.nan),
        (0.0, 0.0, 0.0),
        (-1.0, 0.0, 0.0),
        (math.inf, 1, 1),
    ],
)
def test_from_increases_without_data(values: tuple[float | None, float | None, float | None]) -> None:
    assert TrackSummary.from_increases(*values) is None


def test_variance_never_negative_from_rounding() -> None:
    s = TrackSummary(n=3, total=3 * 0.7, squares_total=3 * 0.49 - 1e-12)
    assert s.variance == 0.0


# --------------------------------------------------------------------------- summary objectives


def test_clearly_non_inferior_passes() -> None:
    r = judge_objective(NDCG, data(0.72, 0.71), alpha_look=0.05)
    assert r.outcome is Outcome.PASS and r.reason == "NonInferior"
    assert r.ci_lower is not None and r.ci_lower > -0.02
    assert r.p_value is not None and r.p_value < 0.05
    assert r.difference == pytest.approx(0.01)


def test_clearly_worse_fails() -> None:
    r = judge_objective(NDCG, data(0.68, 0.72), alpha_look=0.05)
    assert r.outcome is Outcome.FAIL and r.reason == "WorseThanStable"
    assert r.ci_upper is not None and r.ci_upper < -0.02


def test_small_difference_with_few_samples_is_inconclusive() -> None:
    r = judge_objective(NDCG, data(0.71, 0.72, n_c=60, n_s=300), alpha_look=0.05)
    assert r.outcome is Outcome.INCONCLUSIVE and r.reason == "NotSignificant"


def test_below_breach_fails_even_if_stable_is_as_bad() -> None:
    r = judge_objective(NDCG, data(0.55, 0.55), alpha_look=0.05)
    assert r.outcome is Outcome.FAIL and r.reason == "BreachedFloor"


def test_floor_needs_confidence() -> None:
    # mean below breach but too noisy to be sure: not a floor Fail, and never a Pass
    r = judge_objective(NDCG, data(0.64, 0.64, n_c=60, n_s=60, sd=0.3), alpha_look=0.05)
    assert r.outcome is Outcome.INCONCLUSIVE


def test_non_inferior_but_below_breach_is_not_a_pass() -> None:
    loose = Objective(
        name="ndcg", metric="ndcg_at_3", target=0.70, breach=0.65, comparison=Comparison(max_degradation=0.2)
    )
    r = judge_objective(loose, data(0.645, 0.66, n_c=50, n_s=5000, sd=0.3), alpha_look=0.05)
    assert r.outcome is Outcome.INCONCLUSIVE and r.reason == "BelowBreach"


@pytest.mark.parametrize(
    ("canary", "stable", "reason"),
    [
        (None, summary(0.7, 0.2, 100), "NoData"),
        (summary(0.7, 0.2, 49), summary(0.7, 0.2, 5000), "NotEnoughSamples"),
        (summary(0.9, 0.1, 5000), summary(0.7, 0.2, 49), "NotEnoughSamples"),
        (summary(0.9, 0.1, 5000), None, "NotEnoughSamples"),
    ],
)
def test_no_or_little_data_is_inconclusive(
    canary: TrackSummary | None, stable: TrackSummary | None, reason: str
) -> None:
    r = judge_objective(NDCG, ObjectiveData(canary=canary, stable=stable), alpha_look=0.05)
    assert r.outcome is Outcome.INCONCLUSIVE and r.reason == reason


def test_min_samples_override() -> None:
    d = data(0.75, 0.70, n_c=80, n_s=80, sd=0.05)
    assert judge_objective(NDCG, d, alpha_look=0.05).outcome is Outcome.PASS
    assert judge_objective(NDCG, d, alpha_look=0.05, min_samples=100).reason == "NotEnoughSamples"


def test_p_value_matches_scipy_welch() -> None:
    c, s = summary(0.71, 0.3, 400), summary(0.70, 0.25, 900)
    no_margin = Objective(
        name="ndcg", metric="ndcg_at_3", target=0.7, breach=0.1, comparison=Comparison(max_degradation=0.0)
    )
    r = judge_objective(no_margin, ObjectiveData(canary=c, stable=s), alpha_look=0.05)
    expected = stats.ttest_ind_from_stats(
        c.mean,
        math.sqrt(c.variance),
        c.n,
        s.mean,
        math.sqrt(s.variance),
        s.n,
        equal_var=False,
        alternative="greater",
    ).pvalue
    assert r.p_value == pytest.approx(expected, rel=1e-9)


def test_margin_shifts_the_null() -> None:
    c, s = summary(0.70, 0.3, 400), summary(0.71, 0.3, 900)
    r = judge_objective(NDCG, ObjectiveData(canary=c, stable=s), alpha_look=0.05)
    shifted_mean = c.mean + 0.02  # H0: canary - stable <= -0.02  <=>  (canary + 0.02) - stable <= 0
    expected = stats.ttest_ind_from_stats(
        shifted_mean,
        math.sqrt(c.variance),
        c.n,
        s.mean,
        math.sqrt(s.variance),
        s.n,
        equal_var=False,
        alternative="greater",
    ).pvalue
    assert r.p_value == pytest.approx(expected, rel=1e-9)


def test_lower_is_better_error_rate() -> None:
    errors = Objective(
        name="errors",
        metric="error_rate",
        target=0.001,
        breach=0.05,
        direction="lowerIsBetter",
        comparison=Comparison(max_degradation=0.002, min_samples=100),
    )

    def bernoulli(rate: float, n: int) -> TrackSummary:
        return TrackSummary(n=n, total=rate * n, squares_total=rate * n)

    worse = judge_objective(
        errors, ObjectiveData(canary=bernoulli(0.02, 20000), stable=bernoulli(0.001, 80000)), alpha_look=0.05
    )
    assert worse.outcome is Outcome.FAIL and worse.reason == "WorseThanStable"
    assert worse.difference is not None and worse.difference > 0
    assert worse.ci_lower is not None and worse.ci_lower > 0.002  # the canary's error rate is surely higher
    same = judge_objective(
        errors, ObjectiveData(canary=bernoulli(0.001, 20000), stable=bernoulli(0.001, 80000)), alpha_look=0.05
    )
    assert same.outcome is Outcome.PASS
    floor = judge_objective(
        errors, ObjectiveData(canary=bernoulli(0.2, 5000), stable=bernoulli(0.2, 5000)), alpha_look=0.05
    )
    assert floor.outcome is Outcome.FAIL and floor.reason == "BreachedFloor"


def test_zero_variance_is_decided_exactly() -> None:
    c = TrackSummary(n=100, total=80, squares_total=64)
    s = TrackSummary(n=100, total=70, squares_total=49)
    assert judge_objective(NDCG, ObjectiveData(canary=c, stable=s), alpha_look=0.05).outcome is Outcome.PASS
    assert judge_objective(NDCG, ObjectiveData(canary=s, stable=c), alpha_look=0.05).outcome is Outcome.FAIL


# --------------------------------------------------------------------------- value objectives


GOLDEN = Objective(name="golden", metric="golden_ndcg_at_3", target=0.70, breach=0.65)


@pytest.mark.parametrize(
    ("canary", "stable", "outcome", "reason"),
    [
        (0.72, 0.71, Outcome.PASS, "WithinThresholds"),
        (0.72, None, Outcome.PASS, "WithinThresholds"),
        (0.60, 0.60, Outcome.FAIL, "BreachedFloor"),
        (0.68, 0.75, Outcome.FAIL, "WorseThanStable"),
        (None, 0.75, Outcome.INCONCLUSIVE, "NoData"),
        (math.nan, 0.75, Outcome.INCONCLUSIVE, "NoData"),
    ],
)
def test_value_objective(canary: float | None, stable: float | None, outcome: Outcome, reason: str) -> None:
    r = judge_objective(GOLDEN, ObjectiveData(canary_value=canary, stable_value=stable), alpha_look=0.05)
    assert (r.outcome, r.reason) == (outcome, reason)


def test_latency_lower_is_better() -> None:
    latency = Objective(
        name="latency",
        metric="latency_p95",
        target=0.2,
        breach=0.5,
        direction="lowerIsBetter",
        comparison=Comparison(max_degradation=0.05),
    )
    assert (
        judge_objective(latency, ObjectiveData(canary_value=0.21, stable_value=0.2), alpha_look=0.05).outcome
        is Outcome.PASS
    )
    assert (
        judge_objective(latency, ObjectiveData(canary_value=0.3, stable_value=0.2), alpha_look=0.05).reason
        == "WorseThanStable"
    )
    assert (
        judge_objective(latency, ObjectiveData(canary_value=0.6), alpha_look=0.05).reason == "BreachedFloor"
    )


def test_custom_query_objective_is_value_judged() -> None:
    custom = Objective(name="c", metric="custom", target=1.0, breach=0.5, query="vector(1)")
    assert custom.kind == "value"
    assert judge_objective(custom, ObjectiveData(canary_value=0.9), alpha_look=0.05).outcome is Outcome.PASS


# --------------------------------------------------------------------------- verdicts


def test_verdict_combines_objectives() -> None:
    good = data(0.72, 0.71)
    objectives = [NDCG, GOLDEN]
    v = judge(objectives, {"ndcg": good, "golden": ObjectiveData(canary_value=0.72)}, now=NOW)
    assert v.outcome is Outcome.PASS and v.reason == "AllObjectivesPassed"
    v = judge(objectives, {"ndcg": good, "golden": ObjectiveData(canary_value=0.60)}, now=NOW)
    assert v.outcome is Outcome.FAIL and v.reason == "BreachedFloor"
    v = judge(objectives, {"ndcg": good}, now=NOW)
    assert v.outcome is Outcome.INCONCLUSIVE and v.reason == "NoData"


def test_query_error_is_metrics_unavailable_but_a_fail_still_fails() -> None:
    v = judge(
        [NDCG, GOLDEN],
        {"ndcg": ObjectiveData(error="connection refused"), "golden": ObjectiveData(canary_value=0.72)},
        now=NOW,
    )
    assert v.outcome is Outcome.INCONCLUSIVE and v.metrics_unavailable and v.reason == "MetricsUnavailable"
    v = judge(
        [NDCG, GOLDEN],
        {"ndcg": ObjectiveData(error="timeout"), "golden": ObjectiveData(canary_value=0.5)},
        now=NOW,
    )
    assert v.outcome is Outcome.FAIL and not v.metrics_unavailable


def test_no_objectives_is_inconclusive() -> None:
    assert judge([], {}, now=NOW).outcome is Outcome.INCONCLUSIVE


def test_unavailable_constructor() -> None:
    v = Verdict.unavailable("SLONotFound", "QualitySLO quality not found", now=NOW, look=2, planned_looks=4)
    assert v.outcome is Outcome.INCONCLUSIVE and v.metrics_unavailable
    assert v.to_status()["reason"] == "SLONotFound"


def test_look_alpha_is_bonferroni() -> None:
    assert look_alpha(0.05, 4) == pytest.approx(0.0125)
    assert look_alpha(0.05, 0) == pytest.approx(0.05)
    v = judge([NDCG], {"ndcg": data(0.72, 0.71)}, look=2, planned_looks=4, now=NOW)
    assert v.alpha_look == pytest.approx(0.0125)
    assert v.objectives[0].alpha_look == pytest.approx(0.0125)


def test_more_looks_make_passing_harder() -> None:
    d = data(0.715, 0.72, n_c=3000, n_s=9000, sd=0.3)
    single = judge([NDCG], {"ndcg": d}, look=1, planned_looks=1)
    many = judge([NDCG], {"ndcg": d}, look=1, planned_looks=50)
    assert single.outcome is Outcome.PASS and many.outcome is Outcome.INCONCLUSIVE


def test_to_status_is_json_without_nan() -> None:
    v = judge(
        [NDCG, GOLDEN],
        {"ndcg": data(0.72, 0.71), "golden": ObjectiveData()},
        look=1,
        planned_looks=4,
        now=NOW,
    )
    status = v.to_status()
    text = json.dumps(status, allow_nan=False)
    assert "NaN" not in text
    assert status["time"] == "2026-03-01T00:00:00Z"
    assert status["objectives"][0]["verdict"] == "Pass"
    assert set(status["objectives"][0]) >= {
        "canaryMean",
        "stableMean",
        "canaryN",
        "stableN",
        "difference",
        "ciLower",
        "ciUpper",
        "pValue",
    }


# --------------------------------------------------------------------------- properties

summaries = st.builds(
    summary,
    mean=st.floats(0.05, 0.95),
    sd=st.floats(0.01, 0.3),
    n=st.integers(2, 20000),
)


@settings(max_examples=300, deadline=None)
@given(canary=st.none() | summaries, stable=st.none() | summaries, min_samples=st.integers(2, 500))
def test_never_pass_without_enough_data(
    canary: TrackSummary | None, stable: TrackSummary | None, min_samples: int
) -> None:
    r = judge_objective(
        NDCG, ObjectiveData(canary=canary, stable=stable), alpha_look=0.05, min_samples=min_samples
    )
    if canary is None or stable is None or canary.n < min_samples or stable.n < min_samples:
        assert r.outcome is not Outcome.PASS


@settings(max_examples=300, deadline=None)
@given(canary=summaries, stable=summaries, looks=st.integers(1, 20))
def test_pass_implies_confidence_bound_above_margin(
    canary: TrackSummary, stable: TrackSummary, looks: int
) -> None:
    r = judge_objective(NDCG, ObjectiveData(canary=canary, stable=stable), alpha_look=look_alpha(0.05, looks))
    if r.outcome is Outcome.PASS:
        assert r.ci_lower is not None and r.ci_lower > -0.02
        assert r.p_value is not None and r.p_value < 0.05 / looks
        assert canary.mean >= NDCG.breach
    if r.outcome is Outcome.FAIL and r.reason == "WorseThanStable":
        assert canary.mean - stable.mean < -0.02
    # deterministic
    assert r == judge_objective(
        NDCG, ObjectiveData(canary=canary, stable=stable), alpha_look=look_alpha(0.05, looks)
    )


@settings(max_examples=200, deadline=None)
@given(canary=summaries, stable=summaries)
def test_passing_is_monotone_in_the_margin(canary: TrackSummary, stable: TrackSummary) -> None:
    def outcome(margin: float) -> Outcome:
        o = Objective(
            name="ndcg",
            metric="ndcg_at_3",
            target=0.7,
            breach=0.0,
            comparison=Comparison(max_degradation=margin),
        )
        return judge_objective(o, ObjectiveData(canary=canary, stable=stable), alpha_look=0.01).outcome

    if outcome(0.01) is Outcome.PASS:
        assert outcome(0.05) is Outcome.PASS


# --------------------------------------------------------------------------- insufficient data (no test ran)


def test_no_data_and_too_few_samples_are_insufficient_data() -> None:
    for d in (
        ObjectiveData(),
        ObjectiveData(canary=summary(0.7, 0.2, 10), stable=summary(0.7, 0.2, 5000)),
        ObjectiveData(canary=summary(0.7, 0.2, 5000), stable=summary(0.7, 0.2, 10)),
        ObjectiveData(canary=summary(0.7, 0.2, 5000), stable=None),
    ):
        v = judge([NDCG], {"ndcg": d}, now=NOW)
        assert v.outcome is Outcome.INCONCLUSIVE and v.insufficient_data, v
        assert v.objectives[0].lacks_data
        assert v.to_status()["insufficientData"] is True
    v = judge([NDCG], {"ndcg": ObjectiveData(canary=summary(0.7, 0.2, 10))}, now=NOW, min_samples=100)
    assert "10 canary samples, need 100" in v.message


def test_a_passing_value_objective_is_no_test() -> None:
    few = ObjectiveData(canary=summary(0.7, 0.2, 10), stable=summary(0.7, 0.2, 10))
    v = judge([NDCG, GOLDEN], {"ndcg": few, "golden": ObjectiveData(canary_value=0.8)}, now=NOW)
    assert v.outcome is Outcome.INCONCLUSIVE and v.insufficient_data
    v = judge([NDCG, GOLDEN], {"ndcg": few}, now=NOW)  # no golden value either
    assert v.insufficient_data


def test_a_tested_objective_makes_the_look_count() -> None:
    few = ObjectiveData(canary=summary(0.7, 0.2, 10), stable=summary(0.7, 0.2, 10))
    close = data(0.715, 0.72, n_c=300, n_s=900, sd=0.3)  # tested, not significant
    ndcg2 = Objective(name="ndcg2", metric="ndcg_at_3", target=0.70, breach=0.65)
    v = judge([NDCG, ndcg2], {"ndcg": few, "ndcg2": close}, now=NOW)
    assert v.outcome is Outcome.INCONCLUSIVE and not v.insufficient_data
    # A Pass on one objective spent alpha on it: the look counts though the verdict is Inconclusive.
    v = judge([NDCG, ndcg2], {"ndcg": few, "ndcg2": data(0.72, 0.71)}, now=NOW)
    assert v.outcome is Outcome.INCONCLUSIVE and not v.insufficient_data
    assert "insufficientData" not in v.to_status()


def test_insufficient_data_never_with_fail_pass_or_outage() -> None:
    few = ObjectiveData(canary=summary(0.7, 0.2, 10), stable=summary(0.7, 0.2, 10))
    assert not judge(
        [NDCG, GOLDEN], {"ndcg": few, "golden": ObjectiveData(canary_value=0.5)}
    ).insufficient_data
    assert not judge(
        [NDCG, GOLDEN], {"ndcg": few, "golden": ObjectiveData(error="timeout")}
    ).insufficient_data
    assert not judge([NDCG], {"ndcg": data(0.72, 0.71)}).insufficient_data
    assert not judge([], {}).insufficient_data
    assert not Verdict.unavailable().insufficient_data


@settings(max_examples=300, deadline=None)
@given(
    canary=st.none() | summaries,
    stable=st.none() | summaries,
    golden=st.none() | st.floats(0.0, 1.0),
    min_samples=st.integers(2, 500),
)
def test_insufficient_data_iff_no_summary_test_ran(
    canary: TrackSummary | None, stable: TrackSummary | None, golden: float | None, min_samples: int
) -> None:
    d = {"ndcg": ObjectiveData(canary=canary, stable=stable), "golden": ObjectiveData(canary_value=golden)}
    v = judge([NDCG, GOLDEN], d, min_samples=min_samples)
    if v.insufficient_data:
        assert v.outcome is Outcome.INCONCLUSIVE and not v.metrics_unavailable
        assert v.objectives[0].reason in ("NoData", "NotEnoughSamples")
    short = canary is None or stable is None or canary.n < min_samples or stable.n < min_samples
    if v.objectives[0].reason not in ("NoData", "NotEnoughSamples"):
        assert not v.insufficient_data  # the summary objective was tested (or failed its floor)
    elif v.outcome is Outcome.INCONCLUSIVE:
        assert short and v.insufficient_data


@settings(max_examples=60, deadline=None)
@given(
    c_mean=st.floats(0.3, 0.95),
    s_mean=st.floats(0.3, 0.95),
    n_c=st.integers(0, 400),
    golden=st.one_of(st.none(), st.floats(0.0, 1.0)),
    error=st.booleans(),
)
def test_verdict_status_round_trip(
    c_mean: float, s_mean: float, n_c: int, golden: float | None, error: bool
) -> None:
    """``status.lastAnalysis`` reads back into a Verdict that writes the same dict (no status churn)."""
    ndcg = ObjectiveData(error="timeout") if error else data(c_mean, s_mean, n_c=max(n_c, 1), n_s=800)
    v = judge([NDCG, GOLDEN], {"ndcg": ndcg, "golden": ObjectiveData(canary_value=golden)}, look=2, now=NOW)
    status = json.loads(json.dumps(v.to_status()))
    again = Verdict.from_status(status)
    assert again.to_status() == status
    assert (again.outcome, again.reason, again.metrics_unavailable, again.insufficient_data) == (
        v.outcome,
        v.reason,
        v.metrics_unavailable,
        v.insufficient_data,
    )
    unavailable = Verdict.unavailable("SLONotFound", "gone", now=NOW, look=3, planned_looks=4)
    assert Verdict.from_status(unavailable.to_status()) == unavailable
