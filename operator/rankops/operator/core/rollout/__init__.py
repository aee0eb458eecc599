"""The RankingModel planner: stored state, analysis looks, transitions, conditions.

One pass per reconcile: ``analysis_due(spec, state, now)`` says whether the shell must gather
metrics and judge first; ``plan_rollout(spec, state, verdict, now, ...)`` then gives the next
state, its Events and the requeue time. The status edge: ``RolloutState.from_status`` where
status is read, ``merge_patch(stored, plan.status)`` where it is written.

- ``state``: ``RolloutState`` (frozen; ``from_status`` / ``to_status``), ``HistoryEntry``,
  ``Observed``, ``merge_patch``.
- ``analysis``: ``analysis_due``, ``AnalysisRequest``, verdict bookkeeping.
- ``transitions``: the state machine (its rules in the module docstring).
- ``conditions``: Available, Progressing, Degraded, AnalysisSucceeded.
- ``planner``: ``plan_rollout``, ``plan_invalid_spec``, ``Plan``.
"""

from .analysis import AnalysisRequest, analysis_due
from .planner import Plan, plan_invalid_spec, plan_rollout
from .state import (
    HISTORY_LIMIT,
    STATUS_KEYS,
    UNAVAILABLE_REASONS,
    HistoryEntry,
    Observed,
    RolloutState,
    merge_patch,
)

__all__ = [
    "HISTORY_LIMIT",
    "STATUS_KEYS",
    "UNAVAILABLE_REASONS",
    "AnalysisRequest",
    "HistoryEntry",
    "Observed",
    "Plan",
    "RolloutState",
    "analysis_due",
    "merge_patch",
    "plan_invalid_spec",
    "plan_rollout",
]
