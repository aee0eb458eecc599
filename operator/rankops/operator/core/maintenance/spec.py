"""The MaintenanceWindow spec as the maintenance planner uses it (pure).

``parse_window_spec(spec)`` parses with ``core.spec.parse_maintenance_window_spec`` (defaults,
types, field paths) and adds what the planner needs: the schedule checked by croniter for a
start that ever comes (``0 0 31 2 *`` never does) and bundled with its zone and duration, and
each task flattened into the ``jobs.TaskSpec`` its Job is built from. Every problem raises
``SpecError`` (``ScheduleError`` for the schedule) whose ``path`` names the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rankops.operator.core.maintenance.jobs import TaskSpec
from rankops.operator.core.maintenance.schedule import Schedule, parse_schedule
from rankops.operator.core.spec import LabelSelector, SpecError, Task, parse_maintenance_window_spec

__all__ = ["MaintenanceWindowSpec", "parse_window_spec"]


@dataclass(frozen=True)
class MaintenanceWindowSpec:
    schedule: Schedule
    tasks: tuple[TaskSpec, ...]
    selector: LabelSelector = field(default_factory=LabelSelector)
    suspend: bool = False
    rollout_policy: str = "Always"
    concurrency_policy: str = "Forbid"
    starting_deadline_s: float | None = None


def _task(t: Task) -> TaskSpec:
    out = TaskSpec(name=t.name, type=t.type, timeout_s=t.timeout_s)
    if t.backup is not None:
        r = t.backup.retention
        out = TaskSpec(
            name=t.name,
            type=t.type,
            timeout_s=t.timeout_s,
            destination=t.backup.destination,
            retention=(r.daily, r.weekly, r.monthly),
            verify=t.backup.verify,
            keep=t.backup.keep,
        )
    if t.restore_test is not None:
        out = TaskSpec(name=t.name, type=t.type, timeout_s=t.timeout_s, destination=t.restore_test.source)
    if t.evaluate is not None:
        out = TaskSpec(
            name=t.name, type=t.type, timeout_s=t.timeout_s, data=t.evaluate.data, split=t.evaluate.split
        )
    if t.drift_check is not None:
        d = t.drift_check
        out = TaskSpec(
            name=t.name,
            type=t.type,
            timeout_s=t.timeout_s,
            psi_threshold=d.psi_threshold,
            p_value=d.p_value,
            min_samples=d.min_samples,
        )
    return out


def parse_window_spec(spec: Mapping[str, Any]) -> MaintenanceWindowSpec:
    parsed = parse_maintenance_window_spec(spec)
    for i, t in enumerate(parsed.tasks):
        if t.type == "Evaluate" and (t.evaluate is None or not t.evaluate.data):
            raise SpecError(
                f"spec.tasks[{i}].evaluate.data", "Required value: an Evaluate task needs evaluate.data"
            )
    return MaintenanceWindowSpec(
        schedule=parse_schedule(parsed.schedule, parsed.time_zone, parsed.duration_s),
        tasks=tuple(_task(t) for t in parsed.tasks),
        selector=parsed.selector,
        suspend=parsed.suspend,
        rollout_policy=parsed.rollout_policy,
        concurrency_policy=parsed.concurrency_policy,
        starting_deadline_s=parsed.starting_deadline_s,
    )
