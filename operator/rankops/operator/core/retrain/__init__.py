"""Continuous learning: retrain triggers, the retrain Job, and promotion of its candidate. Pure.

``plan_retrain`` (planner) is the one entry point of a reconcile; ``effective_spec`` and
``served_condition`` (promotion) are what the RankingModel controller applies so that an
automatically promoted candidate is canaried and served without editing the spec.
"""

from .jobs import LABEL_RETRAIN, RetrainTarget, build_retrain_job, candidate_version, retrain_job_name
from .planner import JobOutcome, RetrainObserved, RetrainPlan, plan_retrain
from .promotion import SERVED_CONDITION, RolloutView, effective_spec, read_candidate, served_condition
from .requests import MaintenanceRequest, request_progress, requests_from_windows, with_overrides
from .state import Candidate, Firing, Promotion, RetrainState, Run
from .triggers import (
    DriftVerdict,
    NewData,
    QualityRequest,
    TriggerInputs,
    drift_from_windows,
    fire,
    quality_request_from_status,
)

__all__ = [
    "LABEL_RETRAIN",
    "SERVED_CONDITION",
    "Candidate",
    "DriftVerdict",
    "Firing",
    "JobOutcome",
    "MaintenanceRequest",
    "NewData",
    "Promotion",
    "QualityRequest",
    "RetrainObserved",
    "RetrainPlan",
    "RetrainState",
    "RetrainTarget",
    "RolloutView",
    "Run",
    "TriggerInputs",
    "build_retrain_job",
    "candidate_version",
    "drift_from_windows",
    "effective_spec",
    "fire",
    "plan_retrain",
    "quality_request_from_status",
    "read_candidate",
    "request_progress",
    "requests_from_windows",
    "retrain_job_name",
    "served_condition",
    "with_overrides",
]
