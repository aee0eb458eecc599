"""The retrain planner: spec + ``status.retrain`` + observations + now -> the next state. Pure.

``plan_retrain(spec, state, observed, now) -> RetrainPlan``, one pass in order:

1. follow the running Job: once it finished, read the candidate from the manifest the shell
   fetched (``read_candidate``); the run, the candidate and a history entry go to status, with
   an Event naming the version and URI (``CandidateReady`` for Git in Manual mode,
   ``CandidateRejected`` for a failed gate); a passing candidate in Automatic mode starts a
   ``Promotion`` (``effective_spec`` then makes the rollout canary it);
2. follow an automatic promotion (``follow_promotion``);
3. fire the triggers (``triggers.fire``: those of ``spec.retrain.triggers`` and the Retrain
   tasks of MaintenanceWindows, which need no entry there) unless a Job runs (in status, or any
   unfinished Job of the model's, ``active_jobs``); when any fires, every firing is
   recorded (status, an Event ``RetrainTriggered``, history) and one Job is asked for
   (``RetrainPlan.job``), named by the next serial; a spec that cannot run a retrain
   (no ``trainer.data``, ``outputUri`` or ``feedbackLog``) records the firings with the reason
   instead (Warning ``RetrainNotConfigured``) and starts nothing. A window's task overrides
   the trainer's data, template and deadline for the Job it fired (``requests.with_overrides``);
4. ``servedBy`` / ``specVersion`` / ``servedVersion``: whether the stable track serves
   ``spec.model`` or a promoted candidate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..events import Event
from ..spec import RankingModelSpec
from ..timeutil import format_time
from .jobs import RetrainTarget, build_retrain_job, candidate_uri, candidate_version, retrain_job_name
from .promotion import RolloutView, follow_promotion, read_candidate
from .requests import with_overrides
from .state import Promotion, RetrainState, Run
from .triggers import TriggerInputs, fire

__all__ = ["JobOutcome", "RetrainObserved", "RetrainPlan", "plan_retrain"]


@dataclass(frozen=True)
class JobOutcome:
    """The run's Job as the shell read it (``None`` in ``RetrainObserved.job``: not found)."""

    state: str  # Running | Succeeded | Failed
    failure: str | None = None  # CheckFailed (exit 1: the gate failed), BadInput (exit 2), the Job's reason
    message: str = ""
    completion_time: datetime | None = None


@dataclass(frozen=True)
class RetrainObserved:
    target: RetrainTarget
    image: str
    rollout: RolloutView
    triggers: TriggerInputs
    job: JobOutcome | None = None
    manifest: Mapping[str, Any] | None = None  # the candidate's, read once the Job finished
    manifest_error: str | None = None
    # Unfinished retrain Jobs of this model found by label: one not in status (a lost status
    # write, a restored object) still counts, so no second Job starts beside it.
    active_jobs: tuple[str, ...] = ()


@dataclass(frozen=True)
class RetrainPlan:
    state: RetrainState
    status: dict[str, Any]
    job: dict[str, Any] | None = None  # the Job to create
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None
    wake_rollout: bool = False  # a promotion began or ended: the rollout must plan again


def _finish_run(
    spec: RankingModelSpec, state: RetrainState, observed: RetrainObserved, now: datetime, events: list[Event]
) -> RetrainState:
    run = state.run
    assert run is not None
    job = observed.job
    if job is not None and job.state == "Running":
        return state
    mode = spec.retrain.promotion_gate.mode if spec.retrain is not None else "Manual"
    candidate = None
    if job is None:
        ended = dataclasses.replace(
            run, state="Failed", completion_time=now, message=f"Job {run.job} is gone"
        )
    else:
        done = job.completion_time or now
        ended = dataclasses.replace(
            run, state="Succeeded" if job.state == "Succeeded" else "Failed", completion_time=done
        )
        if observed.manifest is not None:
            try:
                candidate = read_candidate(observed.manifest, run, mode, now)
            except ValueError as exc:
                ended = dataclasses.replace(ended, state="Failed", message=str(exc))
        else:
            why = job.message or job.failure or "no candidate manifest"
            ended = dataclasses.replace(
                ended,
                state="Failed",
                message=f"no candidate at {run.candidate_uri}: {observed.manifest_error or why}",
            )
    outcome = "Failed"
    if candidate is not None:
        figures = candidate.figures or {}
        numbers = (
            f"NDCG@3 {figures.get('candidate_ndcg@3')} vs parent {figures.get('parent_ndcg@3')}, "
            f"p = {figures.get('p_value')}"
        )
        if candidate.passed:
            outcome = "Passed"
            ended = dataclasses.replace(
                ended, message=f"candidate {candidate.version} passed the gate ({numbers})"
            )
            if mode == "Manual":
                events.append(
                    Event(
                        "Normal",
                        "CandidateReady",
                        f"retrained candidate {candidate.version} passed the gate ({numbers}); to roll it "
                        f"out, commit spec.model.version: {candidate.version} and spec.model.uri: "
                        f"{candidate.uri} to Git",
                    )
                )
        else:
            outcome = "GateFailed"
            reasons = "; ".join(candidate.reasons) or "the gate failed"
            ended = dataclasses.replace(
                ended, message=f"candidate {candidate.version} failed the gate: {reasons}"
            )
            events.append(
                Event(
                    "Warning",
                    "CandidateRejected",
                    f"candidate {candidate.version} at {candidate.uri}: {reasons}",
                )
            )
    else:
        events.append(Event("Warning", "RetrainFailed", f"retrain Job {run.job}: {ended.message}"))
    new = dataclasses.replace(
        state, run=ended, candidate=candidate if candidate is not None else state.candidate
    )
    new = new.with_history(
        {
            "serial": run.serial,
            "job": run.job,
            "triggers": list(run.triggers),
            "candidateVersion": run.candidate_version,
            "outcome": outcome,
            "time": format_time(now),
        }
    )
    if candidate is not None and candidate.passed and mode == "Automatic" and spec.retrain is not None:
        msg = (
            f"candidate {candidate.version} passed the gate: canary through the normal analysis "
            f"(spec.model {spec.model.version} is not edited)"
        )
        new = dataclasses.replace(
            new,
            promotion=Promotion(
                version=candidate.version,
                uri=candidate.uri,
                spec_version=spec.model.version,
                spec_uri=spec.model.uri,
                state="Canary",
                time=now,
                message=msg,
            ),
        )
        events.append(Event("Normal", "CandidateCanary", msg))
    return new


def plan_retrain(
    spec: RankingModelSpec, state: RetrainState, observed: RetrainObserved, now: datetime
) -> RetrainPlan:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    events: list[Event] = []
    before_promotion = state.promotion
    if state.running:
        state = _finish_run(spec, state, observed, now, events)
    if state.promotion is not None:
        promotion, promo_events = follow_promotion(state.promotion, spec, observed.rollout)
        state = dataclasses.replace(state, promotion=promotion)
        events += promo_events

    job: dict[str, Any] | None = None
    requeue: float | None = None
    if spec.retrain is not None and (spec.retrain.triggers.any or observed.triggers.maintenance):
        check = fire(spec.retrain.triggers, state, observed.triggers, now)
        state = dataclasses.replace(state, schedule_anchor=check.schedule_anchor)
        if check.next_scheduled is not None:
            requeue = max(0.0, (check.next_scheduled - now).total_seconds())
        if check.firings and observed.active_jobs:
            pass  # the firings wait (their keys stay unconsumed) until that Job has finished
        elif check.firings:
            serial = state.runs + 1
            target = observed.target
            kinds = tuple(dict.fromkeys(f.type for f in check.firings))
            why = "; ".join(f.message for f in check.firings)
            keys = {f.key for f in check.firings if f.type == "MaintenanceWindow"}
            asked = [r for r in observed.triggers.maintenance if r.key in keys]
            job_spec = with_overrides(spec, max(asked, key=lambda r: r.start)) if asked else spec
            try:
                job = build_retrain_job(job_spec, target, serial, kinds, observed.image)
            except ValueError as exc:
                firings = tuple(
                    dataclasses.replace(f, message=f"{f.message} (not run: {exc})") for f in check.firings
                )
                state = state.with_firings(firings)
                events.append(
                    Event("Warning", "RetrainNotConfigured", f"retrain triggered ({why}) but {exc}")
                )
            else:
                name = retrain_job_name(target.name, serial)
                version = candidate_version(target.parent_version, serial)
                assert spec.retrain.trainer.output_uri is not None
                uri = candidate_uri(spec.retrain.trainer.output_uri, version)
                firings = tuple(dataclasses.replace(f, job=name) for f in check.firings)
                state = dataclasses.replace(
                    state.with_firings(firings),
                    runs=serial,
                    run=Run(
                        job=name,
                        serial=serial,
                        triggers=kinds,
                        parent_version=target.parent_version,
                        parent_uri=target.parent_uri,
                        candidate_version=version,
                        candidate_uri=uri,
                        state="Running",
                        start_time=now,
                    ),
                )
                state = state.with_history(
                    {
                        "serial": serial,
                        "job": name,
                        "triggers": list(kinds),
                        "candidateVersion": version,
                        "outcome": "Started",
                        "time": format_time(now),
                    }
                )
                for f in firings:
                    events.append(Event("Normal", "RetrainTriggered", f"{f.type}: {f.message}"))
                events.append(
                    Event(
                        "Normal",
                        "RetrainStarted",
                        f"Job {name} retrains {target.parent_version} into candidate {version} at {uri}",
                    )
                )

    stable = observed.rollout.stable_version
    current = state.promotion
    serving_candidate = current is not None and current.in_force and stable == current.version
    state = dataclasses.replace(
        state,
        served_by="candidate" if serving_candidate else "spec",
        spec_version=spec.model.version,
        served_version=stable,
    )
    woke = (before_promotion is None) != (state.promotion is None) or (
        before_promotion is not None
        and state.promotion is not None
        and before_promotion.in_force != state.promotion.in_force
    )
    return RetrainPlan(
        state=state,
        status=state.to_status(),
        job=job,
        events=tuple(events),
        requeue_after=requeue,
        wake_rollout=woke,
    )
