"""The rollout state machine: each transition a function of the planning pass.

- Spec version != stable, no rollout: start a canary at step 0 (``canaryRevision`` + 1).
- Each step: set the weight; wait for canary readiness (``progressDeadline`` applies to this
  wait: exceeded -> phase Failed, rolled back; with ``autoRollback: false`` -> Paused,
  ``pauseReason`` ProgressDeadlineExceeded, resuming if the canary becomes ready; a step whose
  replica split equals the previous step's is ready at once when the canary is); if the step
  requires analysis, a look every ``interval`` until a Pass (``analysis``); then wait out the
  step's ``pause`` (counted from readiness); then advance one step per plan. Passing the final
  step promotes.
- A limit reached rolls back (phase RolledBack, weight 0) or, with ``autoRollback: false``,
  pauses at the current weight (phase Paused, ``pauseReason`` the limit's reason).
- Spec changes to another version during a rollout: restart at step 0 for it; back to the
  stable version: the rollout is cancelled (history ``Superseded``).
- RolledBack/Failed persist while the spec still names ``abortedVersion``; a retry token
  restarts the rollout at step 0; a different spec version starts afresh. Spec is never edited.
- Promotion records the new stable at once (never planned twice); the canary keeps serving
  (``canaryDraining``, see ``stable``) until the stable track reports ready. A rollback from a
  weight that left the stable track no pods does the same (the idle canary Deployment carries
  the stable version, so it rolls to it). Draining needs readiness reports: with ``observed``
  unknown the canary is scaled down at once. Behind an HTTPRoute (``gatewayAPI``) the route
  keeps sending the canary its share meanwhile, since the stable Service's pods are still mostly
  the old version. A rollback behind a route needs no drain: the stable track kept full capacity.
- ``spec.rollout.experiment``: the rollout is one step at the split, run by ``experiment_step``;
  a Keep decision takes the candidate out (``keep_stable``: phase Healthy, history ``Kept``,
  ``abortedVersion`` set as after a rollback, so only a retry or a new version starts again).
- ``rollout_allowed`` False (outside a MaintenanceWindow with ``rolloutPolicy: OnlyInWindow``):
  a new version waits (``frozen``); a rollout already running goes on, and a retry waits too.
"""

from __future__ import annotations

from datetime import timedelta

from rankops.operator.api import PAUSED_ANNOTATION, USER_PAUSED_REASON

from ..routing import desired_replicas
from ..verdict import Verdict
from .analysis import current_step, next_look_at, record_verdict
from .context import PlanningPass
from .stable import await_stable, awaiting_message, drain, settle
from .state import HALTED_REASONS, ROLLOUT_RESET, UNAVAILABLE_REASONS

__all__ = [
    "end_rollout",
    "idle",
    "keep_stable",
    "progress",
    "promote",
    "restart_rollout",
    "rollback",
    "start_rollout",
    "wait_for_canary",
]


# --------------------------------------------------------------------------- no rollout running


def idle(p: PlanningPass, retry: str | None, rollout_allowed: bool) -> None:
    """No rollout running: settle the stable track, or start one for a new spec version."""
    st, m = p.state, p.spec.model
    if st.canary_draining:
        drain(p)
    if m.version == st.stable_version:
        settle(p, st)
        return
    kept = st.experiment is not None and st.experiment.action == "Kept"  # an experiment kept stable
    if (st.phase in ("RolledBack", "Failed") or kept) and st.aborted_version == m.version:
        if retry and not rollout_allowed:
            p.frozen = True
            p.set(message=f"retry of {m.version} waits for a maintenance window (rolloutPolicy OnlyInWindow)")
            p.used_tokens.add("defer-retry")  # left unconsumed: it acts once a window opens
        elif retry:
            p.used_tokens.add("retry")
            restart_rollout(p)
        return
    if not rollout_allowed:
        p.frozen = True
        p.set(
            phase="Healthy",
            message=f"{m.version} waits for a maintenance window (rolloutPolicy OnlyInWindow)",
        )
        return
    start_rollout(p)


# --------------------------------------------------------------------------- the canary's steps


def start_rollout(p: PlanningPass) -> None:
    m, rollout = p.spec.model, p.spec.rollout
    first = rollout.steps[0].weight
    p.set(
        **{
            **ROLLOUT_RESET,
            "canary_version": m.version,
            "canary_uri": m.uri,
            "current_step": 0,
            "canary_weight": first,
            "canary_revision": p.state.canary_revision + 1,
            "rollout_started_at": p.now,
            "step_started_at": p.now,
            "step_ready_at": p.now if p.observed.canary_ready is None else None,
            "phase": "Progressing",
            "aborted_version": None,
            "canary_draining": False,
            "last_analysis": None,
            "experiment": None,
            "message": f"canary {m.version}: step 1/{len(rollout.steps)} at weight {first}",
        }
    )
    if rollout.experiment is not None:
        stable = p.state.stable_version
        p.set(message=f"experiment: {m.version} against stable {stable} at {first}/{100 - first}")
    kind = "experiment" if rollout.experiment is not None else "canary"
    p.event(
        "Normal", "RolloutStarted", f"{kind} {m.version} (stable {p.state.stable_version}) at weight {first}"
    )
    _schedule_step(p)


def restart_rollout(p: PlanningPass) -> None:
    """A retry: the rollout of the spec version again, from step 0."""
    p.event("Normal", "RolloutRetried", f"retrying the rollout of {p.spec.model.version} from step 0")
    start_rollout(p)


def _enter_step(p: PlanningPass, index: int) -> None:
    rollout = p.spec.rollout
    step = rollout.steps[index]
    ready_at = p.now if p.observed.canary_ready is None else None
    if p.observed.canary_ready:
        # The same replica split as the step just passed (e.g. 25 % and 50 % of 2 replicas): no pod
        # changes, so no Deployment event would come; the canary, ready now, is ready for this step.
        before = desired_replicas(rollout.traffic_routing, p.state.canary_weight, p.spec.serving.replicas)
        after = desired_replicas(rollout.traffic_routing, step.weight, p.spec.serving.replicas)
        if before == after:
            ready_at = p.now
    p.set(
        current_step=index,
        canary_weight=step.weight,
        step_started_at=p.now,
        step_ready_at=ready_at,
        step_looks=0,
        step_failures=0,
        step_inconclusive=0,
        step_passed=False,
        waiting_for_samples_since=None,
        message=f"canary {p.state.canary_version}: step {index + 1}/{len(rollout.steps)} "
        f"at weight {step.weight}",
    )
    p.event(
        "Normal",
        "StepAdvanced",
        f"canary {p.state.canary_version} at weight {step.weight} (step {index + 1})",
    )
    _schedule_step(p)


def _schedule_step(p: PlanningPass) -> None:
    """When the step just entered needs the planner again."""
    rollout = p.spec.rollout
    index = p.state.current_step or 0
    if p.state.step_ready_at is None:
        p.wake_at(p.now + timedelta(seconds=rollout.progress_deadline_s))
    elif rollout.step_requires_analysis(index) and rollout.analysis is not None:
        p.wake_at(p.now + timedelta(seconds=rollout.analysis.interval_s))
    else:
        p.wake_at(p.now + timedelta(seconds=rollout.steps[index].pause_s or 0))


def progress(p: PlanningPass, verdict: Verdict | None) -> None:
    """A running rollout, spec unchanged: readiness, analysis, pause, then the next step."""
    rollout, now = p.spec.rollout, p.now
    index = current_step(p.spec, p.state)
    step = rollout.steps[index]
    if index != p.state.current_step or step.weight != p.state.canary_weight:  # the step list changed
        p.set(current_step=index, canary_weight=step.weight)
    if p.state.phase == "Paused" and p.state.pause_reason in HALTED_REASONS:
        return  # waits for promote, abort, retry or a spec change

    # 1. Readiness of the canary at this step; progressDeadline bounds this wait.
    if p.state.step_ready_at is None:
        if p.observed.canary_ready is False:
            wait_for_canary(p)
            return
        p.set(step_ready_at=now)
    if p.state.pause_reason == "ProgressDeadlineExceeded":  # became ready after all
        p.set(pause_reason=None, phase="Progressing")
    ready_at = p.state.step_ready_at or now

    # 2. Analysis until a Pass.
    due = next_look_at(p.spec, p.state)
    if due is not None:
        if now < due:
            p.wake_at(due)
            return
        if verdict is None:
            p.look_pending = True
            return
        failure = record_verdict(p, verdict)
        if failure is not None:
            fail_analysis(p, failure.reason, failure.message)
        if not p.state.in_rollout or (
            p.state.phase == "Paused" and p.state.pause_reason not in UNAVAILABLE_REASONS
        ):
            return
        if not p.state.step_passed:
            assert rollout.analysis is not None
            p.wake_at(now + timedelta(seconds=rollout.analysis.interval_s))
            return

    # 3. The step's pause, counted from readiness.
    if step.pause_s:
        pause_end = ready_at + timedelta(seconds=step.pause_s)
        if now < pause_end:
            p.wake_at(pause_end)
            return

    # 4. Advance (one step per plan) or promote after the last.
    if index + 1 < len(rollout.steps):
        _enter_step(p, index + 1)
    else:
        judged = any(rollout.step_requires_analysis(i) for i in range(len(rollout.steps)))
        promote(p, "AnalysisPassed" if judged else "StepsCompleted")


def wait_for_canary(p: PlanningPass) -> None:
    rollout = p.spec.rollout
    deadline = (p.state.step_started_at or p.now) + timedelta(seconds=rollout.progress_deadline_s)
    if p.now < deadline:
        p.wake_at(deadline)
        return
    if p.state.phase == "Paused":
        return  # already paused for it (autoRollback false)
    message = f"canary {p.state.canary_version} not ready within {rollout.progress_deadline_s:g}s"
    if rollout.auto_rollback:
        rollback(p, "Failed", "ProgressDeadlineExceeded", "Failed", message)
    else:
        p.set(phase="Paused", pause_reason="ProgressDeadlineExceeded", message=message)
        p.event("Warning", "ProgressDeadlineExceeded", message)


# --------------------------------------------------------------------------- ends of a rollout


def promote(p: PlanningPass, reason: str) -> None:
    st = p.state
    version, uri = st.canary_version or "", st.canary_uri or ""
    draining = p.observed.stable_ready is not None  # unknown readiness: scale down at once
    # Behind an HTTPRoute the route keeps its canary share while the stable track rolls to the
    # promoted version (it would otherwise send that share back to the old version's pods).
    weight = st.canary_weight if draining and p.gateway else 0
    p.event("Normal", "Promoted", f"{version} promoted to stable (was {st.stable_version}): {reason}")
    p.add_history(version, uri, "Promoted", reason)
    p.set(
        **{
            **ROLLOUT_RESET,
            "stable_version": version,
            "stable_uri": uri,
            "phase": "Healthy",
            "aborted_version": None,
            "canary_draining": draining,
            "canary_weight": weight,
            "message": f"serving {version}",
        }
    )
    await_stable(p)
    if draining:
        p.set(phase="Progressing", message=awaiting_message(p))


def _withdraw_canary(p: PlanningPass, outcome: str, reason: str, **state: object) -> None:
    """Take the canary out of service (rollback, abort, cancelled rollout) and record it in history.

    With no stable pod left (replica ratio at 100 %), removing the canary at once would leave
    no capacity: when readiness is reported, the idle canary Deployment (which carries the
    stable version) instead rolls to the stable version at full size (``canaryDraining``)
    until the stable track is ready again.
    """
    split = desired_replicas(p.spec.rollout.traffic_routing, p.state.canary_weight, p.spec.serving.replicas)
    draining = split.stable == 0 and p.observed.stable_ready is not None
    p.add_history(p.state.canary_version or "", p.state.canary_uri, outcome, reason)
    p.set(**ROLLOUT_RESET, canary_draining=draining, **state)
    if split.stable < p.spec.serving.replicas:  # the stable track scales back up
        await_stable(p)


def rollback(p: PlanningPass, outcome: str, reason: str, phase: str, message: str) -> None:
    version = p.state.canary_version or ""
    p.event("Warning", "RolledBack" if outcome != "Aborted" else "Aborted", message)
    _withdraw_canary(
        p,
        outcome,
        reason,
        phase=phase,
        aborted_version=version,
        message=f"{message}; serving {p.state.stable_version}",
    )


def end_rollout(p: PlanningPass, outcome: str, reason: str, message: str) -> None:
    p.event("Normal", reason, message)
    _withdraw_canary(
        p, outcome, reason, phase="Healthy", aborted_version=None, message=f"serving {p.state.stable_version}"
    )
    if p.state.awaiting_stable_since is not None:
        p.set(phase="Progressing", message=awaiting_message(p))


def keep_stable(p: PlanningPass, reason: str, message: str) -> None:
    """An experiment kept the stable version: the candidate leaves service, phase Healthy (nothing
    failed), ``abortedVersion`` names it so that it is not tried again until a retry or a new spec."""
    version = p.state.canary_version or ""
    _withdraw_canary(
        p,
        "Kept",
        reason,
        phase="Healthy",
        aborted_version=version,
        message=f"{message}; serving {p.state.stable_version}",
    )


def promote_step(p: PlanningPass) -> None:
    """A person's ``promote-step``: the next step now (its pause and analysis skipped), or promotion."""
    index = current_step(p.spec, p.state)
    if index + 1 < len(p.spec.rollout.steps):
        p.event(
            "Normal", "StepPromoted", f"step {index + 1} of {p.state.canary_version} promoted by annotation"
        )
        p.set(phase="Progressing", pause_reason=None)
        _enter_step(p, index + 1)
    else:
        promote(p, "ManualPromotion")


def hold(p: PlanningPass) -> None:
    """``rankops.dev/paused``: hold the running rollout at its step until the annotation goes."""
    if p.state.pause_reason == USER_PAUSED_REASON:
        return
    p.set(
        phase="Paused",
        pause_reason=USER_PAUSED_REASON,
        message=f"canary {p.state.canary_version} held at weight {p.state.canary_weight} "
        f"by {PAUSED_ANNOTATION}",
    )
    p.event("Normal", "RolloutPaused", f"rollout of {p.state.canary_version} paused by {PAUSED_ANNOTATION}")


def resume_from_hold(p: PlanningPass) -> None:
    """The pause annotation is gone: go on; the step's analysis deadline counts from now."""
    ready = p.state.step_ready_at is not None
    p.set(phase="Progressing", pause_reason=None, step_ready_at=p.now if ready else None)
    p.event("Normal", "Resumed", f"rollout of {p.state.canary_version} resumed ({PAUSED_ANNOTATION} removed)")


def fail_analysis(p: PlanningPass, reason: str, message: str) -> None:
    if p.spec.rollout.auto_rollback:
        rollback(p, "RolledBack", reason, "RolledBack", message)
        return
    p.set(
        phase="Paused",
        pause_reason=reason,
        message=f"{message}; paused at weight {p.state.canary_weight} (autoRollback is false)",
    )
    p.event(
        "Warning", "RolloutPaused", f"{message}; autoRollback is false: waiting for promote, abort or retry"
    )
