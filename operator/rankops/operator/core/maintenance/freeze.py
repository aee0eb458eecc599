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
from typing import Any

from rankops.operator.core.maintenance.schedule import current_window, next_window
from rankops.operator.core.maintenance.spec import MaintenanceWindowSpec
from rankops.operator.core.timeutil import format_time

__all__ = ["Freeze", "rollout_freeze", "selects"]


@dataclass(frozen=True)
class Freeze:
    allowed: bool
    reason: str  # NoFreeze | InWindow | OutsideWindow
    message: str


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics; an empty selector selects everything."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if (
            (op == "In" and (not present or labels[key] not in values))
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


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
