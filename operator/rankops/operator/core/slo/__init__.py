"""QualitySLO decisions: objective state (``state``)."""

from .state import ObjectiveState, objective_state

__all__ = ["ObjectiveState", "objective_state"]
