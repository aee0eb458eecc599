"""Typed specs of the three custom resources, parsed once from the plain dicts kopf hands over.

Each default is written once, as a dataclass field default; the parser reads it from there.
The CRDs (``crds/*.yaml``) default the same fields to the same values, so an object that
skipped API-server defaulting reads the same (``tests/unit/test_spec_defaults.py`` checks every
CRD default against its field). The parser also checks what a schema cannot express well;
every problem raises :class:`SpecError` whose ``path`` names the field
(``spec.rollout.steps[2].weight``).

Public API:

- ``parse_ranking_model_spec(spec) -> RankingModelSpec`` (``model``, ``serving``,
  ``rollout``, ``retrain``: ``ModelRef``, ``ServingSpec``, ``RolloutSpec`` of ``Step``,
  ``TrafficRouting``, ``AnalysisSpec``, ``ExperimentSpec``; ``RetrainSpec``).
- ``parse_quality_slo_spec(spec) -> QualitySLOSpec`` (``Objective``, ``SeverityTier``,
  ``Comparison``).
- ``parse_maintenance_window_spec(spec) -> MaintenanceWindowSpec`` (``LabelSelector``,
  ``Task`` with ``BackupTask``/``BackupRetention``, ``RetrainTask``, ``EvaluateTask``,
  ``DriftThresholds``).
- ``SUMMARY_METRICS`` (objectives judged statistically from count/sum/squares) and
  ``VALUE_METRICS`` (judged from one value per track); ``SEMVER_PATTERN``.

Semantics worth knowing:

- A step requires analysis when ``step.analysis`` is true, or when it is unset, the rollout
  has an ``analysis`` block and the step's weight is below 100 (the final 100 % step is the
  promotion step; set ``analysis: true`` on it explicitly to judge at full weight too).
- ``RolloutSpec.looks_per_step`` = ``failureLimit + inconclusiveLimit - 1``: the most
  analysis runs one step can take (counters are per step and do not reset each other),
  which is the number of looks the judge splits ``alpha`` across.
- Objectives ``ndcg_at_3`` and ``golden_ndcg_at_3`` default ``target`` 0.70 and ``breach``
  0.65, ``cache_hit_rate`` 0.80 and 0.60, ``drift_psi`` 0.10 and 0.25 (``METRIC_DEFAULTS``;
  ``drift_psi`` must say ``direction: lowerIsBetter``); other metrics must state both.
  ``direction`` ``lowerIsBetter`` flips every comparison (``breach`` must then be above
  ``target``).
- An objective with an explicit ``query`` is judged as a value metric: the query (with
  ``$model``, ``$track``, ``$version``, ``$window``, ``$namespace`` placeholders, see
  ``promql``) must return one number per track.
"""

from .fields import SpecError, default
from .maintenancewindow import (
    TASK_TYPES,
    BackupRetention,
    BackupTask,
    DriftCheckTask,
    EvaluateTask,
    LabelSelector,
    MaintenanceWindowSpec,
    RestoreTestTask,
    RetrainTask,
    SelectorRequirement,
    Task,
    TaskType,
    parse_maintenance_window_spec,
)
from .qualityslo import (
    DEFAULT_BREACH,
    DEFAULT_TARGET,
    METRIC_DEFAULTS,
    METRICS,
    SUMMARY_METRICS,
    VALUE_METRICS,
    Comparison,
    Objective,
    QualitySLOSpec,
    SeverityTier,
    parse_quality_slo_spec,
)
from .rankingmodel import (
    SEMVER_PATTERN,
    AnalysisSpec,
    DriftThresholds,
    DriftTrigger,
    ExperimentSpec,
    ModelRef,
    NewDataTrigger,
    PromotionGate,
    QualityDropTrigger,
    RankingModelSpec,
    RetrainSpec,
    RetrainTriggers,
    RolloutSpec,
    ServingSpec,
    Step,
    TrafficRouting,
    TrainerSpec,
    parse_ranking_model_spec,
)

__all__ = [
    "DEFAULT_BREACH",
    "DEFAULT_TARGET",
    "METRICS",
    "METRIC_DEFAULTS",
    "SEMVER_PATTERN",
    "SUMMARY_METRICS",
    "TASK_TYPES",
    "VALUE_METRICS",
    "AnalysisSpec",
    "BackupRetention",
    "BackupTask",
    "Comparison",
    "DriftCheckTask",
    "DriftThresholds",
    "DriftTrigger",
    "EvaluateTask",
    "ExperimentSpec",
    "LabelSelector",
    "MaintenanceWindowSpec",
    "ModelRef",
    "NewDataTrigger",
    "Objective",
    "PromotionGate",
    "QualityDropTrigger",
    "QualitySLOSpec",
    "RankingModelSpec",
    "RestoreTestTask",
    "RetrainSpec",
    "RetrainTask",
    "RetrainTriggers",
    "RolloutSpec",
    "SelectorRequirement",
    "ServingSpec",
    "SeverityTier",
    "SpecError",
    "Step",
    "Task",
    "TaskType",
    "TrafficRouting",
    "TrainerSpec",
    "default",
    "parse_maintenance_window_spec",
    "parse_quality_slo_spec",
    "parse_ranking_model_spec",
]
