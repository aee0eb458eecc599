"""What a window's chores say about one RankingModel: its ``MaintenanceSucceeded`` condition. Pure.

``model_condition(runs, model) -> (status, reason, message) | None`` from a MaintenanceWindow's
``status.lastRuns`` (the newest Job per task and model): ``False`` with the failed task's reason
(``BackupFailed``, ``BackupCorrupted``, ``RestoreTestFailed``, ``DriftDetected``, ...) while any
task's newest run for the model failed, ``True`` (``ChoresSucceeded``) once every finished run
succeeded, ``None`` while the model has no finished run (nothing to say yet).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

__all__ = ["CONDITION", "model_condition"]

CONDITION = "MaintenanceSucceeded"


def model_condition(
    runs: Sequence[Mapping[str, Any]], model: str
) -> tuple[Literal["True", "False"], str, str] | None:
    finished = [r for r in runs if r.get("model") == model and r.get("result") in ("Succeeded", "Failed")]
    if not finished:
        return None
    failed = sorted(
        (r for r in finished if r.get("result") == "Failed"), key=lambda r: str(r.get("task", ""))
    )
    if failed:
        first = failed[0]
        more = f" (and {len(failed) - 1} more failed tasks)" if len(failed) > 1 else ""
        message = f"{first.get('task')}: {first.get('message') or 'failed'}{more}"
        return "False", str(first.get("reason") or "TaskFailed"), message
    tasks = ", ".join(sorted(str(r.get("task")) for r in finished))
    return "True", "ChoresSucceeded", f"last runs succeeded: {tasks}"
