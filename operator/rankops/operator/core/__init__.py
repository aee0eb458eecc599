"""Pure decisions: no I/O, no kopf, no Kubernetes client, no clock reads (``now`` is a parameter).

Modules (each documents its public API in its docstring):

- ``models``: ``parse_ranking_model_spec``, ``parse_quality_slo_spec`` -> typed specs;
  ``SpecError(path, message)``.
- ``judge``: ``judge(objectives, data, *, look, planned_looks, now, min_samples) -> Verdict``
  from ``TrackSummary``/``ObjectiveData``; ``Verdict.insufficient_data`` marks a look that tested
  nothing for lack of samples (it does not count); the repeated-looks method is documented there.
- ``planner``: ``plan_rollout(spec, status, verdict, now, *, annotations, generation,
  observed, rollout_allowed) -> Plan`` (new status, merge patch, actions, events,
  ``requeue_after``, ``analysis`` request); ``plan_invalid_spec``. The reconcile recipe for
  the shell is in its docstring.
- ``builders``: ``build_children(meta, spec, status)``, ``needs_update(desired, actual)`` (resource
  quantities compared by value, empty values the API server drops ignored), ``parse_quantity``.
- ``routing``: ``replica_split``, ``gateway_split``, ``route_weights``, ``desired_replicas``.
- ``promql``: ``objective_queries(objective, *, model, track, version, window_s, namespace)``.
- ``counters``: ``counter_increase``/``total_increase``: exact window increases from raw samples.
- ``slo``: ``objective_state(objective, value)`` for QualitySLO status.
- ``conditions``: ``set_condition``/``get_condition`` (Kubernetes conventions).
- ``timeutil``: ``parse_duration``, ``format_time``, ``parse_time``.
- ``simulation``: Monte Carlo rollouts through planner and judge (tests and benchmarks only).
"""

# The function ``judge`` is not re-exported: it would shadow the module ``rankops.operator.core.judge``.
from .builders import build_children, needs_update
from .judge import ObjectiveData, ObjectiveResult, Outcome, TrackSummary, Verdict, look_alpha
from .planner import (
    ABORT_ANNOTATION,
    PROMOTE_ANNOTATION,
    RETRY_ANNOTATION,
    AnalysisRequest,
    Event,
    Observed,
    Plan,
    plan_invalid_spec,
    plan_rollout,
)
from .promql import TrackQueries, objective_queries
from .spec import (
    Objective,
    QualitySLOSpec,
    RankingModelSpec,
    SpecError,
    parse_quality_slo_spec,
    parse_ranking_model_spec,
)

__all__ = [
    "ABORT_ANNOTATION",
    "PROMOTE_ANNOTATION",
    "RETRY_ANNOTATION",
    "AnalysisRequest",
    "Event",
    "Objective",
    "ObjectiveData",
    "ObjectiveResult",
    "Observed",
    "Outcome",
    "Plan",
    "QualitySLOSpec",
    "RankingModelSpec",
    "SpecError",
    "TrackQueries",
    "TrackSummary",
    "Verdict",
    "build_children",
    "look_alpha",
    "needs_update",
    "objective_queries",
    "parse_quality_slo_spec",
    "parse_ranking_model_spec",
    "plan_invalid_spec",
    "plan_rollout",
]
