"""The judge: anytime-valid non-inferiority on accumulated evidence, floors, no-data rules, planning."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rankops.operator.core.evidence import Evidence, ObjectiveEvidence
from rankops.operator.core.judge import judge, judge_objective
from rankops.operator.core.sequential import DifferenceEvidence, Moments
from rankops.operator.core.spec import Comparison, Objective
from rankops.operator.core.verdict import ObjectiveData, ObjectiveResult, Outcome, TrackSummary, Verdict

NOW = datetime(2026, 3, 1, tzinfo=UTC)
NDCG = Objective(name="ndcg", metric="ndcg_at_3", target=0.70, breach=0.65)


def summary(mean: float, sd: float, n: int) -> TrackSummary:
    """A TrackSummary with exactly this sample mean and standard deviation."""
    total = mean * n
    squares = sd**2 * (n - 1) + n * mean**2
    return TrackSummary(n=n, total=total, squares_total=squares)


def one(objective: Objective, d: ObjectiveData, **kwargs: object) -> ObjectiveResult:
    """The result of one look without earlier evidence."""
    return judge_objective(objective, d, **kwargs)[0]  # type: ignore[arg-type]


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
    r = one(NDCG, data(0.72, 0.71))
    assert r.outcome is Outcome.PASS and r.reason == "NonInferior"
    assert r.ci_lower is not None and r.ci_lower > -0.02
    assert r.difference == pytest.approx(0.01)
    assert r.information == pytest.approx(1 / (0.0625 / 2000 + 0.0625 / 8000), rel=1e-6)


def test_clearly_worse_fails() -> None:
    r = one(NDCG, data(0.68, 0.72))
    assert r.outcome is Outcome.FAIL and r.reason == "WorseThanStable"
    assert r.ci_upper is not None and r.ci_upper < -0.02


def test_small_difference_with_few_samples_is_inconclusive() -> None:
    r = one(NDCG, data(0.71, 0.72, n_c=60, n_s=300))
    assert r.outcome is Outcome.INCONCLUSIVE and r.reason == "CollectingEvidence"


def test_below_breach_fails_even_if_stable_is_as_bad() -> None:
    r = one(NDCG, data(0.55, 0.55))
    assert r.outcome is Outcome.FAIL and r.reason == "BreachedFloor"


def test_floor_needs_confidence() -> None:
    # mean below breach but too noisy to be sure: not a floor Fail, and never a Pass
    r = one(NDCG, data(0.64, 0.64, n_c=60, n_s=60, sd=0.3))
    assert r.outcome is Outcome.INCONCLUSIVE


def test_non_inferior_but_below_breach_is_not_a_pass() -> None:
    loose = Objective(
        name="ndcg", metric="ndcg_at_3", target=0.70, breach=0.65, comparison=Comparison(max_degradation=0.2)
    )
    r = one(loose, data(0.645, 0.66, n_c=50, n_s=5000, sd=0.3))
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
    r = one(NDCG, ObjectiveData(canary=canary, stable=stable))
    assert r.outcome is Outcome.INCONCLUSIVE and r.reason == reason


def test_min_samples_override() -> None:
    d = data(0.75, 0.70, n_c=80, n_s=80, sd=0.05)
    assert one(NDCG, d).outcome is Outcome.PASS
    assert one(NDCG, d, min_samples=100).reason == "NotEnoughSamples"


def test_bounds_are_the_confidence_sequence_of_core_sequential() -> None:
    c, s_ = summary(0.70, 0.3, 400), summary(0.71, 0.3, 900)
    r = one(NDCG, ObjectiveData(canary=c, stable=s_))
    ev = DifferenceEvidence().add_batch(
        Moments(c.n, c.total, c.squares_total),
        Moments(s_.n, s_.total, s_.squares_total),
        c.variance,
        s_.variance,
    )
    assert r.ci_lower == pytest.approx(ev.lower_bound(0.05, 0.02), rel=1e-5)
    assert r.ci_upper == pytest.approx(ev.upper_bound(0.05, 0.08), rel=1e-5)
    assert r.difference == pytest.approx(-0.01)


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

    worse = one(errors, ObjectiveData(canary=bernoulli(0.02, 20000), stable=bernoulli(0.001, 80000)))
    assert worse.outcome is Outcome.FAIL and worse.reason == "WorseThanStable"
    assert worse.difference is not None and worse.difference > 0
    assert worse.ci_lower is not None and worse.ci_lower > 0.002  # the canary's error rate is surely higher
    same = one(errors, ObjectiveData(canary=bernoulli(0.001, 20000), stable=bernoulli(0.001, 80000)))
    assert same.outcome is Outcome.PASS
    floor = one(errors, ObjectiveData(canary=bernoulli(0.2, 5000), stable=bernoulli(0.2, 5000)))
    assert floor.outcome is Outcome.FAIL and floor.reason == "BreachedFloor"


def test_zero_variance_is_decided_exactly() -> None:
    c = TrackSummary(n=100, total=80, squares_total=64)
    s = TrackSummary(n=100, total=70, squares_total=49)
    assert one(NDCG, ObjectiveData(canary=c, stable=s)).outcome is Outcome.PASS
    assert one(NDCG, ObjectiveData(canary=s, stable=c)).outcome is Outcome.FAIL


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
    r = one(GOLDEN, ObjectiveData(canary_value=canary, stable_value=stable))
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
    assert one(latency, ObjectiveData(canary_value=0.21, stable_value=0.2)).outcome is Outcome.PASS
    assert one(latency, ObjectiveData(canary_value=0.3, stable_value=0.2)).reason == "WorseThanStable"
    assert one(latency, ObjectiveData(canary_value=0.6)).reason == "BreachedFloor"


def test_custom_query_objective_is_value_judged() -> None:
    custom = Objective(name="c", metric="custom", target=1.0, breach=0.5, query="vector(1)")
    assert custom.kind == "value"
    assert one(custom, ObjectiveData(canary_value=0.9)).outcome is Outcome.PASS


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


def test_looks_need_no_alpha_correction() -> None:
    v = judge([NDCG], {"ndcg": data(0.72, 0.71)}, look=2, planned_looks=4, now=NOW)
    assert v.alpha_look == pytest.approx(0.05)
    assert v.objectives[0].alpha_look == pytest.approx(0.05)


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
        "information",
        "informationNeeded",
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
    r = one(NDCG, ObjectiveData(canary=canary, stable=stable), min_samples=min_samples)
    if canary is None or stable is None or canary.n < min_samples or stable.n < min_samples:
        assert r.outcome is not Outcome.PASS


@settings(max_examples=300, deadline=None)
@given(canary=summaries, stable=summaries)
def test_pass_implies_confidence_bound_above_margin(canary: TrackSummary, stable: TrackSummary) -> None:
    r = one(NDCG, ObjectiveData(canary=canary, stable=stable))
    if r.outcome is Outcome.PASS:
        assert r.ci_lower is not None and r.ci_lower > -0.02
        assert canary.mean >= NDCG.breach
    if r.outcome is Outcome.FAIL and r.reason == "WorseThanStable":
        assert canary.mean - stable.mean < -0.02
    # deterministic
    assert r == one(NDCG, ObjectiveData(canary=canary, stable=stable))


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
        return one(o, ObjectiveData(canary=canary, stable=stable)).outcome

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
    close = data(0.715, 0.72, n_c=300, n_s=900, sd=0.3)  # tested, not decided yet
    ndcg2 = Objective(name="ndcg2", metric="ndcg_at_3", target=0.70, breach=0.65)
    v = judge([NDCG, ndcg2], {"ndcg": few, "ndcg2": close}, now=NOW)
    assert v.outcome is Outcome.INCONCLUSIVE and not v.insufficient_data and v.collecting
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


# --------------------------------------------------------------------------- accumulated evidence


def _cumulative(*batches: tuple[TrackSummary, TrackSummary]) -> list[ObjectiveData]:
    """The data of consecutive looks: each look sees the totals since the rollout started."""
    out, c_tot, s_tot = [], TrackSummary(0, 0, 0), TrackSummary(0, 0, 0)
    for c, s_ in batches:
        c_tot = TrackSummary(c_tot.n + c.n, c_tot.total + c.total, c_tot.squares_total + c.squares_total)
        s_tot = TrackSummary(s_tot.n + s_.n, s_tot.total + s_.total, s_tot.squares_total + s_.squares_total)
        out.append(ObjectiveData(canary=c_tot, stable=s_tot))
    return out


def _looks(looks: list[ObjectiveData], min_samples: int | None = None) -> list[Verdict]:
    verdicts, evidence = [], None
    for i, d in enumerate(looks):
        v = judge(
            [NDCG],
            {"ndcg": d},
            evidence=evidence,
            now=NOW + timedelta(seconds=30 * (i + 1)),
            elapsed_s=30.0 * (i + 1),
            min_samples=min_samples,
        )
        verdicts.append(v)
        evidence = v.evidence or evidence
    return verdicts


def test_evidence_accumulates_batch_by_batch_until_non_inferiority_is_shown() -> None:
    batch = (summary(0.72, 0.25, 150), summary(0.72, 0.25, 1350))  # 10 % of 50 labelled req/s for 30 s
    verdicts = _looks(_cumulative(*[batch] * 40))
    reasons = [v.objectives[0].reason for v in verdicts]
    assert reasons[0] == "CollectingEvidence"
    first_pass = reasons.index("NonInferior")
    assert 2 < first_pass < 40
    assert all(r == "CollectingEvidence" for r in reasons[:first_pass])
    assert verdicts[first_pass].evidence is not None
    assert verdicts[first_pass].evidence.get("ndcg").difference.batches == first_pass + 1
    info = [v.objectives[0].information or 0 for v in verdicts[: first_pass + 1]]
    assert info == sorted(info) and info[-1] == pytest.approx((first_pass + 1) * info[0], rel=0.02)
    assert all(v.collecting for v in verdicts[:first_pass])


def test_a_batch_short_of_samples_is_carried_to_the_next_look() -> None:
    small = (summary(0.72, 0.25, 30), summary(0.72, 0.25, 300))
    v1, v2 = _looks(_cumulative(small, small))
    assert v1.objectives[0].reason == "NotEnoughSamples" and v1.insufficient_data and v1.evidence is None
    assert v2.evidence is not None
    e = v2.evidence.get("ndcg")
    assert (e.difference.batches, e.canary.n, e.stable.n) == (1, 60, 600)


def test_harm_shown_is_conclusive_and_a_recent_floor_breach_is_not() -> None:
    worse = judge([NDCG], {"ndcg": data(0.66, 0.72)}, now=NOW)
    assert worse.outcome is Outcome.FAIL and worse.reason == "WorseThanStable" and worse.harm_shown
    assert worse.to_status()["harmShown"] is True
    # Good for a while, then bad: the recent samples breach the floor long before the overall mean does.
    good, bad = (
        (summary(0.80, 0.05, 400), summary(0.80, 0.05, 400)),
        (summary(0.30, 0.05, 60), summary(0.80, 0.05, 60)),
    )
    verdicts = _looks(_cumulative(good, good, good, bad))
    assert verdicts[-1].outcome is Outcome.FAIL and verdicts[-1].reason == "BreachedFloor"
    assert not verdicts[-1].harm_shown
    assert "last 60 samples" in verdicts[-1].message


def test_the_whole_rollouts_floor_is_anytime_valid_and_conclusive() -> None:
    # Slightly below the floor all along: no single batch is sure, the accumulated mean is.
    batch = (summary(0.62, 0.25, 60), summary(0.62, 0.25, 600))
    verdicts = _looks(_cumulative(*[batch] * 60))
    failed = [v for v in verdicts if v.outcome is Outcome.FAIL]
    assert failed and failed[0].reason == "BreachedFloor" and failed[0].harm_shown


def test_evidence_planning_reports_samples_needed_and_time_to_a_decision() -> None:
    batch = (summary(0.72, 0.25, 150), summary(0.72, 0.25, 1350))
    v1, v2 = _looks(_cumulative(batch, batch))
    r = v2.objectives[0]
    assert r.canary_rate == pytest.approx(5.0) and r.stable_rate == pytest.approx(45.0)
    assert r.information_needed is not None and r.information is not None
    assert r.information < r.information_needed
    per_second = 1 / (0.0625 / 5 + 0.0625 / 45)
    assert r.eta_s == pytest.approx((r.information_needed - r.information) / per_second, rel=0.01)
    assert r.canary_needed == pytest.approx(300 + 5 * r.eta_s, rel=1e-6)
    assert r.stable_needed == pytest.approx(2700 + 45 * r.eta_s, rel=1e-6)
    assert v2.eta_s == r.eta_s
    assert v2.to_status()["evidence"].startswith("ndcg: canary 300/")
    assert v1.objectives[0].canary_rate == pytest.approx(5.0)  # first look: rates since the rollout started


def test_evidence_round_trips_through_status() -> None:
    batch = (summary(0.72, 0.25, 150), summary(0.72, 0.25, 1350))
    v = _looks(_cumulative(batch, batch))[-1]
    assert v.evidence is not None
    raw = json.loads(json.dumps(v.evidence.to_status()))
    assert Evidence.from_status(raw) == v.evidence
    assert Evidence.from_status(None) == Evidence()
    assert Evidence().get("x") == ObjectiveEvidence(name="x")
