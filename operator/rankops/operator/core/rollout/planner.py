"""The rollout planner: spec + state + verdict + now -> the next state, its Events and when to look again.

``plan_rollout(spec, state, verdict, now, *, annotations=None, generation=None, observed=None,
rollout_allowed=True) -> Plan``. Pure and deterministic: the same inputs always give the same
``Plan``.

- ``verdict``: the judge's ``Verdict`` for the look ``analysis_due`` asked for (called with the
  same ``annotations``), else ``None``
  (a look due without one leaves the plan waiting for it: ``requeue_after`` 0). A verdict for a
  look that is not due is not used.
- ``annotations``: ``rankops.dev/promote``, ``rankops.dev/abort``, ``rankops.dev/retry`` and
  ``rankops.dev/promote-step`` are tokens (``tokens``); a new token that does not apply is
  consumed and ignored (Event ``AnnotationIgnored``). ``rankops.dev/paused: "true"`` holds a
  running rollout at its step (phase Paused, ``pauseReason`` UserPaused: no looks, no advance;
  abort, promote and promote-step still act); removing it resumes, and the step's analysis
  deadline counts again from the resume.
- ``generation``: ``metadata.generation`` (recorded as ``observedGeneration``).
- ``observed``: the Deployments' readiness (``None``: unknown, treated as ready).
- ``rollout_allowed``: False outside a MaintenanceWindow with ``rolloutPolicy: OnlyInWindow``.

``Plan.state`` is the new ``RolloutState`` (what children are built from), ``Plan.status`` its
dict form (the shell writes ``state.merge_patch(stored_status, plan.status)``, nothing when empty),
``Plan.requeue_after`` the seconds until the next timed decision (analysis due, pause end,
progress deadline; ``None`` when nothing is timed: the shell's watch and resync cover the rest).
``plan_invalid_spec(state, error, now, *, generation=None)`` records a spec the core rejected
(condition ``Degraded``, reason ``InvalidSpec``), changing nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from rankops.operator.api import ROLLOUT_ANNOTATIONS, USER_PAUSED_REASON

from ..conditions import set_condition
from ..events import Event
from ..spec import RankingModelSpec, SpecError
from ..verdict import Verdict
from .conditions import rollout_conditions
from .context import PlanningPass
from .experiment_step import close_undecided, progress_experiment
from .stable import deploy_first
from .state import Observed, RolloutState
from .tokens import Tokens
from .transitions import (
    end_rollout,
    hold,
    idle,
    progress,
    promote,
    promote_step,
    restart_rollout,
    resume_from_hold,
    rollback,
    start_rollout,
)

__all__ = ["Plan", "plan_invalid_spec", "plan_rollout"]


@dataclass(frozen=True)
class Plan:
    state: RolloutState
    status: dict[str, Any]  # state.to_status(): the status to write (``merge_patch`` against the stored one)
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None


def plan_rollout(
    spec: RankingModelSpec,
    state: RolloutState,
    verdict: Verdict | None,
    now: datetime,
    *,
    annotations: Mapping[str, str] | None = None,
    generation: int | None = None,
    observed: Observed | None = None,
    rollout_allowed: bool = True,
) -> Plan:
    """Plan the next state of a RankingModel (see the module docstring)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    p = PlanningPass(spec=spec, state=state, now=now, observed=observed or Observed())
    tokens = Tokens.new(annotations, state)
    target = spec.model
    if state.awaiting_stable_since is not None and p.observed.stable_ready is not False:
        p.set(awaiting_stable_since=None)  # the stable track became ready (or readiness is unknown)

    if state.stable_version is None:
        deploy_first(p)
    elif state.in_rollout:
        if target.version == state.stable_version:
            end_rollout(
                p,
                "Superseded",
                "RolloutCancelled",
                f"spec is back at stable version {state.stable_version}; "
                f"canary {state.canary_version} removed",
            )
        elif target.version != state.canary_version or target.uri != state.canary_uri:
            p.event(
                "Normal",
                "RolloutRestarted",
                f"spec changed to {target.version} during the rollout of {state.canary_version}",
            )
            p.add_history(state.canary_version or "", state.canary_uri, "Superseded", "SpecChanged")
            start_rollout(p)
        elif tokens.abort:
            p.used_tokens.add("abort")
            rollback(
                p,
                "Aborted",
                "Aborted",
                "RolledBack",
                f"rollout of {state.canary_version} aborted by annotation",
            )
        elif tokens.promote:
            p.used_tokens.add("promote")
            promote(p, "ManualPromotion")
        elif tokens.retries(state):
            p.used_tokens.add("retry")
            restart_rollout(p)
        elif tokens.promote_step:
            p.used_tokens.add("promote-step")
            promote_step(p)
            if tokens.paused and p.state.in_rollout:
                hold(p)
        elif tokens.paused:
            hold(p)
        else:
            if state.pause_reason == USER_PAUSED_REASON:
                resume_from_hold(p)
            (progress_experiment if spec.rollout.experiment is not None else progress)(p, verdict)
    else:
        idle(p, tokens.retry, rollout_allowed)

    close_undecided(p)
    # Tokens seen are consumed whether or not they applied.
    updates: dict[str, Any] = {}
    for name, token, attr in (
        ("promote", tokens.promote, "last_promote_token"),
        ("abort", tokens.abort, "last_abort_token"),
        ("retry", tokens.retry, "last_retry_token"),
        ("promote-step", tokens.promote_step, "last_promote_step_token"),
    ):
        if token is not None and f"defer-{name}" not in p.used_tokens:
            updates[attr] = token
            if name not in p.used_tokens:
                p.event(
                    "Normal",
                    "AnnotationIgnored",
                    f"{ROLLOUT_ANNOTATIONS[name]}={token} does not apply in phase {p.state.phase}",
                )
    if generation is not None:
        updates["observed_generation"] = generation
    p.set(**updates)
    # canaryWeight is 0 outside a rollout, except the route's share while a promoted canary drains
    # behind an HTTPRoute.
    if not p.state.in_rollout and p.state.canary_weight != 0 and not (p.state.canary_draining and p.gateway):
        p.set(canary_weight=0)
    p.set(conditions=rollout_conditions(p.state, p.observed, now, generation, frozen=p.frozen))

    requeue: float | None = None
    if p.look_pending:
        requeue = 0.0
    elif p.wakeups:
        requeue = max(0.0, min((t - now).total_seconds() for t in p.wakeups))
    return Plan(state=p.state, status=p.state.to_status(), events=tuple(p.events), requeue_after=requeue)


def plan_invalid_spec(
    state: RolloutState, error: SpecError, now: datetime, *, generation: int | None = None
) -> Plan:
    """Record a spec the core cannot use: condition Degraded=True (InvalidSpec), nothing else."""
    conditions = set_condition(
        state.conditions, "Degraded", "True", "InvalidSpec", str(error), now, generation
    )
    new = replace(
        state,
        conditions=tuple(conditions),
        message=f"invalid spec: {error}",
        observed_generation=generation if generation is not None else state.observed_generation,
    )
    events = (Event("Warning", "InvalidSpec", str(error)),) if new != state else ()
    return Plan(state=new, status=new.to_status(), events=events)
