"""The MaintenanceWindow planner: spec + status + selected models + observed Jobs + now ->
the Jobs to create or delete, the new status, Events and when to look again. Pure.

Steps of one reconcile, in order:

1. ``due_window`` from ``status.lastScheduleTime``: the window whose Jobs start now (within
   ``startingDeadlineSeconds`` and while the window is open), and starts that were missed.
2. For the due window, one Job per task and model (``jobs.build_job``; deterministic names,
   so a Job that already exists is simply observed). A previous Job of the same task and
   model still running: ``Forbid`` skips the new one, ``Allow`` runs both, ``Replace``
   deletes the old one first. ``suspend`` starts nothing (the start is still recorded, so
   resuming does not report suspended windows as missed).
   A ``Retrain`` task starts no Job: it records a request (``retrain_task``) that the
   RankingModel's retrain controller runs through its own trigger, Job, gate and promotion.
3. ``lastRuns``: per task and model, the newest Job's state (Running, Succeeded, Failed) or a
   Skipped entry; a Job still running after its window's end is reported as overrunning; a
   Retrain request as the model's ``status.retrain`` says it went (``follow_request``).
4. Events on transitions (a Job created, skipped, finished, failed, overrunning; windows
   missed) and conditions ``Ready``, ``TasksSucceeded``, ``TaskOverran``, ``WindowMissed``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rankops.operator.core.conditions import ConditionStatus, get_condition, set_condition
from rankops.operator.core.maintenance.jobs import JobContext, ModelTarget, TaskSpec, build_job, job_name
from rankops.operator.core.maintenance.observed import (
    CHECK_FAILED,
    FAILED,
    NO_VERDICT,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    ObservedJob,
)
from rankops.operator.core.maintenance.retrain_task import (
    REQUESTED,
    follow_request,
    request_entry,
    retrain_unconfigured,
)
from rankops.operator.core.maintenance.schedule import (
    current_window,
    due_window,
    next_window,
    previous_start,
)
from rankops.operator.core.maintenance.spec import MaintenanceWindowSpec
from rankops.operator.core.spec import SpecError
from rankops.operator.core.timeutil import format_time, parse_time

__all__ = ["Event", "ObservedJob", "WindowMeta", "WindowPlan", "plan_invalid_window", "plan_window"]

POLL_RUNNING_S = 30.0  # Job watch events wake the controller sooner; this is the fallback
MAX_LAST_RUNS = 64
FAILURE_REASONS = {
    "Backup": "BackupFailed",
    "RestoreTest": "RestoreTestFailed",
    "Evaluate": "EvaluationFailed",
    "DriftCheck": "DriftCheckFailed",
    "Retrain": "RetrainFailed",
}


@dataclass(frozen=True)
class WindowMeta:
    name: str
    namespace: str
    uid: str
    generation: int | None = None


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str
    model: str | None = None  # also post it on this RankingModel


@dataclass
class WindowPlan:
    status_patch: dict[str, Any]
    create: list[dict[str, Any]] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None
    active: bool = False
    retrain_requested: list[str] = field(default_factory=list)  # models whose retrain loop to wake


def _run_entry(job: ObservedJob, task: TaskSpec | None, now: datetime) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "task": job.task,
        "type": task.type if task else "",
        "model": job.model,
        "jobName": job.name,
        "windowStart": format_time(job.window_start),
        "result": job.state,
    }
    if job.start_time:
        entry["startTime"] = format_time(job.start_time)
    if job.completion_time:
        entry["completionTime"] = format_time(job.completion_time)
    if job.state == FAILED:
        entry["reason"] = _failure_reason(task, job)
        entry["message"] = job.message or f"Job {job.name} failed"
    elif job.state == RUNNING and now >= job.window_end:
        entry["overran"] = True
        entry["message"] = f"still running after the window closed at {format_time(job.window_end)}"
    return entry


def _failure_reason(task: TaskSpec | None, job: ObservedJob) -> str:
    kind = task.type if task else ""
    if kind == "DriftCheck" and job.failure == CHECK_FAILED:
        return "DriftDetected"
    if kind == "DriftCheck" and job.failure == NO_VERDICT:
        return "DriftInconclusive"  # too few live queries: neither drift nor a pass
    if kind == "Backup" and job.failure == CHECK_FAILED:
        return "BackupCorrupted"
    return FAILURE_REASONS.get(kind, "TaskFailed")


def plan_window(
    spec: MaintenanceWindowSpec,
    status: Mapping[str, Any] | None,
    models: Sequence[ModelTarget],
    jobs: Sequence[ObservedJob],
    now: datetime,
    *,
    meta: WindowMeta,
) -> WindowPlan:
    status = status or {}
    schedule = spec.schedule
    tasks = {t.name: t for t in spec.tasks}
    old_runs = {(r.get("task"), r.get("model")): r for r in status.get("lastRuns") or []}
    runs = dict(old_runs)
    events: list[Event] = []
    create: list[dict[str, Any]] = []
    delete: list[str] = []
    last_start = parse_time(status.get("lastScheduleTime"))
    due = due_window(schedule, now, last_start, starting_deadline_s=spec.starting_deadline_s)
    missed_total = int(status.get("missedWindows", 0) or 0)
    patch: dict[str, Any] = {}
    if due.latest is not None:
        patch["lastScheduleTime"] = format_time(due.latest)
    elif last_start is None:
        # A new window's baseline: starts before it existed are neither run nor missed.
        baseline = previous_start(schedule, now)
        if baseline is not None:
            patch["lastScheduleTime"] = format_time(baseline)
    if due.missed and not spec.suspend:
        missed_total += len(due.missed)
        patch["lastMissedWindow"] = format_time(due.missed[-1])
        events.append(
            Event(
                "Warning",
                "WindowMissed",
                f"{len(due.missed)} window start(s) missed (latest {format_time(due.missed[-1])}): the "
                "operator was not running within the starting deadline",
            )
        )
    existing = {j.name for j in jobs}
    retrain_requested: list[str] = []
    if due.window is not None and not spec.suspend:
        window = due.window
        ctx = JobContext(meta.name, meta.namespace, meta.uid, window.start, window.end, schedule.time_zone)
        events.append(
            Event(
                "Normal", "WindowOpened", f"window {format_time(window.start)} to {format_time(window.end)}"
            )
        )
        for task in spec.tasks:
            for model in models:
                name = job_name(meta.name, task.name, model.name, window.start)
                key = (task.name, model.name)
                if name in existing:
                    continue
                skipped = _skip_reason(task, model)
                if task.type == "Retrain" and skipped is None:
                    runs[key] = request_entry(task.name, model.name, window.start)
                    retrain_requested.append(model.name)
                    events.append(
                        Event(
                            "Normal",
                            "RetrainRequested",
                            f"{task.name} for {model.name}: a retrain asked of its retrain controller",
                            model.name,
                        )
                    )
                    continue
                running = [
                    j for j in jobs if (j.task, j.model) == key and j.state == RUNNING and j.name != name
                ]
                if skipped is None and running and spec.concurrency_policy == "Forbid":
                    skipped = f"previous Job {running[0].name} still running (concurrencyPolicy Forbid)"
                if skipped is None:
                    try:
                        job_manifest = build_job(task, model, ctx)
                    except ValueError as exc:
                        skipped = str(exc)
                if skipped is not None:
                    runs[key] = {
                        "task": task.name, "type": task.type, "model": model.name, "jobName": "",
                        "windowStart": format_time(window.start), "result": SKIPPED, "message": skipped,
                    }  # fmt: skip
                    events.append(
                        Event(
                            "Warning", "TaskSkipped", f"{task.name} for {model.name}: {skipped}", model.name
                        )
                    )
                    continue
                if running and spec.concurrency_policy == "Replace":
                    delete += [j.name for j in running]
                    events.append(
                        Event(
                            "Normal",
                            "JobReplaced",
                            f"{task.name} for {model.name}: deleting {', '.join(j.name for j in running)}",
                        )
                    )
                create.append(job_manifest)
                runs[key] = {
                    "task": task.name, "type": task.type, "model": model.name, "jobName": name,
                    "windowStart": format_time(window.start), "result": RUNNING,
                }  # fmt: skip
                events.append(
                    Event("Normal", "JobCreated", f"{task.type} Job {name} for {model.name}", model.name)
                )
    # Observed Jobs: the newest per task and model wins (a Skipped entry of a newer window too).
    for job in sorted(jobs, key=lambda j: (j.window_start, j.name)):
        if job.name in delete:
            continue
        key = (job.task, job.model)
        current = runs.get(key)
        if current and (parse_time(current.get("windowStart")) or job.window_start) > job.window_start:
            continue
        runs[key] = _run_entry(job, tasks.get(job.task), now)
    by_model = {m.name: m for m in models}
    for key, run in runs.items():
        target = by_model.get(str(run.get("model")))
        if run.get("type") == "Retrain" and target is not None:
            start = parse_time(run.get("windowStart"))
            progress = next((p for p in target.retrain_progress if p.window_start == start), None)
            runs[key] = follow_request(run, progress, schedule.duration, now)
    events += _transition_events(old_runs, runs)
    open_now = current_window(schedule, now)
    upcoming = next_window(schedule, now)
    gen = meta.generation
    old_conditions = status.get("conditions") or []
    failed = [r for r in runs.values() if r.get("result") == FAILED]
    overran = [r for r in runs.values() if r.get("overran")]
    done = [r for r in runs.values() if r.get("result") in (SUCCEEDED, FAILED)]
    missed = due.missed and not spec.suspend
    updates: list[tuple[str, ConditionStatus, str, str]] = [
        ("Ready", "True", "ScheduleValid", f"next window {format_time(upcoming.start)}"),
        (
            "TasksSucceeded",
            "False" if failed else "True" if done else "Unknown",
            failed[0]["reason"] if failed else "AllSucceeded" if done else "NoRunsYet",
            "; ".join(f"{r['task']}/{r['model']}: {r.get('message', '')}" for r in failed),
        ),
        (
            "TaskOverran",
            "True" if overran else "False",
            "RunningPastWindowEnd" if overran else "WithinWindow",
            ", ".join(r["jobName"] for r in overran),
        ),
        (
            "WindowMissed",
            "True" if missed else "False",
            "MissedStartingDeadline" if missed else "OnTime",
            f"{missed_total} window start(s) missed in total" if missed_total else "",
        ),
    ]
    conditions = [dict(c) for c in old_conditions]
    for type_, cond_status, reason, message in updates:
        conditions = set_condition(conditions, type_, cond_status, reason, message, now, gen)
    patch.update(
        {
            "active": open_now is not None and not spec.suspend,
            "nextWindow": format_time(upcoming.start),
            "currentWindowEnd": format_time(open_now.end) if open_now else None,
            "missedWindows": missed_total,
            "lastRuns": sorted(runs.values(), key=lambda r: (r.get("task", ""), r.get("model", "")))[
                :MAX_LAST_RUNS
            ],
            "conditions": conditions,
        }
    )
    if gen is not None:
        patch["observedGeneration"] = gen
    waits = [(upcoming.start - now).total_seconds()]
    if open_now is not None:
        waits.append((open_now.end - now).total_seconds())
    if any(r.get("result") in (RUNNING, REQUESTED) for r in runs.values()):
        waits.append(POLL_RUNNING_S)
    if create or delete:
        waits.append(1.0)
    return WindowPlan(patch, create, delete, events, max(0.0, min(waits)), patch["active"], retrain_requested)


def _skip_reason(task: TaskSpec, model: ModelTarget) -> str | None:
    if task.type == "Retrain":
        return retrain_unconfigured(model.name, model.has_retrain)
    if task.type == "DriftCheck" and not model.drift_endpoints:
        return "no ready serving pod to read a live query window from"
    return None


def _transition_events(
    old: Mapping[tuple[Any, Any], Mapping[str, Any]], new: Mapping[tuple[Any, Any], Mapping[str, Any]]
) -> list[Event]:
    out = []
    for key, run in new.items():
        before = old.get(key) or {}
        # A retrain's outcome is on the model already (the retrain controller's Events).
        model = None if run.get("type") == "Retrain" else run["model"]
        same_job = before.get("jobName") == run.get("jobName") and (
            run.get("jobName") or (model is None and before.get("windowStart") == run.get("windowStart"))
        )
        result = run.get("result")
        if result in (SUCCEEDED, FAILED) and not (same_job and before.get("result") == result):
            if result == SUCCEEDED:
                out.append(
                    Event(
                        "Normal",
                        "TaskSucceeded",
                        f"{run['task']} for {run['model']}: Job {run['jobName']} succeeded",
                        model,
                    )
                )
            else:
                out.append(
                    Event(
                        "Warning",
                        run.get("reason", "TaskFailed"),
                        f"{run['task']} for {run['model']}: {run.get('message', '')}",
                        model,
                    )
                )
        if run.get("overran") and not (same_job and before.get("overran")):
            out.append(
                Event(
                    "Warning",
                    "TaskOverran",
                    f"{run['task']} for {run['model']}: Job {run['jobName']} {run['message']}",
                    model,
                )
            )
    return out


def plan_invalid_window(
    status: Mapping[str, Any] | None, error: SpecError, now: datetime, *, generation: int | None = None
) -> WindowPlan:
    """Record a spec the core refused: condition Ready=False/InvalidSpec naming the field; no Jobs."""
    old = (status or {}).get("conditions") or []
    conditions = set_condition(old, "Ready", "False", "InvalidSpec", str(error), now, generation)
    patch: dict[str, Any] = {"conditions": conditions, "active": False, "nextWindow": None}
    if generation is not None:
        patch["observedGeneration"] = generation
    previous = get_condition(old, "Ready") or {}
    events = [] if previous.get("message") == str(error) else [Event("Warning", "InvalidSpec", str(error))]
    return WindowPlan(patch, events=events, requeue_after=None)
