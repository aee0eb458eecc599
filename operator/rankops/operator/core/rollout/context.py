"""The scratch of one planning pass: the inputs, the state as it evolves, what the pass collects."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ..events import Event, EventType
from ..spec import RankingModelSpec
from .state import HISTORY_LIMIT, HistoryEntry, Observed, RolloutState

__all__ = ["PlanningPass"]


@dataclass
class PlanningPass:
    """One pass of the planner. ``state`` is replaced (never mutated) by each ``set``."""

    spec: RankingModelSpec
    state: RolloutState
    now: datetime
    observed: Observed
    events: list[Event] = field(default_factory=list)
    wakeups: list[datetime] = field(default_factory=list)
    look_pending: bool = False  # a look is due and no verdict was given: plan again at once
    frozen: bool = False  # a new rollout (or a retry) waits for a maintenance window
    used_tokens: set[str] = field(default_factory=set)

    def set(self, **changes: Any) -> None:
        self.state = replace(self.state, **changes)

    def event(self, type_: EventType, reason: str, message: str) -> None:
        self.events.append(Event(type_, reason, message))

    def wake_at(self, when: datetime) -> None:
        self.wakeups.append(when)

    def add_history(self, version: str, uri: str | None, outcome: str, reason: str) -> None:
        entry = HistoryEntry(self.state.canary_revision, version, outcome, reason, self.now, uri or None)
        self.set(history=(*self.state.history, entry)[-HISTORY_LIMIT:])

    @property
    def gateway(self) -> bool:
        return self.spec.rollout.traffic_routing.kind == "gatewayAPI"
