"""The MaintenanceWindow spec, parsed once with its defaults (pure).

``parse_window_spec(spec)`` raises ``ScheduleError`` naming the field (``spec.schedule``,
``spec.timeZone``, ``spec.tasks[2].backup.destination``...) for anything the CRD schema
cannot express: a cron expression that does not parse or never matches, an unknown IANA
time zone, a task missing the settings of its type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rankops.operator.core.maintenance.jobs import TASK_TYPES, TaskSpec
from rankops.operator.core.maintenance.schedule import Schedule, ScheduleError, parse_schedule
from rankops.operator.core.timeutil import parse_duration

__all__ = ["CONCURRENCY_POLICIES", "ROLLOUT_POLICIES", "MaintenanceWindowSpec", "parse_window_spec"]

CONCURRENCY_POLICIES = ("Forbid", "Allow", "Replace")
ROLLOUT_POLICIES = ("Always", "OnlyInWindow")


@dataclass(frozen=True)
class MaintenanceWindowSpec:
    schedule: Schedule
    tasks: tuple[TaskSpec, ...]
    selector: Mapping[str, Any]
    suspend: bool = False
    rollout_policy: str = "Always"
    concurrency_policy: str = "Forbid"
    starting_deadline_s: float | None = None


def _task(raw: Any, i: int) -> TaskSpec:
    path = f"spec.tasks[{i}]"
    if not isinstance(raw, Mapping):
        raise ScheduleError(path, "must be an object")
    name, kind = raw.get("name"), raw.get("type")
    if not isinstance(name, str) or not name:
        raise ScheduleError(f"{path}.name", "required")
    if kind not in TASK_TYPES:
        raise ScheduleError(f"{path}.type", f"must be one of {', '.join(TASK_TYPES)}, got {kind!r}")
    timeout = None
    if raw.get("timeout") is not None:
        try:
            timeout = parse_duration(raw["timeout"])
        except ValueError as exc:
            raise ScheduleError(f"{path}.timeout", str(exc)) from None
    backup = raw.get("backup") or {}
    restore = raw.get("restoreTest") or {}
    evaluate = raw.get("evaluate") or {}
    drift = raw.get("driftCheck") or {}
    retention = backup.get("retention") or {}
    destination = backup.get("destination") if kind == "Backup" else restore.get("source")
    if kind in ("Backup", "RestoreTest") and not destination:
        field = "backup.destination" if kind == "Backup" else "restoreTest.source"
        raise ScheduleError(f"{path}.{field}", f"a {kind} task needs {field}")
    if kind == "Evaluate" and not evaluate.get("data"):
        raise ScheduleError(f"{path}.evaluate.data", "an Evaluate task needs evaluate.data")
    return TaskSpec(
        name=name,
        type=kind,
        timeout_s=timeout,
        destination=destination,
        retention=(
            int(retention.get("daily", 7)),
            int(retention.get("weekly", 4)),
            int(retention.get("monthly", 12)),
        ),
        verify=bool(backup.get("verify", True)),
        keep=bool(backup.get("keep", False)),
        data=evaluate.get("data"),
        split=str(evaluate.get("split", "test")),
        psi_threshold=float(drift.get("psiThreshold", 0.25)),
        p_value=float(drift.get("pValue", 0.05)),
        min_samples=int(drift.get("minSamples", 200)),
    )


def parse_window_spec(spec: Mapping[str, Any]) -> MaintenanceWindowSpec:
    try:
        duration = parse_duration(spec.get("duration", ""))
    except ValueError as exc:
        raise ScheduleError("spec.duration", str(exc)) from None
    schedule = parse_schedule(str(spec.get("schedule", "")), str(spec.get("timeZone") or "UTC"), duration)
    tasks = tuple(_task(t, i) for i, t in enumerate(spec.get("tasks") or []))
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ScheduleError("spec.tasks", "task names must be unique")
    policy = spec.get("rolloutPolicy", "Always")
    if policy not in ROLLOUT_POLICIES:
        raise ScheduleError("spec.rolloutPolicy", f"must be Always or OnlyInWindow, got {policy!r}")
    concurrency = spec.get("concurrencyPolicy", "Forbid")
    if concurrency not in CONCURRENCY_POLICIES:
        raise ScheduleError(
            "spec.concurrencyPolicy", f"must be Forbid, Allow or Replace, got {concurrency!r}"
        )
    deadline = spec.get("startingDeadlineSeconds")
    if deadline is not None and (not isinstance(deadline, int | float) or deadline < 0):
        raise ScheduleError("spec.startingDeadlineSeconds", f"must be >= 0, got {deadline!r}")
    return MaintenanceWindowSpec(
        schedule=schedule,
        tasks=tasks,
        selector=dict(spec.get("selector") or {}),
        suspend=bool(spec.get("suspend", False)),
        rollout_policy=policy,
        concurrency_policy=concurrency,
        starting_deadline_s=None if deadline is None else float(deadline),
    )
