"""The rollout planner: spec + status + verdict + now -> the next status, actions and Events.

Pure and deterministic: the same inputs always give the same ``Plan``; everything needed to
resume after an operator restart lives in ``status``.

Public API (used by the kopf shell)
-----------------------------------
``plan_rollout(spec, status, verdict, now, *, annotations=None, generation=None,
observed=None, rollout_allowed=True) -> Plan``

- ``spec``: ``RankingModelSpec`` or the raw ``.spec`` dict (parsed; raises ``SpecError``).
- ``status``: the raw ``.status`` dict (``{}``/``None`` for a new object); keys the core
  does not own (kopf's) are ignored.
- ``verdict``: ``judge.Verdict`` for the analysis the previous plan asked for, else ``None``.
  A verdict passed when no analysis is due is ignored (``plan.verdict_consumed`` False).
- ``now``: timezone-aware ``datetime``.
- ``annotations``: the object's annotations; ``rankops.dev/promote``, ``rankops.dev/abort``
  and ``rankops.dev/retry`` are *tokens*: each distinct value acts once (the last consumed
  value of each is kept in status), so ``kubectl annotate --overwrite rm/x
  rankops.dev/retry=$(date +%s)`` retries once and a GitOps-committed annotation does not
  act again on the next rollout. A new token that does not apply is consumed and ignored.
- ``generation``: ``metadata.generation`` (recorded as ``observedGeneration``).
- ``observed``: ``Observed(canary_ready=, stable_ready=)`` from the Deployments (``None`` =
  unknown, treated as ready). Report a track ready only when its Deployment runs its current
  template (``status.observedGeneration >= metadata.generation``) with all desired replicas
  updated and ready: a stale "ready" would end a step's wait or a drain too early.
- ``rollout_allowed``: False outside a MaintenanceWindow with ``rolloutPolicy:
  OnlyInWindow``: a new version waits (Progressing=False, reason ``RolloutFrozen``); a
  rollout already running goes on, and a retry waits too.

The shell's reconcile, in full::

    plan = plan_rollout(spec, status, None, now, annotations=a, generation=g, observed=o)
    if plan.analysis is not None:                      # an analysis look is due
        verdict = judge(objectives, data_gathered_for(plan.analysis), look=plan.analysis.look,
                        planned_looks=plan.analysis.planned_looks, now=now, min_samples=...)
        plan = plan_rollout(spec, status, verdict, now, annotations=a, generation=g, observed=o)
    apply builders.build_children(..., status=plan.status) where needs_update(...)
    if plan.status_patch: patch .status with it (a JSON merge patch; None deletes a key)
    emit plan.events; requeue after plan.requeue_after seconds (None: nothing timed pending)

``Plan.actions`` describe the same change as the children built from ``plan.status``
(``DeployStable``, ``ScaleCanary``, ``SetWeights``, ``PromoteCanaryToStable``,
``ScaleDownCanary``); use them for logs or to drive routers that are not children.
``plan_invalid_spec(status, error, now, *, generation=None) -> Plan`` records a spec the
core rejected (condition ``Degraded``, reason ``InvalidSpec``), changing nothing else.

State machine
-------------
- No ``stableVersion`` yet: the spec version becomes stable directly (phase Healthy, or
  Pending while ``observed.stable_ready`` is False).
- Spec version != stable, no rollout: start a canary at step 0 (``canaryRevision`` + 1).
- Each step: set the weight; wait for canary readiness (``progressDeadline`` applies to
  this wait: exceeded -> phase Failed, rolled back; with ``autoRollback: false`` -> Paused,
  ``pauseReason`` ProgressDeadlineExceeded, resuming if the canary becomes ready; a step whose
  replica split equals the previous step's is ready at once when the canary is); if the
  step requires analysis, ask for
  a look every ``interval`` until a Pass; then wait out the step's ``pause`` (counted from
  readiness); then advance one step per plan. Passing the final step promotes.
- Per step, *tested* looks count: Fail verdicts toward ``failureLimit`` and Inconclusive
  toward ``inconclusiveLimit`` (``stepLooks``, counters reset on advancing, not by each
  other). Reaching a limit rolls back (phase RolledBack, weight 0) or, with
  ``autoRollback: false``, pauses at the current weight (phase Paused, ``pauseReason``
  AnalysisFailed/AnalysisInconclusive).
- A verdict with ``insufficient_data`` (no objective tested: no data or ``n < minSamples``)
  counts toward no limit and spends no alpha (the judge's repeated-looks argument needs at
  most ``failureLimit + inconclusiveLimit - 1`` tested looks per step). The status records it
  (``lastAnalysis``, ``waitingForSamplesSince``, condition AnalysisSucceeded Unknown with reason
  WaitingForSamples, the message with n and minSamples); an Event ``WaitingForSamples`` only
  when a wait starts. The wait is bounded: no tested look within ``progressDeadline`` of the
  step's readiness (or of its last look before the wait) is treated as the inconclusive limit
  reached with reason ``NoAnalysisData`` (rollback, or Paused with ``autoRollback: false``).
- A verdict with ``metrics_unavailable`` pauses and counts nothing; the next available verdict
  resumes (Event ``Resumed``). Its reason is the Warning Event's reason, the ``pauseReason`` and
  the Progressing condition's reason: ``SLONotFound`` (the ``analysis.sloRef`` QualitySLO does
  not exist), ``InvalidSLO`` (it exists but its spec is unusable), else ``MetricsUnavailable``
  (the metrics source failed). The Event is posted when the pause starts or its reason changes.
- Spec changes to another version during a rollout: restart at step 0 for it; back to the
  stable version: the rollout is cancelled (history ``Superseded``).
- RolledBack/Failed persist while the spec still names ``abortedVersion``; a new retry token
  restarts the rollout at step 0; a different spec version starts afresh. Spec is never
  edited.
- Promotion records the new stable in status at once (never planned twice); the canary
  keeps serving (``canaryDraining``) until the stable track reports ready. A rollback from a
  weight that left the stable track no pods does the same (the idle canary Deployment carries
  the stable version, so it rolls to it). Draining needs readiness reports: with
  ``observed`` unknown the canary is scaled down at once. Behind an HTTPRoute (``gatewayAPI``)
  the route keeps sending the canary its share meanwhile (``canaryWeight`` stays set outside
  the rollout; raised to 100 once the canary runs at full size), since the stable Service's
  pods are still mostly the old version; when the stable track reports ready the route
  switches to it (``SetWeights(100, 0)``, Event ``TrafficSwitched``) and a later plan
  (requeued at once) scales the canary down, so the route never points at a canary being
  removed. A rollback behind a route needs no drain: the stable track kept full capacity.
- After a change to the stable track's pods (first deploy, promotion, in-place URI update,
  a rollout ended with the stable track scaled back up) ``awaitingStableSince`` is set until
  a plan sees the stable track ready. Meanwhile a not-ready stable is expected: phase
  Progressing (message "promoting: waiting for stable X to be ready"; Pending on the first
  deploy), Degraded only once ``progressDeadline`` has passed. Otherwise Degraded is a stable
  track that was ready and stopped being so.
- Phases: Pending (first deploy, stable not ready yet), Healthy, Degraded (stable not ready
  later), Progressing (a rollout, or waiting for the stable track after one), Paused,
  RolledBack, Failed. Conditions: Available, Progressing, Degraded, AnalysisSucceeded
  (``lastTransitionTime`` moves only when a status flips).
- ``requeue_after``: seconds until the next timed decision (analysis due, pause end,
  progress deadline); 0 when a look is due; ``None`` when nothing is timed (the shell's
  watch and periodic resync cover the rest).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from rankops.operator.api import ABORT_ANNOTATION, PROMOTE_ANNOTATION, RETRY_ANNOTATION, ROLLOUT_ANNOTATIONS

from .conditions import ConditionStatus, set_condition
from .judge import Outcome, Verdict
from .routing import desired_replicas
from .spec import RankingModelSpec, SpecError, parse_ranking_model_spec
from .timeutil import format_time, parse_time

__all__ = [
    "ABORT_ANNOTATION",
    "HISTORY_LIMIT",
    "PROMOTE_ANNOTATION",
    "RETRY_ANNOTATION",
    "STATUS_KEYS",
    "UNAVAILABLE_REASONS",
    "Action",
    "AnalysisRequest",
    "DeployStable",
    "Event",
    "Observed",
    "Plan",
    "PromoteCanaryToStable",
    "RolloutState",
    "ScaleCanary",
    "ScaleDownCanary",
    "SetWeights",
    "plan_invalid_spec",
    "plan_rollout",
]

HISTORY_LIMIT = 10

Phase = Literal["Pending", "Progressing", "Paused", "Healthy", "Degraded", "RolledBack", "Failed"]


# --------------------------------------------------------------------------- inputs and outputs


@dataclass(frozen=True)
class Observed:
    """What the shell saw of the child Deployments; ``None`` = unknown (treated as ready)."""

    canary_ready: bool | None = None
    stable_ready: bool | None = None


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


Action = DeployStable | ScaleCanary | SetWeights | PromoteCanaryToStable | ScaleDownCanary


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class AnalysisRequest:
    """An analysis look the shell should run now, then pass the verdict back to the planner."""

    canary_version: str
    stable_version: str
    step: int
    look: int
    planned_looks: int
    window_s: float
    slo_ref: str
    min_samples: int | None = None

    def window_for(self, objective_window_s: float | None) -> float:
        """The query window: since the rollout started, capped by the objective's ``window``."""
        if objective_window_s is None:
            return self.window_s
        return min(self.window_s, objective_window_s)


@dataclass(frozen=True)
class Plan:
    status: dict[str, Any]
    status_patch: dict[str, Any]
    actions: tuple[Action, ...] = ()
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None
    analysis: AnalysisRequest | None = None
    verdict_consumed: bool = False

    @property
    def analysis_due(self) -> bool:
        return self.analysis is not None


# --------------------------------------------------------------------------- status model

# status key -> RolloutState attribute
_KEYS: dict[str, str] = {
    "phase": "phase",
    "message": "message",
    "stableVersion": "stable_version",
    "stableUri": "stable_uri",
    "canaryVersion": "canary_version",
    "canaryUri": "canary_uri",
    "canaryWeight": "canary_weight",
    "currentStep": "current_step",
    "canaryRevision": "canary_revision",
    "observedGeneration": "observed_generation",
    "rolloutStartedAt": "rollout_started_at",
    "stepStartedAt": "step_started_at",
    "stepReadyAt": "step_ready_at",
    "lastAnalysisAt": "last_analysis_at",
    "stepLooks": "step_looks",
    "stepFailures": "step_failures",
    "stepInconclusive": "step_inconclusive",
    "stepPassed": "step_passed",
    "totalLooks": "total_looks",
    "pauseReason": "pause_reason",
    "abortedVersion": "aborted_version",
    "canaryDraining": "canary_draining",
    "awaitingStableSince": "awaiting_stable_since",
    "waitingForSamplesSince": "waiting_for_samples_since",
    "lastPromoteToken": "last_promote_token",
    "lastAbortToken": "last_abort_token",
    "lastRetryToken": "last_retry_token",
    "conditions": "conditions",
    "lastAnalysis": "last_analysis",
    "history": "history",
}
STATUS_KEYS = frozenset(_KEYS)
_TIME_FIELDS = frozenset(
    {
        "rollout_started_at",
        "step_started_at",
        "step_ready_at",
        "last_analysis_at",
        "awaiting_stable_since",
        "waiting_for_samples_since",
    }
)


@dataclass(frozen=True)
class RolloutState:
    """The status the planner owns, typed. ``from_status``/``to_status`` convert camelCase dicts."""

    phase: str = "Pending"
    message: str = ""
    stable_version: str | None = None
    stable_uri: str | None = None
    canary_version: str | None = None
    canary_uri: str | None = None
    canary_weight: int = 0
    current_step: int | None = None
    canary_revision: int = 0
    observed_generation: int | None = None
    rollout_started_at: datetime | None = None
    step_started_at: datetime | None = None
    step_ready_at: datetime | None = None
    last_analysis_at: datetime | None = None
    step_looks: int = 0
    step_failures: int = 0
    step_inconclusive: int = 0
    step_passed: bool = False
    total_looks: int = 0
    pause_reason: str | None = None
    aborted_version: str | None = None
    canary_draining: bool = False
    awaiting_stable_since: datetime | None = None
    waiting_for_samples_since: datetime | None = None
    last_promote_token: str | None = None
    last_abort_token: str | None = None
    last_retry_token: str | None = None
    conditions: tuple[Mapping[str, Any], ...] = ()
    last_analysis: Mapping[str, Any] | None = None
    history: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def from_status(cls, status: Mapping[str, Any] | None) -> RolloutState:
        status = status or {}
        values: dict[str, Any] = {}
        defaults = _STATE_DEFAULTS
        for key, attr in _KEYS.items():
            raw = status.get(key)
            if raw is None:
                continue
            if attr in _TIME_FIELDS:
                values[attr] = parse_time(raw)
            elif attr in ("conditions", "history"):
                values[attr] = tuple(dict(c) for c in raw if isinstance(c, Mapping))
            elif attr == "last_analysis":
                values[attr] = dict(raw) if isinstance(raw, Mapping) else None
            elif isinstance(defaults[attr], bool):
                values[attr] = bool(raw)
            elif isinstance(defaults[attr], int) or attr in ("current_step", "observed_generation"):
                values[attr] = int(raw)
            else:
                values[attr] = str(raw)
        return cls(**values)

    def to_status(self) -> dict[str, Any]:
        """camelCase dict; unset optional fields are left out (so a merge patch deletes them)."""
        out: dict[str, Any] = {}
        for key, attr in _KEYS.items():
            value = getattr(self, attr)
            if value is None:
                continue
            if attr in _TIME_FIELDS:
                value = format_time(value)
            elif attr in ("conditions", "history"):
                value = [dict(v) for v in value]
            elif attr == "last_analysis":
                value = dict(value)
            out[key] = value
        return out

    @property
    def in_rollout(self) -> bool:
        return self.canary_version is not None


_STATE_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(RolloutState)}


def _merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    for key in STATUS_KEYS:
        if key in new:
            if old.get(key) != new[key]:
                patch[key] = new[key]
        elif old.get(key) is not None:
            patch[key] = None
    return patch


# --------------------------------------------------------------------------- the planner


@dataclass
class _Work:
    """Mutable scratch for one planning pass."""

    spec: RankingModelSpec
    st: RolloutState
    now: datetime
    observed: Observed
    actions: list[Action] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    wakeups: list[datetime] = field(default_factory=list)
    analysis: AnalysisRequest | None = None
    verdict_consumed: bool = False
    frozen: bool = False

    def set(self, **changes: Any) -> None:
        # A changed copy, as dataclasses.replace gives, without re-running __init__ (hot in simulations).
        new = copy.copy(self.st)
        for key, value in changes.items():
            if not hasattr(new, key):
                raise AttributeError(key)
            object.__setattr__(new, key, value)
        self.st = new

    def event(self, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self.events.append(Event(type_, reason, message))

    def wake_at(self, when: datetime) -> None:
        self.wakeups.append(when)


_ROLLOUT_RESET: dict[str, Any] = {
    "canary_version": None,
    "canary_uri": None,
    "canary_weight": 0,
    "current_step": None,
    "rollout_started_at": None,
    "step_started_at": None,
    "step_ready_at": None,
    "last_analysis_at": None,
    "step_looks": 0,
    "step_failures": 0,
    "step_inconclusive": 0,
    "step_passed": False,
    "total_looks": 0,
    "pause_reason": None,
    "waiting_for_samples_since": None,
}


# Pauses that wait for a person (promote, abort, retry or a spec change). MetricsUnavailable resumes by
# itself, ProgressDeadlineExceeded when the canary becomes ready after all; a retry restarts either.
_HALTED = frozenset({"AnalysisFailed", "AnalysisInconclusive", "NoAnalysisData"})
# Pauses for lack of an analysis to run (a verdict with ``metrics_unavailable``): they resume by themselves.
UNAVAILABLE_REASONS = frozenset({"MetricsUnavailable", "SLONotFound", "InvalidSLO"})
_RETRYABLE = _HALTED | {"ProgressDeadlineExceeded"}


def _token(annotations: Mapping[str, str] | None, key: str, last: str | None) -> str | None:
    """The annotation's value when it is a token not consumed yet."""
    value = (annotations or {}).get(key)
    if value is None or value == "" or value == last:
        return None
    return str(value)


def plan_rollout(
    spec: RankingModelSpec | Mapping[str, Any],
    status: Mapping[str, Any] | None,
    verdict: Verdict | None,
    now: datetime,
    *,
    annotations: Mapping[str, str] | None = None,
    generation: int | None = None,
    observed: Observed | None = None,
    rollout_allowed: bool = True,
) -> Plan:
    """Plan the next state of a RankingModel (see the module docstring)."""
    if not isinstance(spec, RankingModelSpec):
        spec = parse_ranking_model_spec(spec)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    old_status = dict(status or {})
    w = _Work(spec=spec, st=RolloutState.from_status(old_status), now=now, observed=observed or Observed())
    st = w.st
    promote = _token(annotations, PROMOTE_ANNOTATION, st.last_promote_token)
    abort = _token(annotations, ABORT_ANNOTATION, st.last_abort_token)
    retry = _token(annotations, RETRY_ANNOTATION, st.last_retry_token)
    used: set[str] = set()
    target = spec.model
    if st.awaiting_stable_since is not None and w.observed.stable_ready is not False:
        w.set(awaiting_stable_since=None)  # the stable track became ready (or readiness is unknown)

    if st.stable_version is None:
        _deploy_first(w)
    elif st.in_rollout:
        if target.version == st.stable_version:
            _end_rollout(
                w,
                "Superseded",
                "RolloutCancelled",
                f"spec is back at stable version {st.stable_version}; canary {st.canary_version} removed",
            )
        elif target.version != st.canary_version or target.uri != st.canary_uri:
            w.event(
                "Normal",
                "RolloutRestarted",
                f"spec changed to {target.version} during the rollout of {st.canary_version}",
            )
            _add_history(w, st.canary_version or "", "Superseded", "SpecChanged")
            _start_rollout(w)
        elif abort:
            used.add("abort")
            _rollback(
                w, "Aborted", "Aborted", "RolledBack", f"rollout of {st.canary_version} aborted by annotation"
            )
        elif promote:
            used.add("promote")
            _promote(w, "ManualPromotion")
        elif retry and st.phase == "Paused" and st.pause_reason in _RETRYABLE:
            used.add("retry")
            w.event("Normal", "RolloutRetried", f"retrying the rollout of {target.version} from step 0")
            _start_rollout(w)
        else:
            _progress(w, verdict)
    else:
        _idle(w, retry, rollout_allowed, used)

    # Tokens seen are consumed whether or not they applied.
    updates: dict[str, Any] = {}
    for name, token, attr in (
        ("promote", promote, "last_promote_token"),
        ("abort", abort, "last_abort_token"),
        ("retry", retry, "last_retry_token"),
    ):
        if token is not None and f"defer-{name}" not in used:
            updates[attr] = token
            if name not in used:
                w.event(
                    "Normal",
                    "AnnotationIgnored",
                    f"{ROLLOUT_ANNOTATIONS[name]}={token} does not apply in phase {w.st.phase}",
                )
    if generation is not None:
        updates["observed_generation"] = generation
    w.set(**updates)
    _weights(w)
    _conditions(w, generation)

    new_status = w.st.to_status()
    requeue: float | None = None
    if w.analysis is not None:
        requeue = 0.0
    elif w.wakeups:
        requeue = max(0.0, min((t - now).total_seconds() for t in w.wakeups))
    return Plan(
        status=new_status,
        status_patch=_merge_patch(old_status, new_status),
        actions=tuple(w.actions),
        events=tuple(w.events),
        requeue_after=requeue,
        analysis=w.analysis,
        verdict_consumed=w.verdict_consumed,
    )


def plan_invalid_spec(
    status: Mapping[str, Any] | None, error: SpecError, now: datetime, *, generation: int | None = None
) -> Plan:
    """Record a spec the core cannot use: condition Degraded=True (InvalidSpec), nothing else."""
    old_status = dict(status or {})
    st = RolloutState.from_status(old_status)
    conditions = set_condition(st.conditions, "Degraded", "True", "InvalidSpec", str(error), now, generation)
    st = replace(
        st,
        conditions=tuple(conditions),
        message=f"invalid spec: {error}",
        observed_generation=generation if generation is not None else st.observed_generation,
    )
    new_status = st.to_status()
    patch = _merge_patch(old_status, new_status)
    return Plan(
        status=new_status,
        status_patch=patch,
        events=(Event("Warning", "InvalidSpec", str(error)),) if patch else (),
    )


# --------------------------------------------------------------------------- transitions


def _deploy_first(w: _Work) -> None:
    m = w.spec.model
    phase = "Pending" if w.observed.stable_ready is False else "Healthy"
    w.set(
        stable_version=m.version,
        stable_uri=m.uri,
        phase=phase,
        message=f"serving {m.version}",
        **_ROLLOUT_RESET,
    )
    _await_stable(w)
    w.actions.append(DeployStable(m.version, m.uri))
    w.event("Normal", "Deployed", f"deploying {m.version} as stable")
    _add_history(w, m.version, "Deployed", "Created")


def _idle(w: _Work, retry: str | None, rollout_allowed: bool, used: set[str]) -> None:
    st, m = w.st, w.spec.model
    if st.canary_draining:
        _drain(w)
    if m.version == st.stable_version:
        if m.uri != st.stable_uri:
            w.event(
                "Warning",
                "UriChangedWithoutVersion",
                f"model uri changed for the same version {m.version}: updating stable in place",
            )
            w.set(stable_uri=m.uri)
            w.actions.append(DeployStable(m.version, m.uri))
            _add_history(w, m.version, "Deployed", "UriChanged")
            _await_stable(w)
            if w.st.awaiting_stable_since is not None:
                w.set(phase="Progressing", message=_awaiting_message(w), aborted_version=None)
                return
        phase, message = _settled_phase(w)
        if phase == "Degraded" and st.phase != "Degraded":
            w.event("Warning", "StableNotReady", message)
        w.set(phase=phase, message=message, aborted_version=None)
        return
    if st.phase in ("RolledBack", "Failed") and st.aborted_version == m.version:
        if retry and not rollout_allowed:
            w.frozen = True
            w.set(message=f"retry of {m.version} waits for a maintenance window (rolloutPolicy OnlyInWindow)")
            used.add("defer-retry")  # left unconsumed: it acts once a window opens
        elif retry:
            used.add("retry")
            w.event("Normal", "RolloutRetried", f"retrying the rollout of {m.version} from step 0")
            _start_rollout(w)
        return
    if not rollout_allowed:
        w.frozen = True
        w.set(
            phase="Healthy",
            message=f"{m.version} waits for a maintenance window (rolloutPolicy OnlyInWindow)",
        )
        return
    _start_rollout(w)


def _drain(w: _Work) -> None:
    """The canary track serves the stable version while the stable track rolls to it.

    Replica ratio: both tracks sit behind the Service ``<m>``; once the stable track is ready the
    canary is scaled down. Gateway API: ``canaryWeight`` is the route's share for the canary
    track meanwhile (all of it once the canary runs at full size); once the stable track is ready
    with the new version the route switches to it (weight 0), and the canary is scaled down only
    by a later plan, after the shell has applied the switched route.
    """
    st = w.st
    if w.observed.stable_ready is not False:
        if st.canary_weight > 0:
            w.set(canary_weight=0)
            w.actions.append(SetWeights(stable=100, canary=0))
            w.event(
                "Normal",
                "TrafficSwitched",
                f"stable {st.stable_version} is ready; route switched to the stable track "
                "(the canary track is scaled down next)",
            )
            w.wake_at(w.now)
            return
        w.set(canary_draining=False)
        w.actions.append(ScaleDownCanary())
        w.event("Normal", "StableReady", f"stable {st.stable_version} is ready; canary track scaled down")
        return
    if _gateway(w) and st.canary_weight < 100 and w.observed.canary_ready:
        # Promoted from a lower weight: the canary now runs at full size, so it takes all traffic.
        w.set(canary_weight=100)
        w.actions.append(SetWeights(stable=0, canary=100))
        w.event(
            "Normal",
            "TrafficShifted",
            f"stable {st.stable_version} still rolling out; the canary track (ready at full size) "
            "takes all traffic meanwhile",
        )


def _await_stable(w: _Work) -> None:
    """The stable track's pods are about to change: a "not ready" that follows is expected, not Degraded.

    Only with readiness reports (``observed.stable_ready`` known); cleared by the first plan that
    sees the stable track ready.
    """
    if w.observed.stable_ready is not None:
        w.set(awaiting_stable_since=w.now)


def _last_history(w: _Work) -> Mapping[str, Any]:
    return w.st.history[-1] if w.st.history else {}


def _awaiting_message(w: _Work) -> str:
    last = _last_history(w)
    outcome, reason = last.get("outcome"), last.get("reason")
    if outcome == "Promoted":
        doing = "promoting"
    elif outcome == "Deployed":
        doing = "updating" if reason == "UriChanged" else "deploying"
    else:
        doing = "restoring stable"
    return f"{doing}: waiting for stable {w.st.stable_version} to be ready"


def _settled_phase(w: _Work) -> tuple[str, str]:
    """Phase and message outside a rollout with the spec at the stable version."""
    st, version = w.st, w.st.stable_version
    if w.observed.stable_ready is not False:
        return "Healthy", f"serving {version}"
    # The first deploy, not ready yet.
    first_deploy = _last_history(w).get("reason") == "Created" and st.awaiting_stable_since is not None
    if st.phase == "Pending" or first_deploy:
        return "Pending", f"stable {version} is not ready"
    since = st.awaiting_stable_since
    deadline_s = w.spec.rollout.progress_deadline_s
    if since is not None:  # after a promotion/rollback/update: expected until its deadline
        deadline = since + timedelta(seconds=deadline_s)
        if w.now < deadline:
            w.wake_at(deadline)
            return "Progressing", _awaiting_message(w)
        serving = "; the canary track serves it meanwhile" if st.canary_draining else ""
        return "Degraded", f"stable {version} not ready within {deadline_s:g}s{serving}"
    if st.canary_draining:
        return "Progressing", _awaiting_message(w)
    return "Degraded", f"stable {version} is not ready"


def _start_rollout(w: _Work) -> None:
    m, rollout = w.spec.model, w.spec.rollout
    ready_at = w.now if w.observed.canary_ready is None else None
    w.set(
        **{
            **_ROLLOUT_RESET,
            "canary_version": m.version,
            "canary_uri": m.uri,
            "current_step": 0,
            "canary_weight": rollout.steps[0].weight,
            "canary_revision": w.st.canary_revision + 1,
            "rollout_started_at": w.now,
            "step_started_at": w.now,
            "step_ready_at": ready_at,
            "phase": "Progressing",
            "aborted_version": None,
            "canary_draining": False,
            "last_analysis": None,
            "message": f"canary {m.version}: step 1/{len(rollout.steps)} at weight {rollout.steps[0].weight}",
        }
    )
    w.event(
        "Normal",
        "RolloutStarted",
        f"canary {m.version} (stable {w.st.stable_version}) at weight {rollout.steps[0].weight}",
    )
    _scale_actions(w)
    _schedule_step(w)


def _enter_step(w: _Work, index: int) -> None:
    rollout = w.spec.rollout
    step = rollout.steps[index]
    ready_at = w.now if w.observed.canary_ready is None else None
    if w.observed.canary_ready:
        # The same replica split as the step just passed (e.g. 25 % and 50 % of 2 replicas): no pod
        # changes, so no Deployment event would come; the canary, ready now, is ready for this step.
        before = desired_replicas(rollout.traffic_routing, w.st.canary_weight, w.spec.serving.replicas)
        after = desired_replicas(rollout.traffic_routing, step.weight, w.spec.serving.replicas)
        if before == after:
            ready_at = w.now
    w.set(
        current_step=index,
        canary_weight=step.weight,
        step_started_at=w.now,
        step_ready_at=ready_at,
        step_looks=0,
        step_failures=0,
        step_inconclusive=0,
        step_passed=False,
        waiting_for_samples_since=None,
        message=f"canary {w.st.canary_version}: step {index + 1}/{len(rollout.steps)} "
        f"at weight {step.weight}",
    )
    w.event(
        "Normal", "StepAdvanced", f"canary {w.st.canary_version} at weight {step.weight} (step {index + 1})"
    )
    _scale_actions(w)
    _schedule_step(w)


def _schedule_step(w: _Work) -> None:
    """When the step just entered needs the planner again."""
    rollout = w.spec.rollout
    index = w.st.current_step or 0
    if w.st.step_ready_at is None:
        w.wake_at(w.now + timedelta(seconds=rollout.progress_deadline_s))
    elif rollout.step_requires_analysis(index) and rollout.analysis is not None:
        w.wake_at(w.now + timedelta(seconds=rollout.analysis.interval_s))
    else:
        w.wake_at(w.now + timedelta(seconds=rollout.steps[index].pause_s or 0))


def _scale_actions(w: _Work) -> None:
    split = desired_replicas(w.spec.rollout.traffic_routing, w.st.canary_weight, w.spec.serving.replicas)
    w.actions.append(ScaleCanary(w.st.canary_version or "", w.st.canary_uri or "", split.canary))
    w.actions.append(SetWeights(stable=100 - w.st.canary_weight, canary=w.st.canary_weight))


def _gateway(w: _Work) -> bool:
    return w.spec.rollout.traffic_routing.kind == "gatewayAPI"


def _promote(w: _Work, reason: str) -> None:
    st = w.st
    version, uri = st.canary_version or "", st.canary_uri or ""
    w.actions.append(PromoteCanaryToStable(version, uri))
    draining = w.observed.stable_ready is not None  # unknown readiness: scale down at once
    # Behind an HTTPRoute the route keeps its canary share while the stable track rolls to the
    # promoted version (it would otherwise send that share back to the old version's pods).
    weight = st.canary_weight if draining and _gateway(w) else 0
    if weight != st.canary_weight or not _gateway(w):
        w.actions.append(SetWeights(stable=100 - weight, canary=weight))
    if not draining:
        w.actions.append(ScaleDownCanary())
    w.event("Normal", "Promoted", f"{version} promoted to stable (was {st.stable_version}): {reason}")
    _add_history(w, version, "Promoted", reason)
    w.set(
        **{
            **_ROLLOUT_RESET,
            "stable_version": version,
            "stable_uri": uri,
            "phase": "Healthy",
            "aborted_version": None,
            "canary_draining": draining,
            "canary_weight": weight,
            "message": f"serving {version}",
        }
    )
    _await_stable(w)
    if draining:
        w.set(phase="Progressing", message=_awaiting_message(w))


def _withdraw_canary(w: _Work, outcome: str, reason: str, **state: Any) -> None:
    """Take the canary out of service (rollback, abort, cancelled rollout) and record it in history.

    With no stable pod left (replica ratio at 100 %), removing the canary at once would leave
    no capacity: when readiness is reported, the idle canary Deployment (which carries the
    stable version) instead rolls to the stable version at full size (``canaryDraining``)
    until the stable track is ready again.
    """
    split = desired_replicas(w.spec.rollout.traffic_routing, w.st.canary_weight, w.spec.serving.replicas)
    draining = split.stable == 0 and w.observed.stable_ready is not None
    w.actions.append(SetWeights(stable=100, canary=0))
    if not draining:
        w.actions.append(ScaleDownCanary())
    _add_history(w, w.st.canary_version or "", outcome, reason)
    w.set(**_ROLLOUT_RESET, canary_draining=draining, **state)
    if split.stable < w.spec.serving.replicas:  # the stable track scales back up
        _await_stable(w)


def _rollback(w: _Work, outcome: str, reason: str, phase: str, message: str) -> None:
    version = w.st.canary_version or ""
    w.event("Warning", "RolledBack" if outcome != "Aborted" else "Aborted", message)
    _withdraw_canary(
        w,
        outcome,
        reason,
        phase=phase,
        aborted_version=version,
        message=f"{message}; serving {w.st.stable_version}",
    )


def _end_rollout(w: _Work, outcome: str, reason: str, message: str) -> None:
    w.event("Normal", reason, message)
    _withdraw_canary(
        w, outcome, reason, phase="Healthy", aborted_version=None, message=f"serving {w.st.stable_version}"
    )
    if w.st.awaiting_stable_since is not None:
        w.set(phase="Progressing", message=_awaiting_message(w))


def _fail_analysis(w: _Work, reason: str, message: str) -> None:
    if w.spec.rollout.auto_rollback:
        _rollback(w, "RolledBack", reason, "RolledBack", message)
    else:
        w.set(
            phase="Paused",
            pause_reason=reason,
            message=f"{message}; paused at weight {w.st.canary_weight} (autoRollback is false)",
        )
        w.event(
            "Warning",
            "RolloutPaused",
            f"{message}; autoRollback is false: waiting for promote, abort or retry",
        )


def _progress(w: _Work, verdict: Verdict | None) -> None:
    rollout, now = w.spec.rollout, w.now
    # The step list may have changed under a running rollout: stay within it, follow its weight.
    index = min(w.st.current_step or 0, len(rollout.steps) - 1)
    step = rollout.steps[index]
    if index != w.st.current_step or step.weight != w.st.canary_weight:
        w.set(current_step=index, canary_weight=step.weight)
        _scale_actions(w)
    if w.st.phase == "Paused" and w.st.pause_reason in _HALTED:
        return  # waits for promote, abort, retry or a spec change

    # 1. Readiness of the canary at this step; progressDeadline bounds this wait.
    if w.st.step_ready_at is None:
        if w.observed.canary_ready is False:
            started = w.st.step_started_at or now
            deadline = started + timedelta(seconds=rollout.progress_deadline_s)
            if now >= deadline:
                if w.st.phase == "Paused":
                    return  # already paused for it (autoRollback false)
                if rollout.auto_rollback:
                    _rollback(
                        w,
                        "Failed",
                        "ProgressDeadlineExceeded",
                        "Failed",
                        f"canary {w.st.canary_version} not ready within {rollout.progress_deadline_s:g}s",
                    )
                else:
                    w.set(
                        phase="Paused",
                        pause_reason="ProgressDeadlineExceeded",
                        message=f"canary {w.st.canary_version} not ready within "
                        f"{rollout.progress_deadline_s:g}s",
                    )
                    w.event("Warning", "ProgressDeadlineExceeded", w.st.message)
            else:
                w.wake_at(deadline)
            return
        w.set(step_ready_at=now)
    if w.st.pause_reason == "ProgressDeadlineExceeded":  # became ready after all
        w.set(pause_reason=None, phase="Progressing")
    ready_at = w.st.step_ready_at or now

    # 2. Analysis until a Pass.
    needs_analysis = rollout.step_requires_analysis(index)
    if needs_analysis and not w.st.step_passed:
        analysis = rollout.analysis
        assert analysis is not None
        last = w.st.last_analysis_at
        base = last if last is not None and last >= ready_at else ready_at
        due = base + timedelta(seconds=analysis.interval_s)
        if now < due:
            w.wake_at(due)
            return
        if verdict is None:
            started = w.st.rollout_started_at or ready_at
            w.analysis = AnalysisRequest(
                canary_version=w.st.canary_version or "",
                stable_version=w.st.stable_version or "",
                step=index,
                look=w.st.step_looks + 1,
                planned_looks=rollout.looks_per_step,
                window_s=max(analysis.interval_s, (now - started).total_seconds()),
                slo_ref=analysis.slo_ref,
                min_samples=analysis.min_samples,
            )
            return
        _consume(w, verdict)
        if not w.st.in_rollout or (w.st.phase == "Paused" and w.st.pause_reason not in UNAVAILABLE_REASONS):
            return
        if not w.st.step_passed:
            w.wake_at(now + timedelta(seconds=analysis.interval_s))
            return

    # 3. The step's pause, counted from readiness.
    if step.pause_s:
        pause_end = ready_at + timedelta(seconds=step.pause_s)
        if now < pause_end:
            w.wake_at(pause_end)
            return

    # 4. Advance (one step per plan) or promote after the last.
    if index + 1 < len(rollout.steps):
        _enter_step(w, index + 1)
    else:
        judged = any(rollout.step_requires_analysis(i) for i in range(len(rollout.steps)))
        _promote(w, "AnalysisPassed" if judged else "StepsCompleted")


def _consume(w: _Work, verdict: Verdict) -> None:
    rollout = w.spec.rollout
    analysis = rollout.analysis
    assert analysis is not None
    w.verdict_consumed = True
    previous_look = w.st.last_analysis_at
    w.set(last_analysis=verdict.to_status(), last_analysis_at=w.now)
    version = w.st.canary_version
    if verdict.metrics_unavailable:
        reason = verdict.reason if verdict.reason in UNAVAILABLE_REASONS else "MetricsUnavailable"
        if w.st.phase != "Paused" or w.st.pause_reason != reason:
            w.event("Warning", reason, f"analysis of {version} paused: {verdict.message}")
        w.set(
            phase="Paused",
            pause_reason=reason,
            message=f"canary {version} paused at weight {w.st.canary_weight}: {verdict.message}",
            waiting_for_samples_since=None,  # an outage is not counted against the samples deadline
        )
        return
    if w.st.phase == "Paused":
        again = {"SLONotFound": "QualitySLO found", "InvalidSLO": "QualitySLO valid again"}.get(
            w.st.pause_reason or "", "metrics available again"
        )
        w.event("Normal", "Resumed", f"{again}; analysis of {version} resumed")
    w.set(phase="Progressing", pause_reason=None)
    if verdict.insufficient_data:
        _wait_for_samples(w, verdict, previous_look)
        return
    w.set(
        step_looks=w.st.step_looks + 1,
        total_looks=w.st.total_looks + 1,
        waiting_for_samples_since=None,
    )
    if verdict.outcome is Outcome.PASS:
        w.set(step_passed=True)
        w.event("Normal", "AnalysisPassed", f"{version} look {w.st.step_looks}: {verdict.message}")
    elif verdict.outcome is Outcome.FAIL:
        w.set(step_failures=w.st.step_failures + 1)
        w.event(
            "Warning",
            "AnalysisFailed",
            f"{version} look {w.st.step_looks} failed ({w.st.step_failures}/{analysis.failure_limit}): "
            f"{verdict.message}",
        )
        if w.st.step_failures >= analysis.failure_limit:
            _fail_analysis(
                w,
                "AnalysisFailed",
                f"canary {version} failed analysis {w.st.step_failures} times: {verdict.reason}",
            )
    else:
        w.set(step_inconclusive=w.st.step_inconclusive + 1)
        w.event(
            "Normal",
            "AnalysisInconclusive",
            f"{version} look {w.st.step_looks} inconclusive "
            f"({w.st.step_inconclusive}/{analysis.inconclusive_limit}): {verdict.message}",
        )
        if w.st.step_inconclusive >= analysis.inconclusive_limit:
            _fail_analysis(
                w,
                "AnalysisInconclusive",
                f"canary {version} inconclusive {w.st.step_inconclusive} times: {verdict.reason}",
            )


def _wait_for_samples(w: _Work, verdict: Verdict, previous_look: datetime | None) -> None:
    """A look that ran no test for lack of samples: it counts toward no limit and spends no alpha.

    The wait is bounded: a step with no tested look within ``progressDeadline`` of its
    readiness (or of its last tested look, or of a metrics outage) is treated as the
    inconclusive limit reached, reason ``NoAnalysisData``.
    """
    rollout = w.spec.rollout
    version, index = w.st.canary_version, w.st.current_step or 0
    since = w.st.waiting_for_samples_since
    if since is None:  # the wait starts: count from the step's readiness or its last look, if later
        ready_at = w.st.step_ready_at or w.now
        since = previous_look if previous_look is not None and previous_look > ready_at else ready_at
        w.set(waiting_for_samples_since=since)
        w.event(
            "Normal",
            "WaitingForSamples",
            f"analysis of {version} waits for labelled samples (looks without enough data do not count): "
            f"{verdict.message}",
        )
    deadline = since + timedelta(seconds=rollout.progress_deadline_s)
    if w.now >= deadline:
        _fail_analysis(
            w,
            "NoAnalysisData",
            f"canary {version}: no analysis with enough samples within {rollout.progress_deadline_s:g}s "
            f"at step {index + 1}: {verdict.message}",
        )
        return
    w.set(
        message=f"canary {version}: step {index + 1}/{len(rollout.steps)} at weight {w.st.canary_weight}: "
        f"waiting for samples ({verdict.message}); gives up at {format_time(deadline)}"
    )


def _add_history(w: _Work, version: str, outcome: str, reason: str) -> None:
    entry = {
        "revision": w.st.canary_revision,
        "version": version,
        "outcome": outcome,
        "reason": reason,
        "at": format_time(w.now),
    }
    w.set(history=(*w.st.history, entry)[-HISTORY_LIMIT:])


def _weights(w: _Work) -> None:
    """Keep ``canaryWeight`` consistent with the rollout state.

    0 outside a rollout, except the route's canary share while a promoted canary drains behind
    an HTTPRoute (``_drain``).
    """
    routed_drain = w.st.canary_draining and _gateway(w)
    if not w.st.in_rollout and w.st.canary_weight != 0 and not routed_drain:
        w.set(canary_weight=0)


def _conditions(w: _Work, generation: int | None) -> None:
    st, now, gen = w.st, w.now, generation if generation is not None else w.st.observed_generation
    conds: list[dict[str, Any]] = [dict(c) for c in st.conditions]

    if st.canary_draining and w.observed.stable_ready is False:
        conds = set_condition(
            conds,
            "Available",
            "True",
            "CanaryServing",
            f"{st.stable_version} served by the canary track while the stable track rolls out",
            now,
            gen,
        )
    elif st.phase == "Pending" or w.observed.stable_ready is False:
        conds = set_condition(
            conds, "Available", "False", "StableNotReady", f"stable {st.stable_version} not ready", now, gen
        )
    else:
        conds = set_condition(
            conds, "Available", "True", "StableAvailable", f"stable {st.stable_version} serving", now, gen
        )

    if st.phase == "Progressing":
        reason = "RolloutInProgress" if st.in_rollout else "WaitingForStable"
        conds = set_condition(conds, "Progressing", "True", reason, st.message, now, gen)
    elif st.phase == "Paused":
        conds = set_condition(
            conds, "Progressing", "False", st.pause_reason or "Paused", st.message, now, gen
        )
    elif w.frozen:
        conds = set_condition(conds, "Progressing", "False", "RolloutFrozen", st.message, now, gen)
    elif st.phase in ("RolledBack", "Failed"):
        last = st.history[-1] if st.history else {}
        conds = set_condition(
            conds, "Progressing", "False", str(last.get("reason") or st.phase), st.message, now, gen
        )
    else:
        conds = set_condition(conds, "Progressing", "False", "RolloutComplete", st.message, now, gen)

    failure_pause = st.phase == "Paused" and st.pause_reason not in UNAVAILABLE_REASONS
    if st.phase == "Degraded":
        conds = set_condition(conds, "Degraded", "True", "StableNotReady", st.message, now, gen)
    elif st.phase in ("RolledBack", "Failed") or failure_pause:
        conds = set_condition(conds, "Degraded", "True", st.pause_reason or st.phase, st.message, now, gen)
    else:
        conds = set_condition(conds, "Degraded", "False", "AsExpected", "", now, gen)

    la = st.last_analysis
    if not la:
        conds = set_condition(
            conds, "AnalysisSucceeded", "Unknown", "NoAnalysis", "no analysis in this rollout", now, gen
        )
    else:
        status: ConditionStatus = (
            "True"
            if la.get("verdict") == "Pass"
            else "Unknown"
            if la.get("metricsUnavailable") or la.get("insufficientData")
            else "False"
        )
        reason = "WaitingForSamples" if la.get("insufficientData") else str(la.get("reason") or "Analysis")
        conds = set_condition(
            conds,
            "AnalysisSucceeded",
            status,
            reason,
            str(la.get("message", ""))[:1024],
            now,
            gen,
        )
    w.set(conditions=tuple(conds))
