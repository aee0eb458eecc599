"""A/B experiments: a candidate against the stable version at a fixed split for a fixed duration,
decided once on NDCG@3 with the other objectives as guardrails. Pure: no I/O, no clock.

- ``statistics``: ``fixed_horizon`` (Welch) and ``confidence_sequence`` (anytime-valid) ``Estimate``s.
- ``status``: ``ExperimentStatus`` (``status.experiment``), ``Guardrail``.
- ``decision``: ``start_experiment``, ``assess`` (the rules in its docstring).

The planner runs it as a rollout strategy (``core.rollout.experiment_step``).
"""

from .decision import PRIMARY_METRIC, assess, start_experiment
from .statistics import Estimate, confidence_sequence, fixed_horizon
from .status import Decision, ExperimentStatus, Guardrail

__all__ = [
    "PRIMARY_METRIC",
    "Decision",
    "Estimate",
    "ExperimentStatus",
    "Guardrail",
    "assess",
    "confidence_sequence",
    "fixed_horizon",
    "start_experiment",
]
