"""A/B experiments (core.experiment, core.rollout.experiment_step): the tests, the decision rules,
``status.experiment``, the spec and CRD rules, and runs through the real planner and judge."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from rankops.cli.kubectl import outcome
from rankops.cli.kubectl_view import render_history, render_status
from rankops.operator.api import RETRY_ANNOTATION
from rankops.operator.core.evidence import Evidence
from rankops.operator.core.experiment import (
    ExperimentStatus,
    assess,
    confidence_sequence,
    fixed_horizon,
    start_experiment,
)
from rankops.operator.core.judge import judge
from rankops.operator.core.rollout import RolloutState, analysis_due, plan_rollout
from rankops.operator.core.sequential import DifferenceEvidence, Moments, two_sided_boundary
from rankops.operator.core.spec import (
    Comparison,
    ExperimentSpec,
    Objective,
    SpecError,
    parse_ranking_model_spec,
)
from rankops.operator.core.verdict import ObjectiveData, Outcome, TrackSummary, Verdict
from rankops.sandbox.schema import validate_custom_resource

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "crds" / "rankingmodels.yaml").read_text())
NDCG = Objective(
    name="ndcg", metric="ndcg_at_3", target=0.7, breach=0.5, comparison=Comparison(max_degradation=0.02)
)
LATENCY = Objective(
    name="latency",
    metric="latency_p95",
    target=0.2,
    breach=0.5,
    direction="lowerIsBetter",
    comparison=Comparison(max_degradation=0.05),
)


def moments(values: np.ndarray) -> Moments:
    return Moments(float(len(values)), float(values.sum()), float(np.dot(values, values)))


# --------------------------------------------------------------------------- statistics


@settings(deadline=None)
@given(
    st.floats(0.0, 1e8),
    st.sampled_from([0.01, 0.05, 0.1]),
    st.floats(0.001, 1.0),
)
def test_two_sided_boundary_is_where_the_normal_mixture_reaches_one_over_alpha(
    information: float, alpha: float, tau: float
) -> None:
    b = two_sided_boundary(information, alpha, tau)
    a = 1 + tau**2 * information
    log_mixture = -0.5 * math.log(a) + tau**2 * b**2 / (2 * a)
    assert log_mixture == pytest.approx(math.log(1 / alpha), rel=1e-9, abs=1e-9)


@settings(deadline=None, max_examples=50)
@given(st.integers(0, 2**31), st.integers(3, 300), st.integers(3, 300), st.floats(0.01, 0.2))
def test_fixed_horizon_is_welchs_t_test(seed: int, n_c: int, n_s: int, alpha: float) -> None:
    rng = np.random.default_rng(seed)
    c, s = rng.beta(3, 1.2, n_c), rng.beta(3, 1.3, n_s)
    e = fixed_horizon(moments(c), moments(s), alpha)
    reference = stats.ttest_ind(c, s, equal_var=False)
    ci = reference.confidence_interval(1 - alpha)
    assert e.p_value is not None and e.p_value == pytest.approx(reference.pvalue, rel=1e-6, abs=1e-9)
    assert (e.ci_lower, e.ci_upper) == pytest.approx((ci.low, ci.high), rel=1e-6, abs=1e-9)
    assert e.sign == (1 if ci.low > 0 else -1 if ci.high < 0 else 0)
    assert (e.p_value < alpha) == (e.sign != 0)


def test_the_confidence_sequence_is_wider_than_the_fixed_horizon_interval() -> None:
    """The price of looking at will: for the same samples, the anytime-valid interval is wider."""
    rng = np.random.default_rng(7)
    c, s = rng.beta(3, 1.2, 5000), rng.beta(3, 1.2, 5000)
    mc, ms = moments(c), moments(s)
    diff = DifferenceEvidence().add_batch(mc, ms, mc.variance, ms.variance)
    cs, fixed = confidence_sequence(diff, 0.05, 0.02), fixed_horizon(mc, ms, 0.05)
    assert cs.difference == pytest.approx(fixed.difference)
    assert cs.ci_lower < fixed.ci_lower < fixed.ci_upper < cs.ci_upper
    assert confidence_sequence(DifferenceEvidence(), 0.05, 0.02).sign == 0
    assert fixed_horizon(Moments(1, 0.5, 0.25), ms, 0.05).sign == 0


# --------------------------------------------------------------------------- decision rules


def _look(canary: np.ndarray, stable: np.ndarray, prior: Evidence | None = None) -> Verdict:
    data = {
        "ndcg": ObjectiveData(
            canary=TrackSummary(*moments(canary).__dict__.values()),
            stable=TrackSummary(*moments(stable).__dict__.values()),
        )
    }
    return judge([NDCG], data, evidence=prior, now=T0)


def _arms(effect: float, n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mean, sd = 0.72, 0.25
    k = mean * (1 - mean) / sd**2 - 1
    kc = (mean + effect) * (1 - mean - effect) / sd**2 - 1
    return rng.beta((mean + effect) * kc, (1 - mean - effect) * kc, n), rng.beta(mean * k, (1 - mean) * k, n)


def _assess(spec: ExperimentSpec, verdict: Verdict, now: datetime) -> ExperimentStatus:
    status = start_experiment(spec, 1, "1.1.0", "1.0.0", T0)
    return assess(spec, status, verdict, verdict.evidence, now, failure_limit=2)


END = T0 + timedelta(days=7)


@pytest.mark.parametrize(
    ("effect", "decision", "reason", "action"),
    [
        (0.03, "Promote", "CandidateBetter", "Promoted"),
        (-0.03, "Keep", "CandidateWorse", "Kept"),
        (0.0, "Inconclusive", "NoSignificantDifference", "Kept"),
    ],
)
def test_fixed_horizon_decides_at_the_end(effect: float, decision: str, reason: str, action: str) -> None:
    verdict = _look(*_arms(effect, 4000, seed=3))
    spec = ExperimentSpec()
    assert not _assess(spec, verdict, END - timedelta(seconds=1)).decided  # interim: decides nothing
    decided = _assess(spec, verdict, END)
    assert (decided.decision, decided.reason, decided.action) == (decision, reason, action)
    assert decided.method == "FixedHorizon" and decided.p_value is not None and not decided.early
    assert decided.canary_n == decided.stable_n == 4000
    assert decided.ci_lower is not None and decided.ci_upper is not None
    assert decided.ci_lower < (decided.difference or 0) < decided.ci_upper


def test_early_stopping_decides_before_the_end_once_the_interval_excludes_zero() -> None:
    verdict = _look(*_arms(0.05, 4000, seed=4))
    decided = _assess(ExperimentSpec(early_stopping=True), verdict, T0 + timedelta(hours=1))
    assert (decided.decision, decided.early, decided.method) == ("Promote", True, "ConfidenceSequence")
    assert decided.p_value is None and (decided.ci_lower or 0) > 0


def test_on_inconclusive_promote_ships_only_a_candidate_that_passed_every_objective() -> None:
    equal = _look(*_arms(0.0, 20000, seed=5))
    assert equal.outcome is Outcome.PASS  # non-inferior within 0.02 with this many samples
    spec = ExperimentSpec(on_inconclusive="Promote")
    shipped = _assess(spec, equal, END)
    assert (shipped.decision, shipped.action) == ("Inconclusive", "Promoted")
    few = _look(*_arms(0.0, 200, seed=5))
    assert few.outcome is Outcome.INCONCLUSIVE  # not shown non-inferior yet
    assert _assess(spec, few, END).action == "Kept"


def test_a_guardrail_that_fails_keeps_stable_at_once() -> None:
    canary, stable = _arms(0.03, 4000, seed=6)
    data = {
        "ndcg": ObjectiveData(
            canary=TrackSummary(*moments(canary).__dict__.values()),
            stable=TrackSummary(*moments(stable).__dict__.values()),
        ),
        "latency": ObjectiveData(canary_value=0.9, stable_value=0.1),  # beyond its breach
    }
    verdict = judge([NDCG, LATENCY], data, now=T0)
    spec = ExperimentSpec(early_stopping=True)
    status = start_experiment(spec, 1, "1.1.0", "1.0.0", T0)
    once = assess(spec, status, verdict, verdict.evidence, T0, failure_limit=2)
    assert not once.decided and once.guardrail_failures == 1  # a better NDCG does not ship past it
    twice = assess(spec, once, verdict, verdict.evidence, T0, failure_limit=2)
    assert (twice.decision, twice.reason, twice.action) == ("Keep", "GuardrailFailed", "Kept")
    assert "latency" in twice.message
    assert {g.name: g.verdict for g in twice.guardrails} == {"ndcg": "Pass", "latency": "Fail"}


def test_no_primary_objective_or_no_data_never_promotes() -> None:
    verdict = judge([LATENCY], {"latency": ObjectiveData(canary_value=0.1, stable_value=0.1)}, now=T0)
    spec = ExperimentSpec(on_inconclusive="Promote")
    assert _assess(spec, verdict, T0).reason == "NoPrimaryObjective"
    empty = judge([NDCG], {}, now=T0)
    decided = _assess(spec, empty, END)
    assert (decided.decision, decided.reason, decided.action) == ("Inconclusive", "NoData", "Kept")


@settings(deadline=None, max_examples=40)
@given(st.floats(-0.05, 0.05), st.integers(60, 3000), st.integers(0, 10**6), st.booleans(), st.booleans())
def test_a_decision_follows_its_interval(effect: float, n: int, seed: int, early: bool, ended: bool) -> None:
    """Promote only above 0, CandidateWorse only below, nothing on NDCG@3 before the end without early
    stopping."""
    verdict = _look(*_arms(effect, n, seed=seed))
    spec = ExperimentSpec(early_stopping=early)
    status = _assess(spec, verdict, END if ended else T0 + timedelta(hours=1))
    if not (early or ended):  # only a guardrail (the canary judge's harm rule here) decides early
        assert not status.decided or status.reason == "GuardrailFailed"
    if status.decision == "Promote":
        assert status.ci_lower is not None and status.ci_lower > 0 and status.action == "Promoted"
    if status.reason == "CandidateWorse":
        assert status.ci_upper is not None and status.ci_upper < 0 and status.action == "Kept"
    if ended:
        assert status.decided
    stored = ExperimentStatus.from_status(status.to_status())  # the status edge round-trips
    assert stored is not None and stored.to_status() == status.to_status()


# --------------------------------------------------------------------------- spec and CRD


def _model(rollout: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "RankingModel",
        "metadata": {"name": "m"},
        "spec": {
            "model": {"version": "1.1.0", "uri": "file:///m"},
            "serving": {"image": "ranker:1"},
            "rollout": rollout,
        },
    }


ANALYSIS = {"sloRef": {"name": "q"}, "interval": "1h"}


def test_experiment_defaults_are_the_runbooks() -> None:
    stored, errors = validate_custom_resource(CRD, _model({"analysis": ANALYSIS, "experiment": {}}))
    assert errors == []
    assert stored["spec"]["rollout"]["experiment"] == {
        "weight": 50,
        "duration": "168h",
        "alpha": 0.05,
        "minimumEffect": 0.02,
        "earlyStopping": False,
        "onInconclusive": "Keep",
    }
    rollout = parse_ranking_model_spec(stored["spec"]).rollout
    assert rollout.experiment == ExperimentSpec()
    assert [s.weight for s in rollout.steps] == [50] and rollout.step_requires_analysis(0)


@pytest.mark.parametrize(
    ("rollout", "path", "message"),
    [
        (
            {"analysis": ANALYSIS, "experiment": {}, "steps": [{"weight": 100}]},
            "spec.rollout.experiment",
            "mutually exclusive",
        ),
        ({"experiment": {}}, "spec.rollout.experiment", "needs rollout.analysis"),
        ({"analysis": ANALYSIS, "experiment": {"weight": 100}}, "spec.rollout.experiment.weight", "99"),
        ({"analysis": ANALYSIS, "experiment": {"weight": 0}}, "spec.rollout.experiment.weight", "1"),
        (
            {"analysis": ANALYSIS, "experiment": {"duration": "7d"}},
            "spec.rollout.experiment.duration",
            "match",
        ),
        ({"analysis": ANALYSIS, "experiment": {"alpha": 1}}, "spec.rollout.experiment.alpha", "1"),
    ],
)
def test_bad_experiments_are_rejected_by_the_schema_and_the_parser(
    rollout: dict[str, Any], path: str, message: str
) -> None:
    _, errors = validate_custom_resource(CRD, _model(rollout))
    assert any(e.path == path and message in e.message for e in errors), errors
    with pytest.raises(SpecError):
        parse_ranking_model_spec(_model(rollout)["spec"])


# --------------------------------------------------------------------------- through the planner

SPEC = parse_ranking_model_spec(_model({"analysis": ANALYSIS, "experiment": {"earlyStopping": True}})["spec"])
OLD = parse_ranking_model_spec({**_model({})["spec"], "model": {"version": "1.0.0", "uri": "file:///o"}})


def _run(
    effect: float, seed: int, annotations: dict[str, str] | None = None
) -> tuple[RolloutState, list[Any]]:
    """Looks every hour on fresh samples until the experiment decides (or 8 days pass)."""
    state = plan_rollout(OLD, RolloutState(), None, T0).state
    started = plan_rollout(SPEC, state, None, T0)
    state, events = started.state, list(started.events)
    assert (state.phase, state.canary_weight, state.experiment) == ("Progressing", 50, None)
    rng = np.random.default_rng(seed)
    canary, stable = np.empty(0), np.empty(0)
    now = T0
    for _ in range(8 * 24):
        now += timedelta(hours=1)
        c, s = _arms(effect, 300, seed=int(rng.integers(2**31)))
        if state.experiment is not None:
            canary, stable = np.concatenate([canary, c]), np.concatenate([stable, s])
        request = analysis_due(SPEC, state, now)
        verdict = None
        if request is not None and len(canary):
            verdict = judge(
                [NDCG],
                {"ndcg": ObjectiveData(TrackSummary(*moments(canary).__dict__.values()),
                                       TrackSummary(*moments(stable).__dict__.values()))},
                evidence=request.evidence, now=now,
            )  # fmt: skip
        elif request is not None:
            verdict = judge([NDCG], {}, now=now)
        plan = plan_rollout(SPEC, state, verdict, now, annotations=annotations)
        state = RolloutState.from_status(plan.status)  # the status edge, as the controller writes it
        events += plan.events
        if state.experiment is not None and state.experiment.decided:
            break
    return state, events


def test_a_better_candidate_is_promoted_through_the_planner() -> None:
    state, events = _run(0.04, seed=11)
    assert state.stable_version == "1.1.0" and not state.in_rollout
    assert state.experiment is not None and state.experiment.decision == "Promote"
    last = state.history[-1]
    assert (last.outcome, last.reason) == ("Promoted", "CandidateBetter")
    assert last.experiment is not None and last.experiment["decision"] == "Promote"
    assert last.experiment["ciLower"] > 0
    reasons = [e.reason for e in events]
    assert reasons.index("ExperimentStarted") < reasons.index("ExperimentDecided") < reasons.index("Promoted")


def test_a_worse_candidate_is_kept_out_and_only_a_retry_starts_again() -> None:
    state, _ = _run(-0.04, seed=12)
    assert (state.phase, state.stable_version, state.aborted_version) == ("Healthy", "1.0.0", "1.1.0")
    assert not state.in_rollout and state.canary_weight == 0
    assert state.history[-1].outcome == "Kept" and state.history[-1].reason == "CandidateWorse"
    progressing = next(c for c in state.conditions if c["type"] == "Progressing")
    degraded = next(c for c in state.conditions if c["type"] == "Degraded")
    assert (progressing["status"], progressing["reason"], degraded["status"]) == (
        "False",
        "CandidateWorse",
        "False",
    )
    later = plan_rollout(SPEC, state, None, T0 + timedelta(days=9))
    assert not later.state.in_rollout and later.events == ()  # the spec still names it: not tried again
    retried = plan_rollout(SPEC, state, None, T0 + timedelta(days=9), annotations={RETRY_ANNOTATION: "1"})
    assert retried.state.in_rollout and retried.state.experiment is None
    assert retried.state.canary_revision == state.canary_revision + 1


def test_the_cli_prints_the_experiment_and_its_history() -> None:
    state, _ = _run(-0.04, seed=12)
    obj = {
        "metadata": {"name": "m", "namespace": "ns", "generation": 1},
        "spec": copy.deepcopy(_model({})["spec"]),
        "status": {**RolloutState.from_status(state.to_status()).to_status(), "observedGeneration": 1},
    }
    view = render_status(obj)
    assert "Step:          -" in view  # the experiment ended
    running = {**obj, "spec": _model({"analysis": ANALYSIS, "experiment": {}})["spec"]}
    running["status"] = {**obj["status"], "currentStep": 0, "canaryWeight": 50}
    assert "Step:          experiment (weight 50)" in render_status(running)
    assert "Experiment:    1.1.0 vs stable 1.0.0 at 50/50, ConfidenceSequence (95%)" in view
    assert "Decision:    Keep (CandidateWorse): candidate kept" in view
    history = render_history(obj)
    assert "Kept" in history and "Keep -0.0" in history
    assert outcome(obj) == "Kept"


def test_an_experiment_ended_by_hand_says_it_ended_undecided() -> None:
    from rankops.operator.api import ABORT_ANNOTATION

    state = plan_rollout(OLD, RolloutState(), None, T0).state
    state = plan_rollout(SPEC, state, None, T0).state
    state = plan_rollout(SPEC, state, None, T0 + timedelta(seconds=1)).state  # the experiment opens
    assert state.experiment is not None and state.experiment.started_at is not None
    aborted = plan_rollout(SPEC, state, None, T0 + timedelta(seconds=2), annotations={ABORT_ANNOTATION: "1"})
    experiment = aborted.state.experiment
    assert aborted.state.phase == "RolledBack" and experiment is not None
    assert not experiment.decided and experiment.ended_reason == "Aborted"
    assert experiment.to_status()["summary"].startswith("ended undecided (Aborted)")


def test_a_look_planned_before_the_experiment_opened_is_not_used() -> None:
    """Its window began with the rollout: the experiment's samples and looks count from its start."""
    state = plan_rollout(OLD, RolloutState(), None, T0).state
    state = plan_rollout(SPEC, state, None, T0).state  # readiness unknown: ready at once
    now = T0 + timedelta(hours=1)
    request = analysis_due(SPEC, state, now)
    assert request is not None and request.window_s == 3600
    verdict = _look(*_arms(0.05, 4000, seed=8))
    opened = plan_rollout(SPEC, state, verdict, now)
    experiment = opened.state.experiment
    assert experiment is not None and experiment.started_at == now and experiment.looks == 0
    assert opened.state.evidence is None and opened.state.last_analysis is None
    assert opened.requeue_after == 3600
    assert analysis_due(SPEC, opened.state, now + timedelta(minutes=59)) is None
    first = analysis_due(SPEC, opened.state, now + timedelta(hours=1))
    assert first is not None and first.window_s == 3600  # since the experiment's start
