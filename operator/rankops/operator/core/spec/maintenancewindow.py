"""The MaintenanceWindow spec: when chores may run (schedule, time zone, duration), which, for whom."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from .fields import (
    SpecError,
    _bool,
    _choice,
    _duration,
    _float,
    _int,
    _list,
    _mapping,
    _opt_str,
    _str,
    _strings,
    _template,
    default,
)

__all__ = [
    "TASK_TYPES",
    "BackupRetention",
    "BackupTask",
    "DriftCheckTask",
    "EvaluateTask",
    "LabelSelector",
    "MaintenanceWindowSpec",
    "RestoreTestTask",
    "RetrainTask",
    "SelectorRequirement",
    "Task",
    "TaskType",
    "parse_maintenance_window_spec",
]


@dataclass(frozen=True)
class SelectorRequirement:
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelSelector:
    """A metav1.LabelSelector; the empty selector selects everything."""

    match_labels: Mapping[str, str] = field(default_factory=dict)
    match_expressions: tuple[SelectorRequirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        for req in self.match_expressions:
            present = req.key in labels
            if req.operator == "In" and not (present and labels[req.key] in req.values):
                return False
            if req.operator == "NotIn" and present and labels[req.key] in req.values:
                return False
            if req.operator == "Exists" and not present:
                return False
            if req.operator == "DoesNotExist" and present:
                return False
        return True


@dataclass(frozen=True)
class BackupRetention:
    """Grandfather-father-son: the newest backup per day, ISO week and month, this many of each."""

    daily: int = 7
    weekly: int = 4
    monthly: int = 12


@dataclass(frozen=True)
class BackupTask:
    destination: str
    retention: BackupRetention = BackupRetention()
    verify: bool = True
    keep: bool = False  # every backup kept forever (the plan's critical models)


@dataclass(frozen=True)
class RestoreTestTask:
    source: str  # the backup destination to restore from


@dataclass(frozen=True)
class DriftCheckTask:
    """A scheduled drift check: Holm-corrected ``p_value`` over the features, PSI, fewest queries."""

    psi_threshold: float = 0.25
    p_value: float = 0.05
    min_samples: int = 200


@dataclass(frozen=True)
class RetrainTask:
    template: Mapping[str, Any] | None = None
    data: str | None = None


@dataclass(frozen=True)
class EvaluateTask:
    data: str | None = None
    split: Literal["dev", "test"] = "test"


TaskType = Literal["Backup", "RestoreTest", "Retrain", "Evaluate", "DriftCheck"]
TASK_TYPES: tuple[TaskType, ...] = ("Backup", "RestoreTest", "Retrain", "Evaluate", "DriftCheck")


@dataclass(frozen=True)
class Task:
    name: str
    type: TaskType
    timeout_s: float | None = None
    backup: BackupTask | None = None
    retrain: RetrainTask | None = None
    evaluate: EvaluateTask | None = None
    drift_check: DriftCheckTask | None = None
    restore_test: RestoreTestTask | None = None


@dataclass(frozen=True)
class MaintenanceWindowSpec:
    schedule: str
    duration_s: float
    time_zone: str = "UTC"
    suspend: bool = False
    selector: LabelSelector = LabelSelector()
    rollout_policy: Literal["Always", "OnlyInWindow"] = "Always"
    concurrency_policy: Literal["Forbid", "Allow", "Replace"] = "Forbid"
    tasks: tuple[Task, ...] = ()
    starting_deadline_s: float | None = None  # CronJob's startingDeadlineSeconds


def parse_maintenance_window_spec(spec: Mapping[str, Any]) -> MaintenanceWindowSpec:
    """Parse ``.spec`` of a MaintenanceWindow, applying defaults; raises :class:`SpecError`."""
    spec = _mapping(spec, "spec", required=True)
    path = "spec"
    schedule = _str(spec, "schedule", path)
    if not croniter.is_valid(schedule):
        raise SpecError(f"{path}.schedule", f"not a cron schedule: {schedule!r}")
    time_zone = _str(spec, "timeZone", path, default(MaintenanceWindowSpec, "time_zone"))
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SpecError(f"{path}.timeZone", f"unknown time zone {time_zone!r}") from None
    duration = _duration(spec, "duration", path, None)
    if duration is None:
        raise SpecError(f"{path}.duration", "Required value")
    if duration <= 0:
        raise SpecError(f"{path}.duration", "must be positive")
    tasks: list[Task] = []
    seen: set[str] = set()
    for i, raw in enumerate(_list(spec.get("tasks"), f"{path}.tasks")):
        task = _parse_task(_mapping(raw, f"{path}.tasks[{i}]"), f"{path}.tasks[{i}]")
        if task.name in seen:
            raise SpecError(f"{path}.tasks[{i}].name", f"duplicate task name {task.name!r}")
        seen.add(task.name)
        tasks.append(task)
    rollout_policy = _choice(
        spec,
        "rolloutPolicy",
        path,
        ("Always", "OnlyInWindow"),
        default(MaintenanceWindowSpec, "rollout_policy"),
    )
    concurrency = _choice(
        spec,
        "concurrencyPolicy",
        path,
        ("Forbid", "Allow", "Replace"),
        default(MaintenanceWindowSpec, "concurrency_policy"),
    )
    return MaintenanceWindowSpec(
        schedule=schedule,
        duration_s=duration,
        time_zone=time_zone,
        suspend=_bool(spec, "suspend", path, default(MaintenanceWindowSpec, "suspend")),
        selector=_parse_selector(_mapping(spec.get("selector"), f"{path}.selector"), f"{path}.selector"),
        rollout_policy=cast(Literal["Always", "OnlyInWindow"], rollout_policy),
        concurrency_policy=cast(Literal["Forbid", "Allow", "Replace"], concurrency),
        tasks=tuple(tasks),
        starting_deadline_s=_starting_deadline(spec, path),
    )


def _starting_deadline(spec: Mapping[str, Any], path: str) -> float | None:
    value = spec.get("startingDeadlineSeconds")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise SpecError(f"{path}.startingDeadlineSeconds", f"must be a number >= 0, not {value!r}")
    return float(value)


def _parse_selector(d: Mapping[str, Any], path: str) -> LabelSelector:
    labels = _mapping(d.get("matchLabels"), f"{path}.matchLabels")
    for key, value in labels.items():
        if not isinstance(value, str):
            raise SpecError(f"{path}.matchLabels.{key}", f"must be a string, not {value!r}")
    requirements: list[SelectorRequirement] = []
    for i, raw in enumerate(_list(d.get("matchExpressions"), f"{path}.matchExpressions")):
        rp = f"{path}.matchExpressions[{i}]"
        r = _mapping(raw, rp)
        operator = _choice(r, "operator", rp, ("In", "NotIn", "Exists", "DoesNotExist"))
        values = _strings(r.get("values"), f"{rp}.values")
        if (operator in ("In", "NotIn")) != bool(values):
            raise SpecError(f"{rp}.values", "In and NotIn need values; Exists and DoesNotExist take none")
        requirements.append(
            SelectorRequirement(
                key=_str(r, "key", rp),
                operator=cast(Literal["In", "NotIn", "Exists", "DoesNotExist"], operator),
                values=values,
            )
        )
    return LabelSelector(match_labels=dict(labels), match_expressions=tuple(requirements))


def _parse_task(t: Mapping[str, Any], path: str) -> Task:
    task_type = cast(TaskType, _choice(t, "type", path, TASK_TYPES))
    backup = retrain = evaluate = drift = None
    if t.get("backup") is not None:
        bp = f"{path}.backup"
        b = _mapping(t["backup"], bp)
        r = _mapping(b.get("retention"), f"{bp}.retention")
        rp = f"{bp}.retention"
        backup = BackupTask(
            destination=_str(b, "destination", bp),
            retention=BackupRetention(
                daily=_int(r, "daily", rp, default(BackupRetention, "daily"), minimum=0),
                weekly=_int(r, "weekly", rp, default(BackupRetention, "weekly"), minimum=0),
                monthly=_int(r, "monthly", rp, default(BackupRetention, "monthly"), minimum=0),
            ),
            verify=_bool(b, "verify", bp, default(BackupTask, "verify")),
            keep=_bool(b, "keep", bp, default(BackupTask, "keep")),
        )
    elif task_type == "Backup":
        raise SpecError(f"{path}.backup", "Required value: a Backup task needs backup.destination")
    if t.get("retrain") is not None:
        rp = f"{path}.retrain"
        r = _mapping(t["retrain"], rp)
        retrain = RetrainTask(template=_template(r, "template", rp), data=_opt_str(r, "data", rp))
    if t.get("evaluate") is not None:
        ep = f"{path}.evaluate"
        e = _mapping(t["evaluate"], ep)
        split = _choice(e, "split", ep, ("dev", "test"), default(EvaluateTask, "split"))
        evaluate = EvaluateTask(data=_opt_str(e, "data", ep), split=cast(Literal["dev", "test"], split))
    if t.get("driftCheck") is not None:
        dp = f"{path}.driftCheck"
        d = _mapping(t["driftCheck"], dp)
        drift = DriftCheckTask(
            psi_threshold=_float(d, "psiThreshold", dp, default(DriftCheckTask, "psi_threshold")),
            p_value=_float(d, "pValue", dp, default(DriftCheckTask, "p_value")),
            min_samples=_int(d, "minSamples", dp, default(DriftCheckTask, "min_samples"), minimum=1),
        )
    elif task_type == "DriftCheck":
        drift = DriftCheckTask()
    restore = None
    if t.get("restoreTest") is not None:
        rtp = f"{path}.restoreTest"
        restore = RestoreTestTask(source=_str(_mapping(t["restoreTest"], rtp), "source", rtp))
    elif task_type == "RestoreTest":
        raise SpecError(f"{path}.restoreTest", "Required value: a RestoreTest task needs restoreTest.source")
    return Task(
        name=_str(t, "name", path),
        type=task_type,
        timeout_s=_duration(t, "timeout", path, None),
        backup=backup,
        retrain=retrain,
        evaluate=evaluate,
        drift_check=drift,
        restore_test=restore,
    )
