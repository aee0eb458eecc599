"""The Jobs of a window as the planner sees them, read from what the API server returns. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rankops.operator.core.maintenance.jobs import (
    ANNOTATION_WINDOW_END,
    ANNOTATION_WINDOW_START,
    LABEL_MODEL,
    LABEL_TASK,
)
from rankops.operator.core.timeutil import parse_time

__all__ = [
    "BAD_INPUT",
    "CHECK_FAILED",
    "FAILED",
    "NO_VERDICT",
    "RUNNING",
    "SKIPPED",
    "SUCCEEDED",
    "ObservedJob",
    "job_state",
    "observe_job",
]

RUNNING, SUCCEEDED, FAILED, SKIPPED = "Running", "Succeeded", "Failed", "Skipped"
# exit 1 / 2 / 3 of a chore command
CHECK_FAILED, BAD_INPUT, NO_VERDICT = "CheckFailed", "BadInput", "NoVerdict"


@dataclass(frozen=True)
class ObservedJob:
    """A Job of this window as the shell read it from the API."""

    name: str
    task: str
    model: str
    window_start: datetime
    window_end: datetime
    state: str  # Running | Succeeded | Failed
    start_time: datetime | None = None
    completion_time: datetime | None = None
    failure: str | None = None  # CheckFailed / BadInput / NoVerdict (exit 1/2/3) or the Job's reason
    message: str = ""


def job_state(job: Mapping[str, Any]) -> tuple[str, str | None, str]:
    """(Running | Succeeded | Failed, the failure: CheckFailed / BadInput / the Job's reason, message)."""
    status = job.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    if "Complete" in conditions:
        return SUCCEEDED, None, ""
    if "Failed" not in conditions:
        return RUNNING, None, ""
    cond = conditions["Failed"]
    message = str(cond.get("message") or cond.get("reason") or "")
    if "rule at index 0" in message:
        return FAILED, CHECK_FAILED, message
    if "rule at index 1" in message:
        return FAILED, BAD_INPUT, message
    if "rule at index 2" in message:
        return FAILED, NO_VERDICT, message
    return FAILED, str(cond.get("reason") or "Failed"), message


def observe_job(job: Mapping[str, Any]) -> ObservedJob | None:
    """A Job of a window as the planner sees it; ``None`` for a Job that is not one of ours."""
    meta = job.get("metadata") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    start = parse_time(annotations.get(ANNOTATION_WINDOW_START))
    end = parse_time(annotations.get(ANNOTATION_WINDOW_END))
    task, model = labels.get(LABEL_TASK), labels.get(LABEL_MODEL)
    if start is None or end is None or not task or not model:
        return None
    status = job.get("status") or {}
    state, failure, message = job_state(job)
    return ObservedJob(
        name=str(meta.get("name", "")),
        task=str(task),
        model=str(model),
        window_start=start,
        window_end=end,
        state=state,
        start_time=parse_time(status.get("startTime")),
        completion_time=parse_time(status.get("completionTime")),
        failure=failure,
        message=message,
    )
