"""Analysis looks of a rollout: when one is due, what it asks for, and what its verdict does.

- ``analysis_due(spec, state, now, *, annotations) -> AnalysisRequest | None``: the look the
  shell should run (gather metrics, judge) before planning, or ``None``. Pure, from the stored
  state, so a reconcile plans once: the planner follows the same schedule (``next_look_at``) and
  the same tokens (``tokens``), and consumes the verdict of that look.
- Evidence accumulates over the whole rollout (``core.evidence``): each look's verdict carries
  the evidence after it, stored in ``status.evidence``; a new rollout starts from none.
- A Fail shown by an anytime-valid comparison (``harm_shown``) ends the step's analysis at once
  (``AnalysisFailed``: rollback, or Paused with ``autoRollback: false``); other Fail verdicts
  (value objectives, the recent-samples floor) count toward ``failureLimit``.
- A verdict still ``collecting`` evidence counts toward no limit: the comparisons' error rates
  hold however often they look. The step's analysis deadline bounds it: no decision within
  ``maxAnalysisDuration`` (unset: ``progressDeadline``) of the step's readiness ends the step
  with ``AnalysisTimedOut`` (rollback, or Paused), never a promotion. When the verdict's
  expected time to a decision at the current traffic passes that deadline, a Warning Event
  ``EvidenceShort`` says so, once per step.
- Other Inconclusive verdicts (e.g. non-inferior but below the breach floor) count toward
  ``inconclusiveLimit`` (``stepLooks``; counters reset on advancing, not by each other).
- A verdict with ``insufficient_data`` (no objective tested: no data or ``n < minSamples``)
  counts toward no limit. The status records it
  (``lastAnalysis``, ``waitingForSamplesSince``); an Event ``WaitingForSamples`` only when a wait
  starts. The wait is bounded: no tested look within ``progressDeadline`` of the step's
  readiness (or of its last look before the wait) gives up with reason ``NoAnalysisData``.
- A verdict with ``metrics_unavailable`` pauses and counts nothing; the next available verdict
  resumes (Event ``Resumed``). Its reason is the Warning Event's reason, the ``pauseReason`` and
  the Progressing condition's reason: ``SLONotFound``, ``InvalidSLO``, else ``MetricsUnavailable``.
  The Event is posted when the pause starts or its reason changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..evidence import Evidence
from ..spec import RankingModelSpec
from ..timeutil import format_duration, format_time
from ..verdict import Outcome, Verdict
from .context import PlanningPass
from .state import HALTED_REASONS, UNAVAILABLE_REASONS, RolloutState
from .tokens import Tokens

__all__ = [
    "AnalysisRequest",
    "Failure",
    "analysis_deadline",
    "analysis_due",
    "next_look_at",
    "record_verdict",
    "take_verdict",
]


@dataclass(frozen=True)
class AnalysisRequest:
    """An analysis look the shell should run now and pass to the planner as its verdict."""

    canary_version: str
    stable_version: str
    step: int
    look: int
    planned_looks: int
    window_s: float
    slo_ref: str
    min_samples: int | None = None
    evidence: Evidence | None = None  # what earlier looks of this rollout consumed

    def window_for(self, objective_window_s: float | None) -> float:
        """A value objective's query window: since the rollout started, capped by its ``window``.

        Summary objectives read ``window_s`` itself: their evidence accumulates since the start.
        """
        if objective_window_s is None:
            return self.window_s
        return min(self.window_s, objective_window_s)


@dataclass(frozen=True)
class Failure:
    """A limit reached: the rollout fails its analysis with this reason."""

    reason: str
    message: str


def current_step(spec: RankingModelSpec, state: RolloutState) -> int:
    """The step index, kept within the step list (it may have shrunk under a running rollout)."""
    return min(state.current_step or 0, len(spec.rollout.steps) - 1)


def next_look_at(spec: RankingModelSpec, state: RolloutState) -> datetime | None:
    """When the current step's next look is due; ``None`` when it needs none (yet, or any more)."""
    rollout, ready_at = spec.rollout, state.step_ready_at
    analysis = rollout.analysis
    if analysis is None or ready_at is None or state.step_passed:
        return None
    if not rollout.step_requires_analysis(current_step(spec, state)):
        return None
    last = state.last_analysis_at
    base = last if last is not None and last >= ready_at else ready_at
    return base + timedelta(seconds=analysis.interval_s)


def look_request(spec: RankingModelSpec, state: RolloutState, now: datetime) -> AnalysisRequest:
    """The look of the current step at ``now`` (the step needs analysis)."""
    analysis = spec.rollout.analysis
    assert analysis is not None and state.step_ready_at is not None
    started = state.rollout_started_at or state.step_ready_at
    if state.experiment is not None and state.experiment.started_at is not None:
        started = state.experiment.started_at  # an experiment's samples count from its start
    return AnalysisRequest(
        canary_version=state.canary_version or "",
        stable_version=state.stable_version or "",
        step=current_step(spec, state),
        look=state.step_looks + 1,
        planned_looks=spec.rollout.looks_per_step,
        window_s=max(0.0, (now - started).total_seconds()),
        slo_ref=analysis.slo_ref,
        min_samples=analysis.min_samples,
        evidence=state.evidence,
    )


def analysis_due(
    spec: RankingModelSpec,
    state: RolloutState,
    now: datetime,
    *,
    annotations: Mapping[str, str] | None = None,
) -> AnalysisRequest | None:
    """The look to run before planning at ``now``, if one is due (module docstring)."""
    model = spec.model
    if not state.in_rollout or (model.version, model.uri) != (state.canary_version, state.canary_uri):
        return None  # no rollout, or the plan restarts or ends it
    if Tokens.new(annotations, state).act_on_rollout(state):
        return None  # the plan promotes, aborts or retries first
    if state.phase == "Paused" and state.pause_reason in HALTED_REASONS:
        return None  # waits for a person
    due = next_look_at(spec, state)
    if due is None or now < due:
        return None
    return look_request(spec, state, now)


def record_verdict(p: PlanningPass, verdict: Verdict) -> Failure | None:
    """Count the verdict of a due look into the state; the limit it reaches, if any."""
    analysis = p.spec.rollout.analysis
    assert analysis is not None
    previous_look = p.state.last_analysis_at
    if not take_verdict(p, verdict):
        return None
    version = p.state.canary_version
    if verdict.insufficient_data:
        return _wait_for_samples(p, verdict, previous_look)
    p.set(
        step_looks=p.state.step_looks + 1,
        total_looks=p.state.total_looks + 1,
        waiting_for_samples_since=None,
    )
    looks = p.state.step_looks
    if verdict.harm_shown:
        p.set(step_failures=p.state.step_failures + 1)
        p.event("Warning", "AnalysisFailed", f"{version} look {looks}: harm shown: {verdict.message}")
        return Failure("AnalysisFailed", f"canary {version} failed analysis: {verdict.message}")
    if verdict.collecting:
        return _collect(p, verdict)
    if verdict.outcome is Outcome.PASS:
        p.set(step_passed=True)
        p.event("Normal", "AnalysisPassed", f"{version} look {looks}: {verdict.message}")
    elif verdict.outcome is Outcome.FAIL:
        failures = p.state.step_failures + 1
        p.set(step_failures=failures)
        p.event(
            "Warning",
            "AnalysisFailed",
            f"{version} look {looks} failed ({failures}/{analysis.failure_limit}): {verdict.message}",
        )
        if failures >= analysis.failure_limit:
            return Failure(
                "AnalysisFailed", f"canary {version} failed analysis {failures} times: {verdict.reason}"
            )
    else:
        inconclusive = p.state.step_inconclusive + 1
        p.set(step_inconclusive=inconclusive)
        p.event(
            "Normal",
            "AnalysisInconclusive",
            f"{version} look {looks} inconclusive ({inconclusive}/{analysis.inconclusive_limit}): "
            f"{verdict.message}",
        )
        if inconclusive >= analysis.inconclusive_limit:
            return Failure(
                "AnalysisInconclusive",
                f"canary {version} inconclusive {inconclusive} times: {verdict.reason}",
            )
    return None


def take_verdict(p: PlanningPass, verdict: Verdict) -> bool:
    """Record a due look's verdict and its evidence; False when it paused for want of metrics."""
    p.set(last_analysis=verdict, last_analysis_at=p.now)
    version = p.state.canary_version
    if verdict.metrics_unavailable:
        reason = verdict.reason if verdict.reason in UNAVAILABLE_REASONS else "MetricsUnavailable"
        if p.state.phase != "Paused" or p.state.pause_reason != reason:
            p.event("Warning", reason, f"analysis of {version} paused: {verdict.message}")
        p.set(
            phase="Paused",
            pause_reason=reason,
            message=f"canary {version} paused at weight {p.state.canary_weight}: {verdict.message}",
            waiting_for_samples_since=None,  # an outage is not counted against the samples deadline
        )
        return False
    if p.state.phase == "Paused":
        again = {"SLONotFound": "QualitySLO found", "InvalidSLO": "QualitySLO valid again"}.get(
            p.state.pause_reason or "", "metrics available again"
        )
        p.event("Normal", "Resumed", f"{again}; analysis of {version} resumed")
    p.set(phase="Progressing", pause_reason=None)
    if verdict.evidence is not None:
        p.set(evidence=verdict.evidence)
    return True


def analysis_deadline(spec: RankingModelSpec, state: RolloutState) -> datetime | None:
    """When the current step must have decided: ``maxAnalysisDuration`` (or ``progressDeadline``)
    after its readiness."""
    analysis = spec.rollout.analysis
    if analysis is None or state.step_ready_at is None:
        return None
    limit = analysis.max_analysis_duration_s or spec.rollout.progress_deadline_s
    return state.step_ready_at + timedelta(seconds=limit)


def _collect(p: PlanningPass, verdict: Verdict) -> Failure | None:
    """A look whose comparisons have not decided yet: keep collecting until the step's deadline."""
    version, index = p.state.canary_version, p.state.current_step or 0
    deadline = analysis_deadline(p.spec, p.state)
    assert deadline is not None
    if p.now >= deadline:
        waited = format_duration((deadline - (p.state.step_ready_at or p.now)).total_seconds())
        return Failure(
            "AnalysisTimedOut",
            f"canary {version}: no decision within {waited} at step {index + 1}: {verdict.message}",
        )
    eta = verdict.eta_s
    if (
        eta is not None
        and p.now + timedelta(seconds=eta) > deadline
        and p.state.evidence_warned_step != index
    ):
        p.set(evidence_warned_step=index)
        p.event(
            "Warning",
            "EvidenceShort",
            f"canary {version} at step {index + 1}: a decision needs about "
            f"{format_duration(round(eta))} more "
            f"at the current labelled traffic ({verdict.evidence_summary}), past the step's deadline "
            f"{format_time(deadline)}; raise maxAnalysisDuration or the labelled traffic",
        )
    p.set(
        message=f"canary {version}: step {index + 1}/{len(p.spec.rollout.steps)} at weight "
        f"{p.state.canary_weight}: collecting evidence ({verdict.evidence_summary or verdict.message}); "
        f"decides by {format_time(deadline)}"
    )
    return None


def _wait_for_samples(p: PlanningPass, verdict: Verdict, previous_look: datetime | None) -> Failure | None:
    """A look that ran no test for lack of samples: it counts toward no limit and spends no alpha."""
    rollout = p.spec.rollout
    version, index = p.state.canary_version, p.state.current_step or 0
    since = p.state.waiting_for_samples_since
    if since is None:  # the wait starts: count from the step's readiness or its last look, if later
        ready_at = p.state.step_ready_at or p.now
        since = previous_look if previous_look is not None and previous_look > ready_at else ready_at
        p.set(waiting_for_samples_since=since)
        p.event(
            "Normal",
            "WaitingForSamples",
            f"analysis of {version} waits for labelled samples (looks without enough data do not count): "
            f"{verdict.message}",
        )
    deadline = since + timedelta(seconds=rollout.progress_deadline_s)
    if p.now >= deadline:
        return Failure(
            "NoAnalysisData",
            f"canary {version}: no analysis with enough samples within {rollout.progress_deadline_s:g}s "
            f"at step {index + 1}: {verdict.message}",
        )
    p.set(
        message=f"canary {version}: step {index + 1}/{len(rollout.steps)} at weight {p.state.canary_weight}: "
        f"waiting for samples ({verdict.message}); gives up at {format_time(deadline)}"
    )
    return None
