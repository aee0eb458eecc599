"""The rollout planner (core.rollout): scenarios through the state machine, and hypothesis invariants."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rankops.operator.api import ABORT_ANNOTATION, PROMOTE_ANNOTATION, RETRY_ANNOTATION
from rankops.operator.core import rollout
from rankops.operator.core.children import TrackPlan, build_children, track_replicas
from rankops.operator.core.rollout import (
    HISTORY_LIMIT,
    AnalysisRequest,
    Observed,
    Plan,
    RolloutState,
    analysis_due,
    merge_patch,
)
from rankops.operator.core.spec import SpecError, parse_ranking_model_spec
from rankops.operator.core.timeutil import parse_time
from rankops.operator.core.verdict import Outcome, Verdict
from rankops.sandbox.schema import validate_custom_resource

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- the status edge


@dataclass(frozen=True)
class Planned:
    """A plan and the status patch the controller writes for it (against the status planned from)."""

    plan: Plan
    status_patch: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.plan, name)


def plan_rollout(
    spec: dict[str, Any], status: dict[str, Any], verdict: Verdict | None, now: datetime, **kwargs: Any
) -> Planned:
    """The planner on the spec and status dicts, parsed and read at the edge as the controller does."""
    plan = rollout.plan_rollout(
        parse_ranking_model_spec(spec), RolloutState.from_status(status), verdict, now, **kwargs
    )
    return Planned(plan, merge_patch(status, plan.status))


def plan_invalid_spec(status: dict[str, Any], error: SpecError, now: datetime, **kwargs: Any) -> Planned:
    plan = rollout.plan_invalid_spec(RolloutState.from_status(status), error, now, **kwargs)
    return Planned(plan, merge_patch(status, plan.status))


def look_due(
    spec: dict[str, Any], status: dict[str, Any], now: datetime, **kwargs: Any
) -> AnalysisRequest | None:
    return analysis_due(parse_ranking_model_spec(spec), RolloutState.from_status(status), now, **kwargs)


def tracks(spec: dict[str, Any], status: dict[str, Any]) -> TrackPlan:
    return track_replicas(parse_ranking_model_spec(spec), RolloutState.from_status(status))


def children_of(meta: dict[str, Any], spec: dict[str, Any], status: dict[str, Any]) -> list[dict[str, Any]]:
    return build_children(meta, parse_ranking_model_spec(spec), RolloutState.from_status(status))


# What a plan changes in the children the shell applies (derived from the children built before and
# after it: the planner has no second description of the change).


@dataclass(frozen=True)
class DeployStable:
    version: str
    uri: str


@dataclass(frozen=True)
class ScaleCanary:
    version: str
    uri: str
    replicas: int


@dataclass(frozen=True)
class SetWeights:
    stable: int
    canary: int


@dataclass(frozen=True)
class PromoteCanaryToStable:
    version: str
    uri: str


@dataclass(frozen=True)
class ScaleDownCanary:
    pass


Effect = DeployStable | ScaleCanary | SetWeights | PromoteCanaryToStable | ScaleDownCanary


def effects(spec: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> tuple[Effect, ...]:
    """The changes from the children built for status ``old`` to those built for ``new``."""
    before, after = tracks(spec, old), tracks(spec, new)
    out: list[Effect] = []
    promoted = bool(old.get("canaryVersion")) and new.get("stableVersion") == old["canaryVersion"]
    if promoted:
        out.append(PromoteCanaryToStable(after.stable_version, after.stable_uri))
    elif not old.get("stableVersion") or (before.stable_version, before.stable_uri) != (
        after.stable_version,
        after.stable_uri,
    ):
        out.append(DeployStable(after.stable_version, after.stable_uri))
    canary = (after.canary_version, after.canary_uri, after.canary_replicas)
    if (
        new.get("canaryVersion")
        and (before.canary_version, before.canary_uri, before.canary_replicas) != canary
    ):
        out.append(ScaleCanary(*canary))
    if before.canary_weight != after.canary_weight:
        out.append(SetWeights(stable=100 - after.canary_weight, canary=after.canary_weight))
    if before.canary_replicas > 0 and after.canary_replicas == 0:
        out.append(ScaleDownCanary())
    return tuple(out)


def make_spec(version: str = "1.0.0", **rollout: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "steps": [{"weight": 10, "pause": "1m"}, {"weight": 50}, {"weight": 100}],
        "analysis": {
            "sloRef": {"name": "quality"},
            "interval": "30s",
            "failureLimit": 2,
            "inconclusiveLimit": 3,
        },
    }
    base.update(rollout)
    return {
        "model": {"version": version, "uri": f"file:///models/{version}"},
        "serving": {"image": "serving:1", "replicas": 4},
        "rollout": base,
    }


def verdict(outcome: Outcome, now: datetime, reason: str = "Test") -> Verdict:
    return Verdict(outcome=outcome, reason=reason, message=f"{outcome} for test", at=now)


def too_few(now: datetime) -> Verdict:
    """An Inconclusive verdict where no test ran for lack of samples (as the judge gives it)."""
    return Verdict(
        outcome=Outcome.INCONCLUSIVE,
        reason="NotEnoughSamples",
        message="ndcg: 12 canary samples, need 50",
        at=now,
        insufficient_data=True,
    )


def make_verdict(kind: str, now: datetime) -> Verdict:
    if kind == "unavailable":
        return Verdict.unavailable(now=now)
    if kind == "insufficient":
        return too_few(now)
    return verdict(Outcome(kind), now)


PASS, FAIL, INCONCLUSIVE = Outcome.PASS, Outcome.FAIL, Outcome.INCONCLUSIVE


class Driver:
    """Feeds the planner like the shell would: plan, judge when asked, plan again."""

    def __init__(self, spec: dict[str, Any], now: datetime = T0) -> None:
        self.spec = spec
        self.now = now
        self.status: dict[str, Any] = {}
        self.annotations: dict[str, str] = {}
        self.observed = Observed()
        self.events: list[tuple[str, str]] = []
        self.actions: list[Effect] = []
        self.generation = 1
        self.last: Planned | None = None
        self.request: AnalysisRequest | None = None  # the look the last reconcile asked for
        self.last_effects: tuple[Effect, ...] = ()
        self.verdict: Verdict | None = None  # the verdict the last reconcile judged with

    def plan(self, outcome: Outcome | str | None = None) -> Planned:
        """One reconcile: the look ``analysis_due`` asks for judged with ``outcome``, then one plan."""
        kwargs: dict[str, Any] = {
            "annotations": self.annotations,
            "generation": self.generation,
            "observed": self.observed,
        }
        self.request = look_due(self.spec, self.status, self.now, annotations=self.annotations)
        v = None if self.request is None or outcome is None else make_verdict(str(outcome), self.now)
        self.verdict = v
        plan = plan_rollout(self.spec, self.status, v, self.now, **kwargs)
        if v is not None:
            assert plan.state.last_analysis is v  # the verdict was used
        self.last_effects = effects(self.spec, self.status, plan.status)
        self.status = plan.status
        self.events += [(e.type, e.reason) for e in plan.events]
        self.actions += list(self.last_effects)
        self.last = plan
        return plan

    def advance(self, seconds: float, outcome: Outcome | str | None = None) -> Planned:
        self.now += timedelta(seconds=seconds)
        return self.plan(outcome)

    def set_version(self, version: str) -> None:
        self.spec = copy.deepcopy(self.spec)
        self.spec["model"] = {"version": version, "uri": f"file:///models/{version}"}
        self.generation += 1

    def reasons(self) -> list[str]:
        return [r for _, r in self.events]


def started(spec: dict[str, Any] | None = None) -> Driver:
    d = Driver(spec or make_spec())
    d.plan()
    d.set_version("1.1.0")
    d.advance(1)
    return d


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


# --------------------------------------------------------------------------- first deploy


def test_first_creation_deploys_directly_as_stable() -> None:
    d = Driver(make_spec())
    plan = d.plan()
    s = plan.status
    assert s["phase"] == "Healthy"
    assert s["stableVersion"] == "1.0.0" and s["stableUri"] == "file:///models/1.0.0"
    assert s["canaryWeight"] == 0 and "canaryVersion" not in s
    assert s["observedGeneration"] == 1
    assert d.last_effects == (DeployStable("1.0.0", "file:///models/1.0.0"),)
    assert d.reasons() == ["Deployed"]
    assert s["history"][0]["outcome"] == "Deployed"
    assert condition(s, "Available")["status"] == "True"
    assert condition(s, "Progressing")["status"] == "False"
    assert condition(s, "Degraded")["status"] == "False"
    assert plan.requeue_after is None


def test_first_creation_pending_until_stable_ready() -> None:
    d = Driver(make_spec())
    d.observed = Observed(stable_ready=False)
    assert d.plan().status["phase"] == "Pending"
    assert condition(d.status, "Available")["status"] == "False"
    d.observed = Observed(stable_ready=True)
    assert d.advance(5).status["phase"] == "Healthy"
    assert condition(d.status, "Available")["status"] == "True"
    d.observed = Observed(stable_ready=False)
    assert d.advance(5).status["phase"] == "Degraded"


# --------------------------------------------------------------------------- a full rollout


def test_new_version_starts_a_canary_at_step_zero() -> None:
    d = started()
    s = d.status
    assert s["phase"] == "Progressing"
    assert s["canaryVersion"] == "1.1.0" and s["stableVersion"] == "1.0.0"
    assert s["currentStep"] == 0 and s["canaryWeight"] == 10
    assert s["canaryRevision"] == 1
    assert d.reasons()[-1] == "RolloutStarted"
    assert ScaleCanary("1.1.0", "file:///models/1.1.0", 1) in d.last_effects
    assert SetWeights(stable=90, canary=10) in d.last_effects
    assert condition(s, "Progressing") | {"lastTransitionTime": None} == condition(s, "Progressing") | {
        "lastTransitionTime": None,
        "status": "True",
        "reason": "RolloutInProgress",
    }
    assert d.last.requeue_after == 30  # type: ignore[union-attr]


def test_full_rollout_with_pauses_and_analysis() -> None:
    d = started()
    # Analysis is not due before the interval.
    plan = d.advance(10)
    assert d.request is None and plan.requeue_after == pytest.approx(20)
    # Due at 30 s after readiness.
    plan = d.advance(20)
    assert d.request is not None and plan.requeue_after == 0
    assert (d.request.look, d.request.planned_looks, d.request.step) == (1, 4, 0)
    assert d.request.window_s == pytest.approx(30)
    plan = d.plan(PASS)
    assert d.status["stepPassed"] is True and d.status["currentStep"] == 0  # the pause (1m) still runs
    assert plan.requeue_after == pytest.approx(30)
    d.advance(30)
    assert d.status["currentStep"] == 1 and d.status["canaryWeight"] == 50
    assert d.status["stepLooks"] == 0 and d.status["stepPassed"] is False
    d.advance(30, PASS)
    assert d.status["currentStep"] == 2 and d.status["canaryWeight"] == 100
    d.advance(1)
    s = d.status
    assert s["phase"] == "Healthy" and s["stableVersion"] == "1.1.0" and "canaryVersion" not in s
    assert s["canaryWeight"] == 0
    assert s["history"][-1] | {"at": None} == {
        "revision": 1,
        "version": "1.1.0",
        "outcome": "Promoted",
        "reason": "AnalysisPassed",
        "at": None,
        "uri": "file:///models/1.1.0",  # what `kubectl rankops undo` restores
    }
    assert d.reasons().count("Promoted") == 1
    assert PromoteCanaryToStable("1.1.0", "file:///models/1.1.0") in d.actions
    assert ScaleDownCanary() in d.actions
    assert condition(s, "AnalysisSucceeded")["status"] == "True"
    # Idempotent afterwards: nothing to write, nothing to do.
    again = d.advance(600)
    assert again.status_patch == {} and d.last_effects == () and again.events == ()


def test_nothing_to_write_between_decisions() -> None:
    d = started()
    d.advance(30, INCONCLUSIVE)
    for _ in range(5):
        plan = d.advance(5)
        assert plan.status_patch == {} and d.last_effects == () and plan.events == ()
        assert d.request is None and plan.requeue_after is not None and plan.requeue_after > 0


def test_steps_without_analysis_only_wait_for_pauses() -> None:
    spec = make_spec(steps=[{"weight": 20, "pause": "2m"}, {"weight": 100}])
    del spec["rollout"]["analysis"]
    d = started(spec)
    d.advance(60)
    assert d.request is None and d.status["currentStep"] == 0
    d.advance(60)
    assert d.status["currentStep"] == 1
    d.advance(1)
    assert d.status["stableVersion"] == "1.1.0"
    assert d.status["history"][-1]["reason"] == "StepsCompleted"


def test_verdict_when_not_due_is_ignored() -> None:
    d = started()
    status = d.status
    v = verdict(PASS, d.now)
    assert look_due(d.spec, status, d.now + timedelta(seconds=5)) is None
    plan = plan_rollout(d.spec, status, v, d.now + timedelta(seconds=5))
    assert plan.state.last_analysis is not v
    assert plan.status.get("stepPassed") is False


def test_window_grows_with_the_rollout() -> None:
    d = started()
    d.advance(30, INCONCLUSIVE)
    d.advance(30)
    assert d.request is not None and d.request.look == 2
    assert d.request.window_s == pytest.approx(60)
    assert d.request.window_for(45) == pytest.approx(45)
    assert d.request.window_for(None) == pytest.approx(60)


# --------------------------------------------------------------------------- failures


def test_failures_reaching_the_limit_roll_back() -> None:
    d = started()
    d.advance(30, FAIL)
    assert d.status["phase"] == "Progressing" and d.status["stepFailures"] == 1
    d.advance(30, FAIL)
    s = d.status
    assert s["phase"] == "RolledBack"
    assert s["canaryWeight"] == 0 and "canaryVersion" not in s
    assert s["stableVersion"] == "1.0.0" and s["abortedVersion"] == "1.1.0"
    assert s["history"][-1]["outcome"] == "RolledBack" and s["history"][-1]["reason"] == "AnalysisFailed"
    assert ("Warning", "RolledBack") in d.events
    assert condition(s, "Degraded")["status"] == "True"
    assert condition(s, "Progressing")["reason"] == "AnalysisFailed"
    # Spec is untouched and the object stays RolledBack.
    assert d.spec["model"]["version"] == "1.1.0"
    for _ in range(3):
        plan = d.advance(300)
        assert plan.status["phase"] == "RolledBack" and plan.status_patch == {} and d.last_effects == ()


def test_inconclusive_reaching_the_limit_rolls_back() -> None:
    d = started()
    for _ in range(2):
        d.advance(30, INCONCLUSIVE)
        assert d.status["phase"] == "Progressing"
    d.advance(30, INCONCLUSIVE)
    assert d.status["phase"] == "RolledBack"
    assert d.status["history"][-1]["reason"] == "AnalysisInconclusive"


# --------------------------------------------------------------------------- looks without enough samples


def test_looks_without_enough_samples_do_not_count() -> None:
    d = started()  # progressDeadline 10m (default), interval 30s, inconclusiveLimit 3
    for _ in range(10):  # far more than inconclusiveLimit looks, all short of samples
        plan = d.advance(30, "insufficient")
        assert d.verdict is not None and plan.state.last_analysis is d.verdict
    s = d.status
    assert s["phase"] == "Progressing" and s["currentStep"] == 0
    assert s["stepLooks"] == 0 and s["stepInconclusive"] == 0 and s["totalLooks"] == 0
    assert s["lastAnalysis"]["insufficientData"] is True
    assert s["lastAnalysisAt"] == "2026-03-01T12:05:01Z"
    assert s["waitingForSamplesSince"] == s["stepReadyAt"]
    assert "12 canary samples, need 50" in s["message"] and "gives up at 2026-03-01T12:10:01Z" in s["message"]
    cond = condition(s, "AnalysisSucceeded")
    assert cond["status"] == "Unknown" and cond["reason"] == "WaitingForSamples"
    assert "need 50" in cond["message"]
    assert d.reasons().count("WaitingForSamples") == 1  # only when the wait starts
    assert "AnalysisInconclusive" not in d.reasons()
    # the next look still asks for look 1: untested looks are not numbered
    request = look_due(d.spec, d.status, d.now + timedelta(seconds=30))
    assert request is not None and request.look == 1
    # once samples arrive, tested looks count as before and the wait ends
    d.advance(30, INCONCLUSIVE)
    assert d.status["stepLooks"] == 1 and d.status["stepInconclusive"] == 1
    assert "waitingForSamplesSince" not in d.status
    assert condition(d.status, "AnalysisSucceeded")["status"] == "False"
    d.advance(30, PASS)
    assert d.status["currentStep"] == 1  # passed; the step's 1m pause has run out: advanced


def test_no_tested_look_within_progress_deadline_rolls_back() -> None:
    d = started()
    ready = d.status["stepReadyAt"]
    for _ in range(19):  # 19 x 30 s = 570 s < 600 s
        d.advance(30, "insufficient")
    assert d.status["phase"] == "Progressing"
    d.advance(30, "insufficient")  # 600 s after readiness
    s = d.status
    assert s["phase"] == "RolledBack" and s["abortedVersion"] == "1.1.0" and s["canaryWeight"] == 0
    assert s["history"][-1]["reason"] == "NoAnalysisData" and s["history"][-1]["outcome"] == "RolledBack"
    assert ready == "2026-03-01T12:00:01Z" and "no analysis with enough samples within 600s" in s["message"]
    assert condition(s, "Degraded")["reason"] == "RolledBack"
    assert ("Warning", "RolledBack") in d.events


def test_no_analysis_data_without_auto_rollback_pauses_until_retry() -> None:
    d = started(make_spec(autoRollback=False, progressDeadline="2m"))
    for _ in range(4):
        d.advance(30, "insufficient")
    s = d.status
    assert s["phase"] == "Paused" and s["pauseReason"] == "NoAnalysisData" and s["canaryWeight"] == 10
    assert (
        condition(s, "Degraded")["status"] == "True"
        and condition(s, "Degraded")["reason"] == "NoAnalysisData"
    )
    d.advance(600, "insufficient")
    assert d.request is None  # halted: waits for a person
    assert d.status["phase"] == "Paused"
    d.annotations[RETRY_ANNOTATION] = "1"
    d.advance(1)
    assert d.status["phase"] == "Progressing" and d.status["canaryRevision"] == 2
    assert "waitingForSamplesSince" not in d.status


def test_samples_deadline_counts_from_the_last_tested_look() -> None:
    d = started(make_spec(progressDeadline="2m"))
    d.advance(30, "insufficient")
    d.advance(30, "insufficient")
    d.advance(30, INCONCLUSIVE)  # a tested look at +90 s restarts the clock
    tested_at = d.now
    for _ in range(3):
        d.advance(30, "insufficient")
    assert d.status["phase"] == "Progressing"
    assert d.status["waitingForSamplesSince"] == tested_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    d.advance(30, "insufficient")  # 120 s after the tested look
    assert d.status["phase"] == "RolledBack" and d.status["history"][-1]["reason"] == "NoAnalysisData"
    assert d.reasons().count("WaitingForSamples") == 2  # one per wait


def test_metrics_outage_restarts_the_samples_deadline() -> None:
    d = started(make_spec(progressDeadline="2m"))
    for _ in range(3):
        d.advance(30, "insufficient")
    d.advance(30, "unavailable")
    assert d.status["pauseReason"] == "MetricsUnavailable" and "waitingForSamplesSince" not in d.status
    outage = d.now
    d.advance(30, "insufficient")  # resumes, waits again, counted from the outage look
    assert d.status["phase"] == "Progressing"
    assert d.status["waitingForSamplesSince"] == outage.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_not_significant_still_counts_toward_the_limit() -> None:
    d = started()
    for kind in ("insufficient", INCONCLUSIVE, "insufficient", INCONCLUSIVE, "insufficient"):
        d.advance(30, kind)
    assert d.status["stepInconclusive"] == 2 and d.status["stepLooks"] == 2
    d.advance(30, INCONCLUSIVE)
    assert d.status["phase"] == "RolledBack" and d.status["history"][-1]["reason"] == "AnalysisInconclusive"


def test_low_traffic_judged_by_the_real_judge_waits_then_promotes() -> None:
    """With the real judge: a canary short of samples is waited for, not rolled back."""
    from rankops.operator.core.judge import judge
    from rankops.operator.core.spec import Objective
    from rankops.operator.core.verdict import ObjectiveData, TrackSummary

    objective = Objective(name="ndcg", metric="ndcg_at_3", target=0.70, breach=0.65)
    spec = make_spec(steps=[{"weight": 10}, {"weight": 100}])
    d = started(spec)
    n = 0
    for _ in range(12):
        d.now += timedelta(seconds=30)
        n += 10  # 10 labelled canary requests per 30 s: minSamples (50) after 5 looks
        request = look_due(d.spec, d.status, d.now)
        v = None
        if request is not None:
            data = {
                "ndcg": ObjectiveData(
                    canary=TrackSummary(n=n, total=0.75 * n, squares_total=n * (0.75**2 + 0.001)),
                    stable=TrackSummary(n=9 * n, total=0.70 * 9 * n, squares_total=9 * n * (0.70**2 + 0.001)),
                )
            }
            v = judge([objective], data, look=request.look, planned_looks=4, now=d.now)
        plan = plan_rollout(d.spec, d.status, v, d.now, observed=d.observed)
        d.status = plan.status
        if d.status.get("stableVersion") == "1.1.0":
            break
    assert d.status["stableVersion"] == "1.1.0"
    assert d.status["history"][-1]["reason"] == "AnalysisPassed"


# --------------------------------------------------------------------------- steps with an unchanged split


def test_step_with_the_same_replica_split_is_ready_at_once() -> None:
    spec = make_spec(steps=[{"weight": 25}, {"weight": 50}, {"weight": 100}])
    del spec["rollout"]["analysis"]
    spec["serving"]["replicas"] = 2
    d = Driver(spec)
    d.observed = Observed(canary_ready=True, stable_ready=True)
    d.plan()
    d.set_version("1.1.0")
    d.advance(1)
    assert "stepReadyAt" not in d.status  # a new canary always waits for readiness
    d.advance(1)  # ready at 25 % (1 + 1 pods): on to 50 %, the same 1 + 1 pods
    assert d.status["currentStep"] == 1 and d.status["stepReadyAt"] == d.status["stepStartedAt"]
    plan = d.advance(1)  # nothing to wait for: on to 100 % (0 + 2 pods), which must be awaited
    assert d.status["currentStep"] == 2 and "stepReadyAt" not in d.status
    assert plan.requeue_after == 600.0


def test_step_with_a_changed_split_waits_for_readiness() -> None:
    spec = make_spec(steps=[{"weight": 25}, {"weight": 75}, {"weight": 100}])
    del spec["rollout"]["analysis"]
    d = Driver(spec)  # replicas 4: 1 canary at 25 %, 3 at 75 %
    d.observed = Observed(canary_ready=True, stable_ready=True)
    d.plan()
    d.set_version("1.1.0")
    d.advance(1)
    d.advance(1)
    assert d.status["currentStep"] == 1 and "stepReadyAt" not in d.status


def test_counters_do_not_reset_each_other_so_looks_are_bounded() -> None:
    d = started()
    looks = 0
    for outcome in (FAIL, INCONCLUSIVE, INCONCLUSIVE, FAIL, INCONCLUSIVE):
        if d.status["phase"] != "Progressing":
            break
        d.advance(30, outcome)
        looks += 1
    assert d.status["phase"] == "RolledBack"
    assert looks <= 2 + 3 - 1


def test_retry_token_restarts_once() -> None:
    d = started()
    d.advance(30, FAIL)
    d.advance(30, FAIL)
    assert d.status["phase"] == "RolledBack"
    d.annotations[RETRY_ANNOTATION] = "1"
    d.advance(5)
    s = d.status
    assert s["phase"] == "Progressing" and s["currentStep"] == 0 and s["canaryRevision"] == 2
    assert s["lastRetryToken"] == "1" and s["stepFailures"] == 0
    assert "abortedVersion" not in s
    d.advance(30, FAIL)
    d.advance(30, FAIL)
    assert d.status["phase"] == "RolledBack"
    d.advance(30)  # the same token does not retry again
    assert d.status["phase"] == "RolledBack"
    d.annotations[RETRY_ANNOTATION] = "2"
    d.advance(5)
    assert d.status["phase"] == "Progressing" and d.status["canaryRevision"] == 3


def test_new_version_after_rollback_starts_afresh_and_old_version_returns_healthy() -> None:
    d = started()
    d.advance(30, FAIL)
    d.advance(30, FAIL)
    d.set_version("1.2.0")
    d.advance(1)
    assert d.status["phase"] == "Progressing" and d.status["canaryVersion"] == "1.2.0"
    d.set_version("1.0.0")
    d.advance(1)
    assert d.status["phase"] == "Healthy" and "canaryVersion" not in d.status
    assert d.status["history"][-1]["outcome"] == "Superseded"


def test_rolled_back_then_spec_back_to_stable_is_healthy() -> None:
    d = started()
    d.advance(30, FAIL)
    d.advance(30, FAIL)
    d.set_version("1.0.0")
    d.advance(1)
    assert d.status["phase"] == "Healthy" and "abortedVersion" not in d.status


def test_no_auto_rollback_pauses_at_the_weight() -> None:
    d = started(make_spec(autoRollback=False))
    d.advance(30, FAIL)
    d.advance(30, FAIL)
    s = d.status
    assert s["phase"] == "Paused" and s["pauseReason"] == "AnalysisFailed"
    assert s["canaryWeight"] == 10 and s["canaryVersion"] == "1.1.0"
    assert condition(s, "Degraded")["status"] == "True"
    assert ("Warning", "RolloutPaused") in d.events
    plan = d.advance(300)
    assert d.request is None and plan.status_patch == {}
    d.annotations[PROMOTE_ANNOTATION] = "yes"
    d.advance(1)
    assert d.status["stableVersion"] == "1.1.0" and d.status["history"][-1]["reason"] == "ManualPromotion"


def test_no_auto_rollback_retry_restarts_the_analysis() -> None:
    d = started(make_spec(autoRollback=False))
    d.advance(30, FAIL)
    d.advance(30, FAIL)
    d.annotations[RETRY_ANNOTATION] = "a"
    d.advance(1)
    assert (
        d.status["phase"] == "Progressing"
        and d.status["stepFailures"] == 0
        and d.status["canaryRevision"] == 2
    )


def test_progress_deadline_fails_the_rollout() -> None:
    d = Driver(make_spec())
    d.plan()
    d.set_version("1.1.0")
    d.observed = Observed(canary_ready=False)
    plan = d.advance(1)
    assert plan.requeue_after == pytest.approx(600)
    d.advance(300)
    assert d.status["phase"] == "Progressing"
    d.advance(301)
    s = d.status
    assert s["phase"] == "Failed" and s["abortedVersion"] == "1.1.0"
    assert s["history"][-1] | {"at": None} == {
        "revision": 1,
        "version": "1.1.0",
        "outcome": "Failed",
        "reason": "ProgressDeadlineExceeded",
        "at": None,
        "uri": "file:///models/1.1.0",
    }
    assert condition(s, "Progressing")["reason"] == "ProgressDeadlineExceeded"


def test_progress_deadline_without_auto_rollback_pauses_then_resumes() -> None:
    d = Driver(make_spec(autoRollback=False))
    d.plan()
    d.set_version("1.1.0")
    d.observed = Observed(canary_ready=False)
    d.advance(1)
    d.advance(601)
    s = d.status
    assert (
        s["phase"] == "Paused" and s["pauseReason"] == "ProgressDeadlineExceeded" and s["canaryWeight"] == 10
    )
    assert d.reasons().count("ProgressDeadlineExceeded") == 1
    d.advance(60)
    assert d.reasons().count("ProgressDeadlineExceeded") == 1  # no repeated Events while it waits
    d.observed = Observed(canary_ready=True)
    d.advance(1)
    assert d.status["phase"] == "Progressing" and "pauseReason" not in d.status


def test_progress_deadline_pause_can_be_retried() -> None:
    d = Driver(make_spec(autoRollback=False))
    d.plan()
    d.set_version("1.1.0")
    d.observed = Observed(canary_ready=False)
    d.advance(1)
    d.advance(601)
    d.annotations[RETRY_ANNOTATION] = "again"
    d.advance(1)
    assert d.status["phase"] == "Progressing" and d.status["canaryRevision"] == 2


def test_rollback_at_full_weight_keeps_capacity_until_stable_ready() -> None:
    spec = make_spec(steps=[{"weight": 50}, {"weight": 100, "analysis": True}])
    d = Driver(spec)
    d.observed = Observed(canary_ready=True, stable_ready=True)
    d.plan()
    d.set_version("1.1.0")
    d.advance(1)
    d.advance(1)  # ready at 50 %
    d.advance(30, PASS)
    assert d.status["canaryWeight"] == 100
    d.advance(1)  # ready at 100 %
    d.advance(30, FAIL)
    d.advance(30, FAIL)
    s = d.status
    assert s["phase"] == "RolledBack" and s["canaryDraining"] is True
    assert ScaleDownCanary() not in d.last_effects
    plan = tracks(d.spec, s)
    assert (plan.stable_replicas, plan.canary_replicas, plan.canary_version) == (4, 4, "1.0.0")
    d.observed = Observed(canary_ready=True, stable_ready=False)
    d.advance(5)
    assert d.status["canaryDraining"] is True and d.status["phase"] == "RolledBack"
    d.observed = Observed(canary_ready=True, stable_ready=True)
    d.advance(5)
    assert d.status["canaryDraining"] is False and d.status["phase"] == "RolledBack"
    assert tracks(d.spec, d.status).canary_replicas == 0


def test_rollback_below_full_weight_removes_the_canary_at_once() -> None:
    d = Driver(make_spec())
    d.observed = Observed(canary_ready=True, stable_ready=True)
    d.plan()
    d.set_version("1.1.0")
    d.advance(1)
    d.advance(1)
    d.advance(30, FAIL)
    d.advance(30, FAIL)
    assert d.status["phase"] == "RolledBack" and d.status["canaryDraining"] is False
    assert ScaleDownCanary() in d.last_effects


def test_pause_counts_from_readiness() -> None:
    spec = make_spec(steps=[{"weight": 10, "pause": "1m"}, {"weight": 100}])
    del spec["rollout"]["analysis"]
    d = Driver(spec)
    d.plan()
    d.set_version("1.1.0")
    d.observed = Observed(canary_ready=False)
    d.advance(1)
    d.advance(120)
    assert d.status["currentStep"] == 0 and "stepReadyAt" not in d.status
    d.observed = Observed(canary_ready=True)
    d.advance(1)
    assert d.status["stepReadyAt"]
    d.advance(59)
    assert d.status["currentStep"] == 0
    d.advance(1)
    assert d.status["currentStep"] == 1


# --------------------------------------------------------------------------- metrics outage


def test_metrics_unavailable_pauses_and_resumes() -> None:
    d = started()
    d.advance(30, "unavailable")
    s = d.status
    assert s["phase"] == "Paused" and s["pauseReason"] == "MetricsUnavailable"
    assert s["stepLooks"] == 0 and s["stepInconclusive"] == 0
    assert ("Warning", "MetricsUnavailable") in d.events
    assert condition(s, "Degraded")["status"] == "False"
    assert condition(s, "Progressing")["reason"] == "MetricsUnavailable"
    for _ in range(10):  # a long outage neither rolls back nor promotes
        d.advance(30, "unavailable")
    assert d.status["phase"] == "Paused" and d.reasons().count("MetricsUnavailable") == 1
    d.advance(30, PASS)
    # the Pass counts; the step's pause (1m) has long run out, so the rollout moves on at once
    assert d.status["phase"] == "Progressing" and d.status["currentStep"] == 1
    assert "Resumed" in d.reasons() and "AnalysisPassed" in d.reasons()


def _plan_with(d: Driver, v: Verdict) -> Planned:
    d.now += timedelta(seconds=30)
    kwargs: dict[str, Any] = {
        "annotations": d.annotations,
        "generation": d.generation,
        "observed": d.observed,
    }
    assert look_due(d.spec, d.status, d.now, annotations=d.annotations) is not None
    plan = plan_rollout(d.spec, d.status, v, d.now, **kwargs)
    assert plan.state.last_analysis is v
    d.status = plan.status
    d.events += [(e.type, e.reason) for e in plan.events]
    return plan


def test_missing_or_invalid_slo_pauses_with_its_own_reason_and_resumes() -> None:
    d = started()
    missing = Verdict.unavailable("SLONotFound", "QualitySLO search/quality not found", now=d.now)
    plan = _plan_with(d, missing)
    s = d.status
    assert s["phase"] == "Paused" and s["pauseReason"] == "SLONotFound"
    assert s["message"] == "canary 1.1.0 paused at weight 10: QualitySLO search/quality not found"
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "SLONotFound")]
    assert "QualitySLO search/quality not found" in plan.events[0].message
    assert condition(s, "Progressing")["status"] == "False"
    assert condition(s, "Progressing")["reason"] == "SLONotFound"
    assert condition(s, "AnalysisSucceeded")["reason"] == "SLONotFound"
    assert condition(s, "AnalysisSucceeded")["status"] == "Unknown"
    assert condition(s, "Degraded")["status"] == "False"  # waits for the SLO, not a failed canary
    for _ in range(5):  # no looks counted, no repeated Event, no rollback however long it takes
        plan = _plan_with(d, missing)
        assert plan.events == ()
    assert d.status["stepLooks"] == 0 and d.status["totalLooks"] == 0
    assert d.status["stepInconclusive"] == 0 and d.status["phase"] == "Paused"
    # The SLO appears with an unusable spec: a new reason, a new Event.
    plan = _plan_with(
        d, Verdict.unavailable("InvalidSLO", "QualitySLO search/quality: no objectives", now=d.now)
    )
    assert d.status["pauseReason"] == "InvalidSLO"
    assert condition(d.status, "Progressing")["reason"] == "InvalidSLO"
    assert [e.reason for e in plan.events] == ["InvalidSLO"]
    # Fixed: the next available verdict resumes and counts.
    plan = _plan_with(d, verdict(PASS, d.now))
    assert d.status["phase"] == "Progressing" and "pauseReason" not in d.status
    resumed = next(e for e in plan.events if e.reason == "Resumed")
    assert resumed.message.startswith("QualitySLO valid again")
    assert "AnalysisPassed" in d.reasons()


def test_a_metrics_outage_after_a_missing_slo_is_reported_as_such() -> None:
    d = started()
    _plan_with(d, Verdict.unavailable("SLONotFound", "QualitySLO search/quality not found", now=d.now))
    plan = _plan_with(d, Verdict.unavailable(now=d.now))
    assert d.status["pauseReason"] == "MetricsUnavailable"
    assert [e.reason for e in plan.events] == ["MetricsUnavailable"]
    # An unknown reason from the shell is reported as a metrics outage.
    plan = _plan_with(d, Verdict.unavailable("SomethingElse", "boom", now=d.now))
    assert d.status["pauseReason"] == "MetricsUnavailable" and plan.events == ()


# --------------------------------------------------------------------------- spec changes


def test_spec_change_during_rollout_restarts_analysis() -> None:
    d = started()
    d.advance(30, PASS)
    d.advance(30)
    assert d.status["currentStep"] == 1
    d.advance(30, FAIL)
    d.set_version("1.2.0")
    d.advance(1)
    s = d.status
    assert s["canaryVersion"] == "1.2.0" and s["currentStep"] == 0 and s["canaryWeight"] == 10
    assert s["stepFailures"] == 0 and s["stepLooks"] == 0 and s["totalLooks"] == 0
    assert s["canaryRevision"] == 2 and "lastAnalysis" not in s
    assert "RolloutRestarted" in d.reasons()
    assert s["history"][-1]["outcome"] == "Superseded"


def test_spec_back_to_stable_cancels_the_rollout() -> None:
    d = started()
    d.set_version("1.0.0")
    d.advance(1)
    assert (
        d.status["phase"] == "Healthy" and "canaryVersion" not in d.status and d.status["canaryWeight"] == 0
    )
    assert "RolloutCancelled" in d.reasons()


def test_steps_shrinking_under_a_rollout_keep_the_step_in_range() -> None:
    d = started()
    d.advance(30, PASS)
    d.advance(30)
    assert d.status["currentStep"] == 1
    d.spec = copy.deepcopy(d.spec)
    d.spec["rollout"]["steps"] = [{"weight": 100}]
    d.advance(1)
    assert d.status["stableVersion"] == "1.1.0"


# --------------------------------------------------------------------------- annotations


def test_manual_promote_is_full_and_consumed_once() -> None:
    d = started()
    d.annotations[PROMOTE_ANNOTATION] = "t1"
    d.advance(1)
    assert d.status["stableVersion"] == "1.1.0" and d.status["lastPromoteToken"] == "t1"
    d.set_version("1.2.0")
    d.advance(1)
    assert d.status["phase"] == "Progressing"  # the old token does not promote the next rollout
    d.advance(1)
    assert d.status["canaryVersion"] == "1.2.0"


def test_abort_rolls_back_until_retry() -> None:
    d = started()
    d.annotations[ABORT_ANNOTATION] = "now"
    d.advance(1)
    s = d.status
    assert s["phase"] == "RolledBack" and s["history"][-1]["outcome"] == "Aborted"
    assert s["abortedVersion"] == "1.1.0" and ("Warning", "Aborted") in d.events
    d.advance(100)
    assert d.status["phase"] == "RolledBack"
    d.annotations[RETRY_ANNOTATION] = "go"
    d.advance(1)
    assert d.status["phase"] == "Progressing"


def test_tokens_that_do_not_apply_are_consumed_and_ignored() -> None:
    d = Driver(make_spec())
    d.annotations = {PROMOTE_ANNOTATION: "p", ABORT_ANNOTATION: "a", RETRY_ANNOTATION: "r"}
    d.plan()
    s = d.status
    assert (s["lastPromoteToken"], s["lastAbortToken"], s["lastRetryToken"]) == ("p", "a", "r")
    assert d.reasons().count("AnnotationIgnored") == 3
    d.set_version("1.1.0")
    d.advance(1)
    assert d.status["phase"] == "Progressing"


# --------------------------------------------------------------------------- promotion draining, freeze


def test_promotion_keeps_canary_until_stable_ready() -> None:
    spec = make_spec(steps=[{"weight": 100}])
    del spec["rollout"]["analysis"]
    d = Driver(spec)
    d.observed = Observed(canary_ready=True, stable_ready=True)
    d.plan()
    d.set_version("1.1.0")
    d.advance(1)  # starts: canary not yet seen ready at weight 100
    assert d.status["phase"] == "Progressing" and "stepReadyAt" not in d.status
    d.advance(1)  # ready, no pause, no analysis: promoted
    assert d.status["stableVersion"] == "1.1.0" and d.status["canaryDraining"] is True
    assert ScaleDownCanary() not in d.last_effects
    # The shell reports the stable Deployment ready only once it runs the new template.
    d.observed = Observed(canary_ready=True, stable_ready=False)
    d.advance(5)
    assert d.status["canaryDraining"] is True
    # not Degraded: the canary track serves the promoted version meanwhile
    assert d.status["phase"] == "Progressing"
    assert d.status["message"] == "promoting: waiting for stable 1.1.0 to be ready"
    assert condition(d.status, "Available")["status"] == "True"
    assert condition(d.status, "Available")["reason"] == "CanaryServing"
    assert condition(d.status, "Progressing")["reason"] == "WaitingForStable"
    assert condition(d.status, "Degraded")["status"] == "False"
    d.observed = Observed(canary_ready=True, stable_ready=True)
    d.advance(5)
    assert d.status["canaryDraining"] is False and ScaleDownCanary() in d.last_effects
    assert d.status["phase"] == "Healthy" and "awaitingStableSince" not in d.status
    assert "StableReady" in d.reasons()


GATEWAY = {"gatewayAPI": {"httpRoute": "m-route"}}


def route_weights_of(d: Driver) -> tuple[int, int]:
    """(stable, canary) backendRef weights of the HTTPRoute built from the driver's status."""
    children = children_of({"name": "m", "namespace": "ns", "uid": "u"}, d.spec, d.status)
    (route,) = [c for c in children if c["kind"] == "HTTPRoute"]
    stable, canary = route["spec"]["rules"][0]["backendRefs"]
    return stable["weight"], canary["weight"]


def test_gateway_promotion_routes_to_the_canary_until_stable_ready() -> None:
    spec = make_spec(steps=[{"weight": 50}, {"weight": 100}], trafficRouting=GATEWAY)
    del spec["rollout"]["analysis"]
    d = Driver(spec)
    d.observed = Observed(canary_ready=True, stable_ready=True)
    d.plan()
    d.set_version("1.1.0")
    d.advance(1)  # 50 % (the canary, reported ready, is ready for the step at once)
    d.advance(1)  # step 2: 100 %
    assert route_weights_of(d) == (0, 100)
    d.observed = Observed(canary_ready=True, stable_ready=False)
    plan = d.advance(1)  # promoted
    assert d.status["stableVersion"] == "1.1.0" and d.status["canaryDraining"] is True
    assert "canaryVersion" not in d.status
    # The stable Deployment rolls to 1.1.0; the route keeps all traffic on the canary track, which
    # serves 1.1.0 at full size.
    assert d.last_effects == (PromoteCanaryToStable("1.1.0", "file:///models/1.1.0"),)
    assert d.status["canaryWeight"] == 100 and route_weights_of(d) == (0, 100)
    both = tracks(d.spec, d.status)
    assert (both.stable_version, both.canary_version, both.canary_replicas) == ("1.1.0", "1.1.0", 4)
    plan = d.advance(5)
    assert route_weights_of(d) == (0, 100) and d.status["phase"] == "Progressing"
    assert condition(d.status, "Available")["reason"] == "CanaryServing"
    assert not d.last_effects
    # Stable ready with the new version: the route switches; the canary keeps its pods this plan.
    d.observed = Observed(canary_ready=True, stable_ready=True)
    plan = d.advance(5)
    assert d.last_effects == (SetWeights(stable=100, canary=0),) and plan.requeue_after == 0
    assert route_weights_of(d) == (100, 0) and d.status["canaryDraining"] is True
    assert tracks(d.spec, d.status).canary_replicas == 4
    assert d.status["phase"] == "Healthy" and "TrafficSwitched" in d.reasons()
    # The next plan (after the shell applied the route) scales the canary down.
    plan = d.advance(0.1)
    assert d.last_effects == (ScaleDownCanary(),) and d.status["canaryDraining"] is False
    assert tracks(d.spec, d.status).canary_replicas == 0 and route_weights_of(d) == (100, 0)
    assert d.status["canaryWeight"] == 0 and "StableReady" in d.reasons()
    assert d.advance(1).status_patch == {}


def test_gateway_manual_promotion_shifts_all_traffic_once_the_canary_is_full_size() -> None:
    spec = make_spec(steps=[{"weight": 10}, {"weight": 100}], trafficRouting=GATEWAY)
    del spec["rollout"]["analysis"]
    spec["rollout"]["steps"][0]["pause"] = "1h"
    d = Driver(spec)
    d.observed = Observed(canary_ready=True, stable_ready=True)
    d.plan()
    d.set_version("1.1.0")
    d.advance(1)  # 10 %, pausing an hour
    d.annotations[PROMOTE_ANNOTATION] = "now"
    d.observed = Observed(canary_ready=True, stable_ready=False)
    d.advance(1)
    assert d.status["canaryDraining"] is True and route_weights_of(d) == (90, 10)
    assert tracks(d.spec, d.status).canary_replicas == 4  # scales up to full size
    d.observed = Observed(canary_ready=False, stable_ready=False)
    d.advance(1)
    assert route_weights_of(d) == (90, 10)
    d.observed = Observed(canary_ready=True, stable_ready=False)
    d.advance(1)
    assert route_weights_of(d) == (0, 100) and SetWeights(stable=0, canary=100) in d.last_effects
    assert "TrafficShifted" in d.reasons()
    d.observed = Observed(canary_ready=True, stable_ready=True)
    d.advance(1)
    assert route_weights_of(d) == (100, 0) and d.status["canaryDraining"] is True
    d.advance(1)
    assert d.status["canaryDraining"] is False and tracks(d.spec, d.status).canary_replicas == 0


def test_gateway_promotion_without_readiness_reports_switches_at_once() -> None:
    spec = make_spec(steps=[{"weight": 100}], trafficRouting=GATEWAY)
    del spec["rollout"]["analysis"]
    d = Driver(spec)
    d.plan()
    d.set_version("1.1.0")
    d.advance(1)  # 100 % (readiness unknown: ready at once)
    d.advance(1)  # promoted
    assert d.status["stableVersion"] == "1.1.0" and d.status["canaryDraining"] is False
    assert ScaleDownCanary() in d.last_effects and SetWeights(stable=100, canary=0) in d.last_effects
    assert route_weights_of(d) == (100, 0)


def test_gateway_rollback_needs_no_drain_and_routes_away_first() -> None:
    spec = make_spec(steps=[{"weight": 50}, {"weight": 100, "analysis": True}], trafficRouting=GATEWAY)
    d = Driver(spec)
    d.observed = Observed(canary_ready=True, stable_ready=True)
    d.plan()
    d.set_version("1.1.0")
    d.advance(1)  # 50 %
    d.advance(1)  # 100 %
    d.advance(30, FAIL)
    d.advance(30, FAIL)
    assert d.status["phase"] == "RolledBack" and d.status["canaryDraining"] is False
    assert ScaleDownCanary() in d.last_effects and route_weights_of(d) == (100, 0)
    # The stable track kept full capacity behind the route; the route goes before the canary's scale-down.
    children = children_of({"name": "m", "namespace": "ns", "uid": "u"}, d.spec, d.status)
    assert [c["kind"] for c in children][:2] == ["HTTPRoute", "Deployment"]
    assert tracks(d.spec, d.status).stable_replicas == 4


def test_stable_not_ready_long_after_promotion_is_degraded() -> None:
    spec = make_spec(steps=[{"weight": 100}], progressDeadline="2m")
    del spec["rollout"]["analysis"]
    d = Driver(spec)
    d.observed = Observed(canary_ready=True, stable_ready=True)
    d.plan()
    d.set_version("1.1.0")
    d.advance(1)
    plan = d.advance(1)  # promoted
    assert d.status["phase"] == "Progressing" and d.status["awaitingStableSince"] == "2026-03-01T12:00:02Z"
    assert condition(d.status, "Progressing")["status"] == "True"
    d.observed = Observed(canary_ready=True, stable_ready=False)
    plan = d.advance(60)
    assert d.status["phase"] == "Progressing" and plan.requeue_after == 60.0  # wakes at the deadline
    d.advance(60)
    assert d.status["phase"] == "Degraded" and d.status["canaryDraining"] is True
    assert "not ready within 120s; the canary track serves it meanwhile" in d.status["message"]
    assert condition(d.status, "Degraded")["reason"] == "StableNotReady"
    assert condition(d.status, "Available")["reason"] == "CanaryServing"
    assert d.reasons().count("StableNotReady") == 1
    d.advance(60)
    assert d.reasons().count("StableNotReady") == 1
    d.observed = Observed(canary_ready=True, stable_ready=True)
    d.advance(1)
    assert d.status["phase"] == "Healthy" and d.status["canaryDraining"] is False


def test_stable_that_was_ready_and_stops_is_degraded_at_once() -> None:
    spec = make_spec(steps=[{"weight": 100}])
    del spec["rollout"]["analysis"]
    d = Driver(spec)
    d.observed = Observed(canary_ready=True, stable_ready=True)
    d.plan()
    d.set_version("1.1.0")
    d.advance(1)
    d.advance(1)  # promoted
    d.advance(1)  # stable seen ready: promotion complete
    assert d.status["phase"] == "Healthy" and "awaitingStableSince" not in d.status
    d.observed = Observed(canary_ready=True, stable_ready=False)
    d.advance(1)
    assert d.status["phase"] == "Degraded"
    assert condition(d.status, "Available")["status"] == "False"


def test_uri_change_in_place_waits_for_stable() -> None:
    d = Driver(make_spec())
    d.observed = Observed(canary_ready=True, stable_ready=True)
    d.plan()
    d.advance(1)
    d.spec = copy.deepcopy(d.spec)
    d.spec["model"]["uri"] = "file:///models/1.0.0-rebuilt"
    d.advance(1)
    assert DeployStable("1.0.0", "file:///models/1.0.0-rebuilt") in d.last_effects
    assert d.status["phase"] == "Progressing"
    assert d.status["message"] == "updating: waiting for stable 1.0.0 to be ready"
    d.observed = Observed(canary_ready=True, stable_ready=False)
    d.advance(5)
    assert d.status["phase"] == "Progressing"
    d.observed = Observed(canary_ready=True, stable_ready=True)
    d.advance(5)
    assert d.status["phase"] == "Healthy"


def test_rollback_below_full_weight_scales_stable_up_without_degrading() -> None:
    d = started()
    d.observed = Observed(canary_ready=True, stable_ready=True)
    d.advance(30, FAIL)
    d.advance(30, FAIL)
    assert d.status["phase"] == "RolledBack" and "awaitingStableSince" in d.status
    d.observed = Observed(canary_ready=False, stable_ready=False)  # stable scaling back to 4
    d.set_version("1.0.0")
    d.advance(5)
    assert d.status["phase"] == "Progressing"
    assert d.status["message"] == "restoring stable: waiting for stable 1.0.0 to be ready"


def test_rollout_frozen_outside_window() -> None:
    d = Driver(make_spec())
    d.plan()
    d.set_version("1.1.0")
    plan = plan_rollout(d.spec, d.status, None, d.now, rollout_allowed=False)
    assert plan.status["phase"] == "Healthy" and "canaryVersion" not in plan.status
    assert condition(plan.status, "Progressing")["reason"] == "RolloutFrozen"
    plan = plan_rollout(d.spec, plan.status, None, d.now, rollout_allowed=True)
    assert plan.status["phase"] == "Progressing"


def test_retry_waits_for_the_window() -> None:
    d = started()
    d.advance(30, FAIL)
    d.advance(30, FAIL)
    d.annotations[RETRY_ANNOTATION] = "later"
    plan = plan_rollout(d.spec, d.status, None, d.now, annotations=d.annotations, rollout_allowed=False)
    assert plan.status["phase"] == "RolledBack" and "lastRetryToken" not in plan.status
    assert condition(plan.status, "Progressing")["reason"] == "RolloutFrozen"
    plan = plan_rollout(d.spec, plan.status, None, d.now, annotations=d.annotations, rollout_allowed=True)
    assert plan.status["phase"] == "Progressing" and plan.status["lastRetryToken"] == "later"


def test_running_rollout_is_not_frozen() -> None:
    d = started()
    later = d.now + timedelta(seconds=30)
    assert look_due(d.spec, d.status, later) is not None
    assert plan_rollout(d.spec, d.status, None, later, rollout_allowed=False).requeue_after == 0
    v = verdict(PASS, later)
    assert plan_rollout(d.spec, d.status, v, later, rollout_allowed=False).state.last_analysis is v


def test_cancelled_rollout_at_full_weight_drains() -> None:
    spec = make_spec(steps=[{"weight": 100, "pause": "10m"}])
    d = Driver(spec)
    d.observed = Observed(canary_ready=True, stable_ready=True)
    d.plan()
    d.set_version("1.1.0")
    d.advance(1)
    d.set_version("1.0.0")
    d.advance(1)
    assert d.status["phase"] == "Progressing" and d.status["canaryDraining"] is True
    assert d.status["message"] == "restoring stable: waiting for stable 1.0.0 to be ready"
    assert tracks(d.spec, d.status).canary_replicas == 4
    d.observed = Observed(canary_ready=True, stable_ready=True)
    d.advance(1)
    assert d.status["phase"] == "Healthy" and d.status["canaryDraining"] is False


def test_invalid_spec_event_only_once() -> None:
    d = started()
    error = SpecError("spec.rollout.steps", "the last step must have weight 100")
    first = plan_invalid_spec(d.status, error, d.now, generation=5)
    again = plan_invalid_spec(first.status, error, d.now + timedelta(seconds=30), generation=5)
    assert first.events and not again.events and again.status_patch == {}


# --------------------------------------------------------------------------- status hygiene


def test_history_is_bounded() -> None:
    d = started()
    for i in range(2, 2 + HISTORY_LIMIT + 5):
        d.set_version(f"1.{i}.0")
        d.advance(1)
    assert len(d.status["history"]) == HISTORY_LIMIT
    assert d.status["history"][-1]["version"] == f"1.{HISTORY_LIMIT + 5}.0"


def test_status_patch_deletes_dropped_keys() -> None:
    d = started()
    status = d.status
    d.set_version("1.0.0")
    plan = plan_rollout(d.spec, status, None, d.now + timedelta(seconds=1))
    assert plan.status_patch["canaryVersion"] is None
    assert plan.status_patch["currentStep"] is None
    assert "kopf" not in plan.status_patch


def test_foreign_status_keys_are_left_alone() -> None:
    d = Driver(make_spec())
    plan = plan_rollout(d.spec, {"kopf": {"progress": {}}}, None, d.now)
    assert "kopf" not in plan.status and "kopf" not in plan.status_patch


def test_status_validates_against_the_crd() -> None:
    crd = yaml.safe_load((ROOT / "crds" / "rankingmodels.yaml").read_text())
    d = started()
    statuses = [d.status]
    d.advance(30, "insufficient")
    statuses.append(d.status)
    assert "waitingForSamplesSince" in d.status and d.status["lastAnalysis"]["insufficientData"]
    d.advance(30, FAIL)
    statuses.append(d.status)
    d.advance(30, "unavailable")
    statuses.append(d.status)
    d.advance(30, FAIL)
    statuses.append(d.status)
    for status in statuses:
        json.dumps(status)
        obj = {
            "apiVersion": "rankops.dev/v1alpha1",
            "kind": "RankingModel",
            "metadata": {"name": "m"},
            "spec": d.spec,
            "status": status,
        }
        stored, errors = validate_custom_resource(crd, obj)
        assert [str(e) for e in errors] == []
        assert stored["status"] == status  # nothing pruned: the schema knows every field


def test_observed_generation_and_condition_generation() -> None:
    d = started()
    assert d.status["observedGeneration"] == 2
    assert all(c["observedGeneration"] == 2 for c in d.status["conditions"])


def test_condition_transition_time_kept_while_status_unchanged() -> None:
    d = started()
    first = condition(d.status, "Progressing")["lastTransitionTime"]
    d.advance(30, INCONCLUSIVE)
    assert condition(d.status, "Progressing")["lastTransitionTime"] == first
    d.advance(30, FAIL)
    d.advance(30, FAIL)
    assert condition(d.status, "Progressing")["lastTransitionTime"] != first


def test_invalid_spec_plan() -> None:
    d = started()
    plan = plan_invalid_spec(
        d.status, SpecError("spec.rollout.steps", "the last step must have weight 100"), d.now, generation=5
    )
    assert condition(plan.status, "Degraded")["reason"] == "InvalidSpec"
    assert plan.status["phase"] == "Progressing" and plan.status["observedGeneration"] == 5
    assert plan.events[0].type == "Warning"


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError):
        plan_rollout(make_spec(), {}, None, datetime(2026, 1, 1))


# --------------------------------------------------------------------------- properties

OPS = st.one_of(
    st.tuples(st.just("wait"), st.sampled_from([0, 1, 15, 30, 31, 60, 90, 700])),
    st.tuples(
        st.just("judge"), st.sampled_from(["Pass", "Fail", "Inconclusive", "unavailable", "insufficient"])
    ),
    st.tuples(st.just("version"), st.sampled_from(["1.0.0", "1.1.0", "1.2.0"])),
    st.tuples(st.just("annotate"), st.sampled_from([PROMOTE_ANNOTATION, ABORT_ANNOTATION, RETRY_ANNOTATION])),
    st.tuples(st.just("ready"), st.sampled_from([None, True, False])),
    st.tuples(
        st.just("steps"),
        st.sampled_from(
            [
                [{"weight": 10, "pause": "1m"}, {"weight": 50}, {"weight": 100}],
                [{"weight": 25}, {"weight": 100, "analysis": True}],
                [{"weight": 100}],
            ]
        ),
    ),
)


def _status_only_crd() -> dict[str, Any]:
    """The RankingModel CRD reduced to its status schema (fast to validate many statuses with)."""
    crd = yaml.safe_load((ROOT / "crds" / "rankingmodels.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["properties"] = {"status": schema["properties"]["status"]}
    schema.pop("required", None)
    return crd


STATUS_CRD = _status_only_crd()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(OPS, max_size=40), auto_rollback=st.booleans(), gateway=st.booleans())
def test_invariants_over_arbitrary_histories(
    ops: list[tuple[str, Any]], auto_rollback: bool, gateway: bool
) -> None:
    spec = make_spec(autoRollback=auto_rollback)
    if gateway:
        spec["rollout"]["trafficRouting"] = GATEWAY
    status: dict[str, Any] = {}
    now = T0
    annotations: dict[str, str] = {}
    observed = Observed()
    token = 0
    passes_by_revision: dict[int, set[int]] = {}
    promotions: list[int] = []
    steps_edited: set[int] = set()
    pending: str | None = None
    for kind, arg in ops:
        if kind == "wait":
            now += timedelta(seconds=arg)
        elif kind == "judge":
            pending = arg
        elif kind == "version":
            spec = copy.deepcopy(spec)
            spec["model"] = {"version": arg, "uri": f"file:///models/{arg}"}
        elif kind == "annotate":
            token += 1
            annotations = {**annotations, arg: str(token)}
        elif kind == "ready":
            observed = Observed(canary_ready=arg, stable_ready=arg)
        elif kind == "steps":
            spec = copy.deepcopy(spec)
            spec["rollout"]["steps"] = arg
            if status.get("canaryVersion"):
                steps_edited.add(status["canaryRevision"])

        kwargs: dict[str, Any] = {"annotations": annotations, "observed": observed}
        v: Verdict | None = None
        if look_due(spec, status, now, annotations=annotations) is not None and pending is not None:
            v = make_verdict(pending, now)
            pending = None
        plan = plan_rollout(spec, status, v, now, **kwargs)
        # Deterministic: the same inputs give the same plan.
        assert plan == plan_rollout(spec, status, v, now, **kwargs)

        old = status
        new = plan.status
        parsed = parse_ranking_model_spec(spec)
        # Tested looks per step stay within the number the judge splits alpha across.
        assert new.get("stepLooks", 0) <= parsed.rollout.looks_per_step
        # A look that tested nothing counts toward no limit (same rollout, same step).
        same_step = (old.get("canaryRevision"), old.get("currentStep")) == (
            new.get("canaryRevision"),
            new.get("currentStep"),
        )
        if v is not None:
            assert plan.state.last_analysis is v  # a look asked for is used
        if v is not None and v.insufficient_data and same_step:
            for key in ("stepLooks", "stepFailures", "stepInconclusive", "totalLooks"):
                assert new.get(key) == old.get(key), key
        # Giving up for lack of data only after progressDeadline without a tested look.
        if (
            new.get("history")
            and new["history"][-1]["reason"] == "NoAnalysisData"
            and new["history"] != old.get("history")
        ) or (new.get("pauseReason") == "NoAnalysisData" and old.get("pauseReason") != "NoAnalysisData"):
            ready = parse_time(old["stepReadyAt"])
            assert ready is not None
            assert (now - ready).total_seconds() >= parsed.rollout.progress_deadline_s
        # Weights stay within 0..100 and follow the step list.
        assert 0 <= new["canaryWeight"] <= 100
        if new.get("canaryVersion"):
            assert new["phase"] in ("Progressing", "Paused")
            assert new["canaryWeight"] == parsed.rollout.steps[new["currentStep"]].weight
            assert new["canaryVersion"] != new["stableVersion"]
        else:
            # Outside a rollout only a promoted canary draining behind a route keeps a share.
            assert new["canaryWeight"] == 0 or (gateway and new.get("canaryDraining"))
            assert "currentStep" not in new
            assert new["phase"] in ("Pending", "Healthy", "Degraded", "RolledBack", "Failed", "Progressing")
            if new["phase"] == "Progressing":  # only while the stable track is expected to become ready
                assert new.get("canaryDraining") or new.get("awaitingStableSince")
        assert new["stableVersion"]
        # Passes recorded per revision and step.
        if (
            v is not None
            and v.outcome is Outcome.PASS
            and not v.metrics_unavailable
            and old.get("canaryVersion")
        ):
            passes_by_revision.setdefault(old["canaryRevision"], set()).add(old["currentStep"])
        # Promotions: at most one per revision, and (unless manual) only with every analysis step passed.
        changes = effects(spec, old, new)
        promoted_now = any(isinstance(a, PromoteCanaryToStable) for a in changes)
        if promoted_now:
            revision = old["canaryRevision"]
            assert revision not in promotions
            promotions.append(revision)
            entry = new["history"][-1]
            assert entry["outcome"] == "Promoted" and new["stableVersion"] == old["canaryVersion"]
            if entry["reason"] == "AnalysisPassed" and revision not in steps_edited:
                needed = {
                    i for i in range(len(parsed.rollout.steps)) if parsed.rollout.step_requires_analysis(i)
                }
                assert needed <= passes_by_revision.get(revision, set())
        # Re-planning the result never promotes again.
        replan = plan_rollout(spec, new, None, now, **kwargs)
        if promoted_now:
            assert not any(isinstance(a, PromoteCanaryToStable) for a in effects(spec, new, replan.status))
        # Conditions keep their transition time while their status is unchanged.
        before = {c["type"]: c for c in old.get("conditions", [])}
        for c in new["conditions"]:
            if c["type"] in before and before[c["type"]]["status"] == c["status"]:
                assert c["lastTransitionTime"] == before[c["type"]]["lastTransitionTime"]
        assert len(new["history"]) <= HISTORY_LIMIT
        if gateway and any(isinstance(a, ScaleDownCanary) for a in changes):
            # The canary's pods go only once the route sends it nothing, and the route is applied first.
            children = children_of({"name": "m", "namespace": "ns", "uid": "u"}, spec, new)
            assert children[0]["kind"] == "HTTPRoute"
            assert [r["weight"] for r in children[0]["spec"]["rules"][0]["backendRefs"]] == [100, 0]
        status = new
    # Whatever the history, the status is one the CRD accepts unchanged (nothing pruned).
    stored, errors = validate_custom_resource(STATUS_CRD, {"metadata": {"name": "m"}, "status": status})
    assert [str(e) for e in errors] == []
    assert stored["status"] == status


@settings(max_examples=60, deadline=None)
@given(waits=st.lists(st.sampled_from([0, 1, 29, 30, 61, 120]), min_size=1, max_size=12))
def test_resume_from_status_alone_repeats_nothing(waits: list[int]) -> None:
    """Planning again from the written status (an operator restart) repeats no completed step."""
    d = started()
    for w in waits:
        d.advance(w, PASS)
        step_before = d.status.get("currentStep")
        again = plan_rollout(
            d.spec,
            d.status,
            None,
            d.now,
            annotations=d.annotations,
            generation=d.generation,
            observed=d.observed,
        )
        if again.status.get("currentStep") is not None and step_before is not None:
            assert again.status["currentStep"] >= step_before
        promoted = any(isinstance(a, PromoteCanaryToStable) for a in effects(d.spec, d.status, again.status))
        assert not promoted or d.status.get("canaryVersion")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(OPS, max_size=30), gateway=st.booleans())
def test_analysis_due_is_exactly_when_the_planner_uses_a_verdict(
    ops: list[tuple[str, Any]], gateway: bool
) -> None:
    """One pass per reconcile: the shell judges only when the plan will use the verdict, and then it does;
    the status planned from reads back into the same state (the status edge is lossless)."""
    spec = make_spec()
    if gateway:
        spec["rollout"]["trafficRouting"] = GATEWAY
    status: dict[str, Any] = {}
    now = T0
    annotations: dict[str, str] = {}
    observed = Observed()
    token = 0
    for kind, arg in ops:
        if kind == "wait":
            now += timedelta(seconds=arg)
        elif kind == "version":
            spec = copy.deepcopy(spec)
            spec["model"] = {"version": arg, "uri": f"file:///models/{arg}"}
        elif kind == "annotate":
            token += 1
            annotations = {**annotations, arg: str(token)}
        elif kind == "ready":
            observed = Observed(canary_ready=arg, stable_ready=arg)
        elif kind == "steps":
            spec = copy.deepcopy(spec)
            spec["rollout"]["steps"] = arg
        outcome = arg if kind == "judge" else "Pass"
        kwargs: dict[str, Any] = {"annotations": annotations, "observed": observed}
        request = look_due(spec, status, now, annotations=annotations)
        v = make_verdict(outcome, now)
        judged = plan_rollout(spec, status, v, now, **kwargs)
        assert (judged.state.last_analysis is v) == (request is not None)  # the very verdict is recorded
        event(f"look due: {request is not None}")
        unjudged = plan_rollout(spec, status, None, now, **kwargs)
        if request is None:
            assert judged.plan == unjudged.plan  # a verdict nobody asked for changes nothing
        else:
            assert unjudged.requeue_after == 0  # without its verdict the plan waits for the look
        plan = judged if request is not None else unjudged
        assert RolloutState.from_status(plan.status).to_status() == plan.status
        status = plan.status


def test_status_patch_clears_what_a_new_last_analysis_lacks() -> None:
    """The API server merges ``lastAnalysis`` key by key (RFC 7386): a look without evidence must
    null the previous look's, or ``kubectl get rm -o wide`` shows a finished rollout's old ETA."""
    from rankops.sandbox.patching import json_merge_patch

    old = {
        "phase": "Progressing",
        "lastAnalysis": {"verdict": "Inconclusive", "evidence": "ndcg: canary 29/261", "insufficientData": 1},
    }
    new = {"phase": "RolledBack", "lastAnalysis": {"verdict": "Fail", "look": 2}}
    patch = merge_patch(old, new)
    assert patch["lastAnalysis"] == {"verdict": "Fail", "look": 2, "evidence": None, "insufficientData": None}
    assert json_merge_patch(old, patch) == new
    assert merge_patch(new, new) == {}
