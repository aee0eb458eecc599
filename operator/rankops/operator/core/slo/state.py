"""QualitySLO status per model: state and severity of an objective's current value. Pure.

``objective_state(objective, value) -> ObjectiveState(state, severity)``:

- ``NoData`` when ``value`` is ``None``/NaN;
- ``Breached`` when beyond ``breach`` (below it, or above it for ``lowerIsBetter``);
- ``AtRisk`` when between ``breach`` and ``target``;
- ``Met`` when at or better than ``target``.

``severity`` is the most severe matching tier, the one with the tightest threshold (lowest
``below``, highest ``above``): with the runbook's P0 < 0.50, P1 < 0.60, P2 < 0.70 a value of
0.55 is P1; ``None`` when no tier matches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ..spec import Objective

__all__ = ["ObjectiveState", "objective_state"]

State = Literal["Met", "AtRisk", "Breached", "NoData"]


@dataclass(frozen=True)
class ObjectiveState:
    state: State
    severity: str | None = None


def objective_state(objective: Objective, value: float | None) -> ObjectiveState:
    if value is None or math.isnan(value):
        return ObjectiveState("NoData")
    sign = 1.0 if objective.higher_is_better else -1.0
    if sign * (value - objective.breach) < 0:
        state: State = "Breached"
    elif sign * (value - objective.target) < 0:
        state = "AtRisk"
    else:
        state = "Met"
    severity = None
    matching = [
        t
        for t in objective.severity_tiers
        if (t.below is not None and value < t.below) or (t.above is not None and value > t.above)
    ]
    if matching:
        # the tightest threshold is the most severe: lowest `below`, highest `above`
        severity = min(matching, key=lambda t: t.below if t.below is not None else -(t.above or 0.0)).name
    return ObjectiveState(state, severity)
