"""Change freeze: may a RankingModel start a rollout now? Pure.

A model is frozen when at least one valid, unsuspended MaintenanceWindow with
``rolloutPolicy: OnlyInWindow`` selects it and none of those windows is open. A rollout
already in progress continues and a rollback is never frozen: the planner only holds back the
start of a new rollout (``plan_rollout(..., rollout_allowed=False)``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from rankops.operator.core.maintenance.schedule import current_window, next_window
from rankops.operator.core.maintenance.spec import MaintenanceWindowSpec
from rankops.operator.core.spec import LabelSelector
from rankops.operator.core.timeutil import format_time

__all__ = ["Freeze", "rollout_freeze", "selects"]


@dataclass(frozen=True)
class Freeze:
    allowed: bool
    reason: str  # NoFreeze | InWindow | OutsideWindow
    message: str


def selects(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics; an empty selector selects everything."""
    return selector.matches(labels)


def rollout_freeze(
    windows: Sequence[tuple[str, MaintenanceWindowSpec]], labels: Mapping[str, str], now: datetime
) -> Freeze:
    """``windows``: (name, parsed spec) of the MaintenanceWindows in the model's namespace."""
    gating = [
        (name, w)
        for name, w in windows
        if w.rollout_policy == "OnlyInWindow" and not w.suspend and selects(w.selector, labels)
    ]
    if not gating:
        return Freeze(
            True, "NoFreeze", "no MaintenanceWindow with rolloutPolicy OnlyInWindow selects this model"
        )
    for name, w in gating:
        open_now = current_window(w.schedule, now)
        if open_now is not None:
            return Freeze(
                True, "InWindow", f"MaintenanceWindow {name} is open until {format_time(open_now.end)}"
            )
    soonest = min(((next_window(w.schedule, now).start, name) for name, w in gating))
    return Freeze(
        False,
        "OutsideWindow",
        f"change freeze: rollouts start only in MaintenanceWindow {', '.join(n for n, _ in gating)}; "
        f"next opens {format_time(soonest[0])} ({soonest[1]})",
    )
