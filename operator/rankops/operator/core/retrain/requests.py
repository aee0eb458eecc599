"""MaintenanceWindow ``Retrain`` tasks as a retrain trigger, both ways. Pure.

- ``requests_from_windows(windows, model)``: the requests MaintenanceWindows recorded for
  ``model`` (``status.lastRuns`` entries of type ``Retrain`` with result ``Requested``, as the
  window planner writes them when a window opens), the newest per window, with the task's
  overrides from the window's spec (``retrain.data``, ``retrain.template``, ``timeout``). A
  window whose spec no longer parses asks for nothing until it is fixed.
- ``with_overrides(spec, request)``: the spec the retrain Job is built from: the task's data
  and template in place of ``spec.retrain.trainer``'s, its timeout as ``activeDeadlineSeconds``.
- ``request_progress(state, window, start)``: what ``status.retrain`` says about one request,
  for the window's ``lastRuns`` entry (``maintenance.retrain_task.follow_request``).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..maintenance.retrain_task import REQUESTED, RetrainProgress
from ..spec import RankingModelSpec, SpecError, parse_maintenance_window_spec
from ..timeutil import format_time, parse_time
from .state import WINDOW_KEY_SEPARATOR, RetrainState

__all__ = ["MaintenanceRequest", "request_key", "request_progress", "requests_from_windows", "with_overrides"]


@dataclass(frozen=True)
class MaintenanceRequest:
    window: str
    task: str
    start: datetime
    data: str | None = None
    template: Mapping[str, Any] | None = None
    timeout_s: float | None = None

    @property
    def key(self) -> str:
        return request_key(self.window, self.start)


def request_key(window: str, start: datetime) -> str:
    return f"{window}{WINDOW_KEY_SEPARATOR}{format_time(start)}"


def requests_from_windows(windows: Sequence[Mapping[str, Any]], model: str) -> tuple[MaintenanceRequest, ...]:
    found: dict[str, MaintenanceRequest] = {}
    for mw in windows:
        name = str((mw.get("metadata") or {}).get("name", ""))
        pending = [
            r
            for r in (mw.get("status") or {}).get("lastRuns") or []
            if r.get("model") == model and r.get("type") == "Retrain" and r.get("result") == REQUESTED
        ]
        if not name or not pending:
            continue
        try:
            tasks = {t.name: t for t in parse_maintenance_window_spec(mw.get("spec") or {}).tasks}
        except SpecError:
            continue
        for run in sorted(pending, key=lambda r: str(r.get("task", ""))):
            start, task = parse_time(run.get("windowStart")), tasks.get(str(run.get("task")))
            if start is None or task is None or task.type != "Retrain":
                continue
            if name in found and found[name].start >= start:
                continue  # one retrain serves every Retrain task of a window start
            over = task.retrain
            found[name] = MaintenanceRequest(
                window=name,
                task=task.name,
                start=start,
                data=over.data if over is not None else None,
                template=over.template if over is not None else None,
                timeout_s=task.timeout_s,
            )
    return tuple(found[n] for n in sorted(found))


def with_overrides(spec: RankingModelSpec, request: MaintenanceRequest) -> RankingModelSpec:
    if spec.retrain is None:
        return spec
    trainer = spec.retrain.trainer
    template = copy.deepcopy(
        dict(request.template if request.template is not None else trainer.template or {})
    )
    if request.timeout_s is not None:
        template["spec"] = {
            **dict(template.get("spec") or {}),
            "activeDeadlineSeconds": max(1, int(request.timeout_s)),
        }
    trainer = dataclasses.replace(trainer, data=request.data or trainer.data, template=template or None)
    return dataclasses.replace(spec, retrain=dataclasses.replace(spec.retrain, trainer=trainer))


_OUTCOMES = {  # status.retrain.history outcome -> (window result, reason)
    "Passed": ("Succeeded", "CandidateReady"),
    "GateFailed": ("Failed", "CandidateRejected"),
    "Failed": ("Failed", "RetrainFailed"),
}


def request_progress(state: RetrainState, window: str, start: datetime) -> RetrainProgress | None:
    """``None`` when ``status.retrain`` no longer tells (a newer start fired, the history moved on)."""
    fired = state.last_window_firing(window)
    fired_start = fired.window_start if fired is not None else None
    if fired is None or fired_start is None or fired_start < start:
        run = state.run
        if state.running and run is not None:
            why = (
                f"waiting: retrain Job {run.job} ({', '.join(run.triggers)}) runs; "
                "this request fires when it has finished"
            )
        else:
            why = "waiting for the RankingModel's retrain controller"
        return RetrainProgress(start, REQUESTED, message=why)
    if fired_start > start:
        return None
    if not fired.job:
        return RetrainProgress(start, "Failed", reason="RetrainNotConfigured", message=fired.message)
    run = state.run if state.run is not None and state.run.job == fired.job else None
    if run is not None and run.state == "Running":
        return RetrainProgress(
            start,
            "Running",
            job=run.job,
            message=f"retrain Job {run.job} trains {run.candidate_version} from {run.parent_version}",
            start_time=run.start_time,
        )
    outcome = next(
        (
            h.get("outcome")
            for h in reversed(state.history)
            if h.get("job") == fired.job and h.get("outcome") != "Started"
        ),
        None,
    )
    if outcome not in _OUTCOMES:
        return None
    result, reason = _OUTCOMES[str(outcome)]
    candidate = state.candidate
    if (
        reason == "CandidateReady"
        and candidate is not None
        and candidate.action == "Canary"
        and (run is None or candidate.version == run.candidate_version)
    ):
        reason = "CandidateCanary"
    message = run.message if run is not None and run.message else f"retrain Job {fired.job}: {outcome}"
    return RetrainProgress(
        start,
        result,
        job=fired.job,
        reason=reason,
        message=message,
        start_time=run.start_time if run is not None else None,
        completion_time=run.completion_time if run is not None else None,
    )
