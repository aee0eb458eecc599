"""How the planner runs an A/B experiment (``spec.rollout.experiment``): one step at the split.

``progress_experiment(p, verdict)`` replaces ``transitions.progress`` for a running experiment:

1. the candidate's readiness at the split (``progressDeadline`` bounds it, as for a canary step);
2. once ready, ``status.experiment`` opens (``startedAt``, ``endsAt`` = start + ``duration``;
   Event ``ExperimentStarted``) and samples count from then;
3. a look every ``analysis.interval`` (metrics unavailable: paused, as a canary's analysis):
   ``core.experiment.assess`` folds the judge's verdict into the experiment; looks never end the
   experiment except by a decision, and none is needed before ``endsAt`` without early stopping;
4. a decision acts at once (Event ``ExperimentDecided``; the figures go to ``status.experiment``
   and to the history entry): Promote, or Inconclusive with ``onInconclusive: Promote`` and every
   objective passed, promotes the candidate (history ``Promoted``); Keep and Inconclusive otherwise
   take it out of service (``transitions.keep_stable``: phase Healthy, history ``Kept``).

``autoRollback`` does not apply: every decision acts. Manual promote, abort, pause and a spec
change work as during a canary (the planner handles them before this step).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from ..events import EventType
from ..experiment import ExperimentStatus, assess, start_experiment
from ..verdict import Verdict
from .analysis import next_look_at, take_verdict
from .context import PlanningPass
from .state import HALTED_REASONS
from .transitions import keep_stable, promote, wait_for_canary

__all__ = ["close_undecided", "progress_experiment"]


def progress_experiment(p: PlanningPass, verdict: Verdict | None) -> None:
    """A running experiment, spec unchanged: readiness, then a look per interval until a decision."""
    spec = p.spec.rollout.experiment
    assert spec is not None and p.spec.rollout.analysis is not None
    if p.state.canary_weight != spec.weight:  # the split was edited during the experiment
        p.set(canary_weight=spec.weight, current_step=0)
    if p.state.phase == "Paused" and p.state.pause_reason in HALTED_REASONS:
        return
    if p.state.step_ready_at is None:
        if p.observed.canary_ready is False:
            wait_for_canary(p)
            return
        p.set(step_ready_at=p.now)
    if p.state.pause_reason == "ProgressDeadlineExceeded":  # became ready after all
        p.set(pause_reason=None, phase="Progressing")
    experiment = p.state.experiment
    if experiment is None or experiment.revision != p.state.canary_revision:
        experiment = start_experiment(
            spec, p.state.canary_revision, p.state.canary_version or "", p.state.stable_version or "", p.now
        )
        # Samples, evidence and looks count from here: a verdict planned before the start (its window
        # began with the rollout) is not used, and the first look is one interval away.
        p.set(experiment=experiment, message=experiment.message, step_ready_at=p.now, evidence=None)
        p.event("Normal", "ExperimentStarted", experiment.message)
        p.wake_at(p.now + _interval(p))
        return

    due = next_look_at(p.spec, p.state)
    assert due is not None  # an experiment's step always requires analysis
    if p.now < due:
        p.wake_at(due)
        return
    if verdict is None:
        p.look_pending = True
        return
    if not take_verdict(p, verdict):
        return  # paused: metrics unavailable
    failure_limit = p.spec.rollout.analysis.failure_limit
    after = assess(spec, experiment, verdict, p.state.evidence, p.now, failure_limit)
    p.set(experiment=after, message=after.message)
    if not after.decided:
        p.wake_at(p.now + _interval(p))
        return
    _act(p, after)


def _act(p: PlanningPass, decided: ExperimentStatus) -> None:
    kind: EventType = "Normal" if decided.reason != "GuardrailFailed" else "Warning"
    p.event(kind, "ExperimentDecided", decided.message)
    reason = decided.reason or "ExperimentDecided"
    if decided.action == "Promoted":
        promote(p, reason)
    else:
        keep_stable(p, reason, f"experiment kept stable {p.state.stable_version}: {decided.message}")
    last = p.state.history[-1]
    p.set(history=(*p.state.history[:-1], replace(last, experiment=decided.history_summary())))


def _interval(p: PlanningPass) -> timedelta:
    assert p.spec.rollout.analysis is not None
    return timedelta(seconds=p.spec.rollout.analysis.interval_s)


def close_undecided(p: PlanningPass) -> None:
    """The rollout of an undecided experiment ended otherwise (manual promote, abort, spec change):
    ``status.experiment`` says so, with the history's reason."""
    experiment = p.state.experiment
    if experiment is None or experiment.decided or experiment.ended_reason or p.state.in_rollout:
        return
    reason = p.state.history[-1].reason if p.state.history else "RolloutEnded"
    p.set(
        experiment=replace(
            experiment,
            ended_reason=reason,
            message=f"ended without a decision ({reason}): {experiment.effect_text}",
        )
    )
