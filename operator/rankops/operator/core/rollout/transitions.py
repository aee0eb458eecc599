"""The rollout state machine: each transition a function of the planning pass.

- No ``stableVersion`` yet: the spec version becomes stable directly (phase Healthy, or
  Pending while ``observed.stable_ready`` is False).
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
  (``canaryDraining``) until the stable track reports ready. A rollback from a weight that left
  the stable track no pods does the same (the idle canary Deployment carries the stable version,
  so it rolls to it). Draining needs readiness reports: with ``observed`` unknown the canary is
  scaled down at once. Behind an HTTPRoute (``gatewayAPI``) the route keeps sending the canary
  its share meanwhile (``canaryWeight`` stays set outside the rollout; raised to 100 once the
  canary runs at full size), since the stable Service's pods are still mostly the old version;
  when the stable track reports ready the route switches to it (Event ``TrafficSwitched``) and a
  later plan (requeued at once) scales the canary down, so the route never points at a canary
  being removed. A rollback behind a route needs no drain: the stable track kept full capacity.
- After a change to the stable track's pods (first deploy, promotion, in-place URI update, a
  rollout ended with the stable track scaled back up) ``awaitingStableSince`` is set until a
  plan sees the stable track ready. Meanwhile a not-ready stable is expected: phase Progressing
  (Pending on the first deploy), Degraded only once ``progressDeadline`` has passed. Otherwise
  Degraded is a stable track that was ready and stopped being so.
- ``rollout_allowed`` False (outside a MaintenanceWindow with ``rolloutPolicy: OnlyInWindow``):
  a new version waits (``frozen``); a rollout already running goes on, and a retry waits too.
"""

from __future__ import annotations

from datetime import timedelta

from ..judge import Verdict
from ..routing import desired_replicas
from .analysis import current_step, next_look_at, record_verdict
from .context import PlanningPass
from .state import HALTED_REASONS, ROLLOUT_RESET, UNAVAILABLE_REASONS

__all__ = [
    "deploy_first",
    "end_rollout",
    "idle",
    "progress",
    "promote",
    "restart_rollout",
    "rollback",
    "start_rollout",
]


# --------------------------------------------------------------------------- the stable track


def deploy_first(p: PlanningPass) -> None:
    m = p.spec.model
    phase = "Pending" if p.observed.stable_ready is False else "Healthy"
    p.set(
        stable_version=m.version,
        stable_uri=m.uri,
        phase=phase,
        message=f"serving {m.version}",
        **ROLLOUT_RESET,
    )
    _await_stable(p)
    p.event("Normal", "Deployed", f"deploying {m.version} as stable")
    p.add_history(m.version, "Deployed", "Created")


def idle(p: PlanningPass, retry: str | None, rollout_allowed: bool) -> None:
    """No rollout running: settle the stable track, or start one for a new spec version."""
    st, m = p.state, p.spec.model
    if st.canary_draining:
        _drain(p)
    if m.version == st.stable_version:
        if m.uri != st.stable_uri:
            p.event(
                "Warning",
                "UriChangedWithoutVersion",
                f"model uri changed for the same version {m.version}: updating stable in place",
            )
            p.set(stable_uri=m.uri)
            p.add_history(m.version, "Deployed", "UriChanged")
            _await_stable(p)
            if p.state.awaiting_stable_since is not None:
                p.set(phase="Progressing", message=_awaiting_message(p), aborted_version=None)
                return
        phase, message = _settled_phase(p)
        if phase == "Degraded" and st.phase != "Degraded":
            p.event("Warning", "StableNotReady", message)
        p.set(phase=phase, message=message, aborted_version=None)
        return
    if st.phase in ("RolledBack", "Failed") and st.aborted_version == m.version:
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


def _drain(p: PlanningPass) -> None:
    """The canary track serves the stable version while the stable track rolls to it.

    Replica ratio: both tracks sit behind the Service ``<m>``; once the stable track is ready the
    canary is scaled down. Gateway API: ``canaryWeight`` is the route's share for the canary
    track meanwhile (all of it once the canary runs at full size); once the stable track is ready
    with the new version the route switches to it (weight 0), and the canary is scaled down only
    by a later plan, after the shell has applied the switched route.
    """
    st = p.state
    if p.observed.stable_ready is not False:
        if st.canary_weight > 0:
            p.set(canary_weight=0)
            p.event(
                "Normal",
                "TrafficSwitched",
                f"stable {st.stable_version} is ready; route switched to the stable track "
                "(the canary track is scaled down next)",
            )
            p.wake_at(p.now)
            return
        p.set(canary_draining=False)
        p.event("Normal", "StableReady", f"stable {st.stable_version} is ready; canary track scaled down")
        return
    if p.gateway and st.canary_weight < 100 and p.observed.canary_ready:
        # Promoted from a lower weight: the canary now runs at full size, so it takes all traffic.
        p.set(canary_weight=100)
        p.event(
            "Normal",
            "TrafficShifted",
            f"stable {st.stable_version} still rolling out; the canary track (ready at full size) "
            "takes all traffic meanwhile",
        )


def _await_stable(p: PlanningPass) -> None:
    """The stable track's pods are about to change: a "not ready" that follows is expected, not Degraded.

    Only with readiness reports (``observed.stable_ready`` known); cleared by the first plan that
    sees the stable track ready.
    """
    if p.observed.stable_ready is not None:
        p.set(awaiting_stable_since=p.now)


def _awaiting_message(p: PlanningPass) -> str:
    last = p.state.history[-1] if p.state.history else None
    if last is not None and last.outcome == "Promoted":
        doing = "promoting"
    elif last is not None and last.outcome == "Deployed":
        doing = "updating" if last.reason == "UriChanged" else "deploying"
    else:
        doing = "restoring stable"
    return f"{doing}: waiting for stable {p.state.stable_version} to be ready"


def _settled_phase(p: PlanningPass) -> tuple[str, str]:
    """Phase and message outside a rollout with the spec at the stable version."""
    st, version = p.state, p.state.stable_version
    if p.observed.stable_ready is not False:
        return "Healthy", f"serving {version}"
    # The first deploy, not ready yet.
    created = bool(st.history) and st.history[-1].reason == "Created"
    if st.phase == "Pending" or (created and st.awaiting_stable_since is not None):
        return "Pending", f"stable {version} is not ready"
    since = st.awaiting_stable_since
    deadline_s = p.spec.rollout.progress_deadline_s
    if since is not None:  # after a promotion/rollback/update: expected until its deadline
        deadline = since + timedelta(seconds=deadline_s)
        if p.now < deadline:
            p.wake_at(deadline)
            return "Progressing", _awaiting_message(p)
        serving = "; the canary track serves it meanwhile" if st.canary_draining else ""
        return "Degraded", f"stable {version} not ready within {deadline_s:g}s{serving}"
    if st.canary_draining:
        return "Progressing", _awaiting_message(p)
    return "Degraded", f"stable {version} is not ready"


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
            "message": f"canary {m.version}: step 1/{len(rollout.steps)} at weight {first}",
        }
    )
    p.event(
        "Normal", "RolloutStarted", f"canary {m.version} (stable {p.state.stable_version}) at weight {first}"
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
            _wait_for_canary(p)
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


def _wait_for_canary(p: PlanningPass) -> None:
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
    p.add_history(version, "Promoted", reason)
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
    _await_stable(p)
    if draining:
        p.set(phase="Progressing", message=_awaiting_message(p))


def _withdraw_canary(p: PlanningPass, outcome: str, reason: str, **state: object) -> None:
    """Take the canary out of service (rollback, abort, cancelled rollout) and record it in history.

    With no stable pod left (replica ratio at 100 %), removing the canary at once would leave
    no capacity: when readiness is reported, the idle canary Deployment (which carries the
    stable version) instead rolls to the stable version at full size (``canaryDraining``)
    until the stable track is ready again.
    """
    split = desired_replicas(p.spec.rollout.traffic_routing, p.state.canary_weight, p.spec.serving.replicas)
    draining = split.stable == 0 and p.observed.stable_ready is not None
    p.add_history(p.state.canary_version or "", outcome, reason)
    p.set(**ROLLOUT_RESET, canary_draining=draining, **state)
    if split.stable < p.spec.serving.replicas:  # the stable track scales back up
        _await_stable(p)


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
        p.set(phase="Progressing", message=_awaiting_message(p))


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
