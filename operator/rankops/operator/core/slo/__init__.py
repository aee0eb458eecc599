"""The QualitySLO core: objective state, default objectives and their grouped PromQL, error
budget, the remediation ladder, the post-promotion decision and alert-rule compilation. Pure:
data in, decisions out; no kopf, no HTTP, no clock.

Modules: :mod:`.state`, :mod:`.objectives`, :mod:`.policy`, :mod:`.budget`, :mod:`.ladder`,
:mod:`.promotion`, :mod:`.alert_rules`.
"""

from .state import ObjectiveState, objective_state

__all__ = ["ObjectiveState", "objective_state"]
