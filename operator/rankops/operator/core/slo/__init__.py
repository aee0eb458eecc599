"""The QualitySLO core: objective state, default objectives and their grouped PromQL, error
budget, the remediation ladder, the post-promotion decision and alert-rule compilation. Pure:
data in, decisions out; no kopf, no HTTP, no clock.

Modules: :mod:`.state` (objective state, severity, urgency), :mod:`.objectives` (defaults and
grouped PromQL), :mod:`.policy` (the live-watch spec), :mod:`.budget` (error budget),
:mod:`.ladder` (remediation state machine), :mod:`.promotion` (rollback after promotion),
:mod:`.evaluate` (one evaluation of an SLO), :mod:`.quality` (what it means for one
RankingModel), :mod:`.alert_rules` (Prometheus rules).
"""

from .state import ObjectiveState, objective_state

__all__ = ["ObjectiveState", "objective_state"]
