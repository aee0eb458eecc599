"""An objective's state from its current value and sample count. Pure.

``assess(objective, value, samples=None, min_samples=1) -> ObjectiveState(state, severity)``:

- ``NoData`` when ``value`` is ``None``/NaN, or when ``samples`` is known and below
  ``min_samples`` (too little traffic to say anything: NoData is never Met);
- ``Breached`` when beyond ``breach`` (below it, or above it for ``lowerIsBetter``);
- ``AtRisk`` when between ``breach`` and ``target``;
- ``Met`` when at or better than ``target``.

``severity`` is the most severe matching tier, the one with the tightest threshold (lowest
``below``, highest ``above``): with the runbook's P0 < 0.50, P1 < 0.60, P2 < 0.70 a value of
0.55 is P1; ``None`` when no tier matches or there is no data.

``acts_at_once(severity)``: the runbook's urgency. P0 and P1 (and a breach of an objective
without tiers) act at once; P2 and lower tiers are recorded and notified only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ..spec import Objective, SeverityTier

__all__ = ["STATES", "ObjectiveState", "State", "acts_at_once", "assess", "objective_state", "worst"]

State = Literal["Met", "AtRisk", "Breached", "NoData"]
# Worst first: a summary over models or objectives reports the worst state present.
STATES: tuple[State, ...] = ("Breached", "NoData", "AtRisk", "Met")
_URGENT_TIERS = frozenset({"P0", "P1"})


@dataclass(frozen=True)
class ObjectiveState:
    state: State
    severity: str | None = None


def assess(
    objective: Objective, value: float | None, samples: float | None = None, min_samples: float = 1
) -> ObjectiveState:
    if value is None or math.isnan(value):
        return ObjectiveState("NoData")
    if samples is not None and samples < min_samples:
        return ObjectiveState("NoData")
    sign = 1.0 if objective.higher_is_better else -1.0
    if sign * (value - objective.breach) < 0:
        state: State = "Breached"
    elif sign * (value - objective.target) < 0:
        state = "AtRisk"
    else:
        state = "Met"
    return ObjectiveState(state, _severity(objective.severity_tiers, value))


def objective_state(objective: Objective, value: float | None) -> ObjectiveState:
    """:func:`assess` without a sample count (the canary analysis' view)."""
    return assess(objective, value)


def _severity(tiers: tuple[SeverityTier, ...], value: float) -> str | None:
    matching = [
        t
        for t in tiers
        if (t.below is not None and value < t.below) or (t.above is not None and value > t.above)
    ]
    if not matching:
        return None
    # the tightest threshold is the most severe: lowest `below`, highest `above`
    return min(matching, key=lambda t: t.below if t.below is not None else -(t.above or 0.0)).name


def acts_at_once(severity: str | None) -> bool:
    """Whether a breach at this severity acts now (P0, P1, no tier) or only records and notifies."""
    return severity is None or severity in _URGENT_TIERS


def worst(states: list[State] | tuple[State, ...]) -> State:
    """The worst of ``states`` (``NoData`` for none)."""
    return min(states, key=STATES.index) if states else "NoData"
