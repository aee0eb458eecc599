"""When ``spec.retrain.triggers`` fire. Pure: the shell gathers the observations, nothing here reads a clock.

``fire(triggers, state, inputs, now) -> TriggerCheck``: the triggers that fire now, each with a
``key`` naming what fired it, so the same observation never fires twice:

- ``Schedule``: the latest cron time (wall clock of ``timeZone``, daylight saving as a
  MaintenanceWindow's schedule has it) after ``state.schedule_anchor`` and at or before ``now``;
  key: that time. Missed times (the operator was down) fire once, as the latest, like a CronJob
  with ``concurrencyPolicy: Forbid``. A schedule seen for the first time anchors at ``now``.
- ``Drift``: the newest DriftCheck Job of a MaintenanceWindow that found drift on this model
  (``DriftDetected`` in its ``status.lastRuns``); key: the Job's name.
- ``QualityDrop``: a retrain the QualitySLO's remediation ladder asked for on the served
  version (``status.quality.retrainRequest``, written only when ``relativeQualityDrop`` is set);
  key: the request's time.
- ``NewData``: feedback records logged since the parent version was created reached
  ``fraction`` of the base training queries; key: ``<parent>:<k>`` for the k-th multiple of the
  fraction, so a parent whose candidate failed its gate fires again at 2x, 3x the new data.
- ``MaintenanceWindow``: a window's ``Retrain`` task asked for a retrain when the window opened
  (``requests.requests_from_windows``); key: ``<window>@<window start>``, kept per window, so
  each window start fires once. It needs no entry in ``spec.retrain.triggers``: the task is the
  configuration.

A trigger fires only while no retrain runs (at most one per model); one that comes while a Job
runs waits: its key is not consumed, so it fires once the Job has finished.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..maintenance.schedule import Schedule, parse_schedule, previous_start, window_starts
from ..spec import RetrainTriggers
from ..timeutil import format_time
from .requests import MaintenanceRequest
from .state import Firing, RetrainState

__all__ = [
    "DriftVerdict",
    "NewData",
    "QualityRequest",
    "TriggerCheck",
    "TriggerInputs",
    "drift_from_windows",
    "fire",
    "quality_request_from_status",
    "schedule_of",
]


@dataclass(frozen=True)
class DriftVerdict:
    job: str
    window: str
    message: str = ""


@dataclass(frozen=True)
class QualityRequest:
    time: str
    version: str
    reason: str = ""


@dataclass(frozen=True)
class NewData:
    records: int  # feedback records logged since the parent was created
    base: int  # queries of the base dataset's train split


@dataclass(frozen=True)
class TriggerInputs:
    parent_version: str
    drift: DriftVerdict | None = None
    quality_request: QualityRequest | None = None
    new_data: NewData | None = None
    maintenance: tuple[MaintenanceRequest, ...] = ()  # windows' Retrain requests, newest per window


@dataclass(frozen=True)
class TriggerCheck:
    firings: tuple[Firing, ...]
    schedule_anchor: datetime | None
    next_scheduled: datetime | None  # when the schedule fires next (for the loop's requeue)


def drift_from_windows(windows: Sequence[Mapping[str, Any]], model: str) -> DriftVerdict | None:
    """The newest DriftCheck run that found drift on ``model`` (MaintenanceWindows' ``status.lastRuns``)."""
    found: list[tuple[str, DriftVerdict]] = []
    for mw in windows:
        for run in (mw.get("status") or {}).get("lastRuns") or []:
            if (
                run.get("model") == model
                and run.get("type") == "DriftCheck"
                and run.get("reason") == "DriftDetected"
                and run.get("jobName")
            ):
                at = str(run.get("completionTime") or run.get("startTime") or "")
                name = str((mw.get("metadata") or {}).get("name", ""))
                found.append((at, DriftVerdict(str(run["jobName"]), name, str(run.get("message", "")))))
    return max(found, key=lambda f: f[0])[1] if found else None


def quality_request_from_status(status: Mapping[str, Any]) -> QualityRequest | None:
    """The retrain the QualitySLO's remediation ladder asked for (``status.quality.retrainRequest``)."""
    request = (status.get("quality") or {}).get("retrainRequest")
    if not isinstance(request, Mapping) or not request.get("time"):
        return None
    return QualityRequest(
        str(request["time"]), str(request.get("version", "")), str(request.get("reason", ""))
    )


def schedule_of(triggers: RetrainTriggers) -> Schedule | None:
    """The schedule as a MaintenanceWindow's (duration is irrelevant: a trigger is an instant)."""
    if triggers.schedule is None:
        return None
    return parse_schedule(triggers.schedule, triggers.time_zone, 1.0)


def _new_data_multiple(new_data: NewData, fraction: float) -> int:
    if new_data.base <= 0:
        return 0
    return math.floor(new_data.records / new_data.base / fraction + 1e-9)


def fire(
    triggers: RetrainTriggers, state: RetrainState, inputs: TriggerInputs, now: datetime
) -> TriggerCheck:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    schedule = schedule_of(triggers)
    anchor = state.schedule_anchor if schedule is not None else None
    firings: list[Firing] = []
    if schedule is not None:
        if anchor is None:
            anchor = now
        else:
            due = previous_start(schedule, now)
            if due is not None and due > anchor and not state.running:
                firings.append(
                    Firing(
                        "Schedule",
                        format_time(due),
                        f"schedule {triggers.schedule!r} ({triggers.time_zone}) "
                        f"was due at {format_time(due)}",
                        now,
                    )
                )
                anchor = due
    next_due = next(window_starts(schedule, now)) if schedule is not None else None
    if state.running:
        return TriggerCheck((), anchor, next_due)

    drift = inputs.drift
    if triggers.drift is not None and drift is not None and drift.job != state.last_key("Drift"):
        detail = f": {drift.message}" if drift.message else ""
        firings.append(
            Firing(
                "Drift",
                drift.job,
                f"DriftCheck Job {drift.job} (MaintenanceWindow {drift.window}) found drift{detail}",
                now,
            )
        )
    request = inputs.quality_request
    if (
        triggers.relative_quality_drop is not None
        and request is not None
        and request.version == inputs.parent_version
        and request.time != state.last_key("QualityDrop")
    ):
        detail = f": {request.reason}" if request.reason else ""
        firings.append(
            Firing(
                "QualityDrop",
                request.time,
                f"the QualitySLO asked for a retrain of {request.version} at {request.time}{detail}",
                now,
            )
        )
    if triggers.new_data is not None and inputs.new_data is not None:
        multiple = _new_data_multiple(inputs.new_data, triggers.new_data.fraction)
        key = f"{inputs.parent_version}:{multiple}"
        if multiple >= 1 and key != state.last_key("NewData"):
            nd = inputs.new_data
            firings.append(
                Firing(
                    "NewData",
                    key,
                    f"{nd.records} feedback records since {inputs.parent_version} "
                    f"= {nd.records / nd.base:.0%} of the {nd.base} base training queries "
                    f"(threshold {triggers.new_data.fraction:.0%})",
                    now,
                )
            )
    for req in inputs.maintenance:
        last = state.last_window_firing(req.window)
        last_start = last.window_start if last is not None else None
        if last_start is None or req.start > last_start:
            firings.append(
                Firing(
                    "MaintenanceWindow",
                    req.key,
                    f"MaintenanceWindow {req.window} (task {req.task}) asked for a retrain in its "
                    f"window of {format_time(req.start)}",
                    now,
                )
            )
    return TriggerCheck(tuple(firings), anchor, next_due)
