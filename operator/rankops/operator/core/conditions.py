"""Status conditions by the Kubernetes conventions (``metav1.Condition``). Pure.

``set_condition(conditions, type_, status, reason, message, now, observed_generation)``
returns a new list: the condition of that type replaced (or appended), its
``lastTransitionTime`` kept unless ``status`` flips (True/False/Unknown), ``reason`` in
CamelCase, ``observedGeneration`` when known. Order of existing conditions is preserved.
``get_condition(conditions, type_)`` finds one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from .timeutil import format_time

__all__ = ["ConditionStatus", "get_condition", "set_condition"]

ConditionStatus = Literal["True", "False", "Unknown"]
_REASON_RE = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")


def get_condition(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    for condition in conditions or ():
        if condition.get("type") == type_:
            return condition
    return None


def set_condition(
    conditions: Sequence[Mapping[str, Any]] | None,
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
    observed_generation: int | None = None,
) -> list[dict[str, Any]]:
    """A copy of ``conditions`` with ``type_`` set; ``lastTransitionTime`` changes only on a flip."""
    if status not in ("True", "False", "Unknown"):
        raise ValueError(f"condition status must be True, False or Unknown, not {status!r}")
    if not _REASON_RE.match(reason):
        raise ValueError(f"condition reason must be CamelCase, not {reason!r}")
    previous = get_condition(conditions, type_)
    if previous is not None and previous.get("status") == status and previous.get("lastTransitionTime"):
        transition = str(previous["lastTransitionTime"])
    else:
        transition = format_time(now)
    condition: dict[str, Any] = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
    if observed_generation is not None:
        condition["observedGeneration"] = observed_generation
    out = [dict(c) for c in conditions or ()]
    for i, existing in enumerate(out):
        if existing.get("type") == type_:
            out[i] = condition
            return out
    out.append(condition)
    return out
