"""A window's ``Retrain`` task: a request to the model's retrain controller, not a Job. Pure.

A window starts no retrain Job of its own: the RankingModel's retrain controller runs every
retrain (one at a time per model, its gate, ``status.retrain.candidate``, the promotion policy),
so a window that opens records, per selected model, a ``lastRuns`` entry with result
``Requested`` and the window start (``request_entry``). The retrain controller fires it as its
``MaintenanceWindow`` trigger. The window's controller then reads the model's
``status.retrain`` into a ``RetrainProgress`` per request (``core.retrain.requests``) and
``follow_request`` turns the entry into what became of it: still ``Requested`` (another retrain
holds the model: the request fires when that one has finished, even after the window closed),
``Running`` with the Job's name, then ``Succeeded`` (``CandidateReady`` / ``CandidateCanary``) or
``Failed`` (``CandidateRejected``, ``RetrainFailed``, ``RetrainNotConfigured``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rankops.operator.core.timeutil import format_time, parse_time

__all__ = ["REQUESTED", "RetrainProgress", "follow_request", "request_entry", "retrain_unconfigured"]

REQUESTED = "Requested"
_FOLLOWED = (REQUESTED, "Running")  # a finished entry keeps its outcome


@dataclass(frozen=True)
class RetrainProgress:
    """What a RankingModel's ``status.retrain`` says about one window's request."""

    window_start: datetime
    result: str  # Requested | Running | Succeeded | Failed
    job: str = ""
    reason: str | None = None
    message: str = ""
    start_time: datetime | None = None
    completion_time: datetime | None = None


def retrain_unconfigured(model: str, has_retrain: bool) -> str | None:
    """Why a request for ``model`` would never run (no ``spec.retrain`` at all), else ``None``."""
    if has_retrain:
        return None
    return (
        f"RankingModel {model} has no spec.retrain (trainer data, outputUri, feedbackLog): "
        "nothing can retrain it"
    )


def request_entry(task: str, model: str, window_start: datetime) -> dict[str, Any]:
    return {
        "task": task,
        "type": "Retrain",
        "model": model,
        "jobName": "",
        "windowStart": format_time(window_start),
        "result": REQUESTED,
        "message": "retrain requested from the RankingModel's retrain controller",
    }


def follow_request(
    entry: Mapping[str, Any],
    progress: RetrainProgress | None,
    duration: timedelta,
    now: datetime,
) -> dict[str, Any]:
    """``entry`` as ``progress`` says it went (unchanged when finished or nothing is known)."""
    out = dict(entry)
    start = parse_time(entry.get("windowStart"))
    if entry.get("result") not in _FOLLOWED or start is None or progress is None:
        return out
    if progress.window_start != start:
        return out
    end = start + duration
    for key in ("reason", "startTime", "completionTime", "overran"):
        out.pop(key, None)
    out.update({"result": progress.result, "jobName": progress.job, "message": progress.message})
    if progress.reason:
        out["reason"] = progress.reason
    if progress.start_time:
        out["startTime"] = format_time(progress.start_time)
    if progress.completion_time:
        out["completionTime"] = format_time(progress.completion_time)
    if progress.result == REQUESTED and now >= end:
        out["message"] = (
            f"the window closed at {format_time(end)} before the retrain could start; "
            f"still requested: {progress.message}"
        )
    elif progress.result == "Running" and now >= end:
        out["overran"] = True
        out["message"] = f"{progress.message}; still running after the window closed at {format_time(end)}"
    return out
