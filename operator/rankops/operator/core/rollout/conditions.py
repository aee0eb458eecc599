"""The RankingModel's conditions, computed from the planned state and the last verdict.

Available, Progressing, Degraded, AnalysisSucceeded (Kubernetes conventions;
``lastTransitionTime`` moves only when a status flips):

- Available: the stable track serves (``StableAvailable``), or the canary track serves the
  stable version while the stable track rolls out (``CanaryServing``); else ``StableNotReady``.
- Progressing: True during a rollout (``RolloutInProgress``) or while waiting for the stable track
  after one (``WaitingForStable``); False with the pause reason, ``RolloutFrozen``, the last
  history reason after a rollback, or ``RolloutComplete``.
- Degraded: True for a stable track not ready (``StableNotReady``), a rollback or failure, or a
  pause that waits for a person; False (``AsExpected``) otherwise.
- AnalysisSucceeded: from the last verdict: True on Pass, Unknown without data or metrics
  (``WaitingForSamples``, the verdict's reason), False otherwise; Unknown ``NoAnalysis`` before any.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..conditions import ConditionStatus, set_condition
from ..verdict import Outcome, Verdict
from .state import UNAVAILABLE_REASONS, Observed, RolloutState

__all__ = ["rollout_conditions"]


def rollout_conditions(
    st: RolloutState, observed: Observed, now: datetime, generation: int | None, *, frozen: bool = False
) -> tuple[Mapping[str, Any], ...]:
    """The state's conditions after this plan (``frozen``: a new rollout waits for a window)."""
    gen = generation if generation is not None else st.observed_generation
    conds: list[dict[str, Any]] = [dict(c) for c in st.conditions]

    def put(type_: str, status: ConditionStatus, reason: str, message: str) -> None:
        nonlocal conds
        conds = set_condition(conds, type_, status, reason, message, now, gen)

    version = st.stable_version
    if st.canary_draining and observed.stable_ready is False:
        put(
            "Available",
            "True",
            "CanaryServing",
            f"{version} served by the canary track while the stable track rolls out",
        )
    elif st.phase == "Pending" or observed.stable_ready is False:
        put("Available", "False", "StableNotReady", f"stable {version} not ready")
    else:
        put("Available", "True", "StableAvailable", f"stable {version} serving")

    if st.phase == "Progressing":
        put("Progressing", "True", "RolloutInProgress" if st.in_rollout else "WaitingForStable", st.message)
    elif st.phase == "Paused":
        put("Progressing", "False", st.pause_reason or "Paused", st.message)
    elif frozen:
        put("Progressing", "False", "RolloutFrozen", st.message)
    elif st.phase in ("RolledBack", "Failed") or (st.aborted_version is not None and st.phase == "Healthy"):
        # Healthy with an abortedVersion: an experiment kept the stable version (its reason says why).
        reason = st.history[-1].reason if st.history else ""
        put("Progressing", "False", reason or st.phase, st.message)
    else:
        put("Progressing", "False", "RolloutComplete", st.message)

    failure_pause = st.phase == "Paused" and st.pause_reason not in UNAVAILABLE_REASONS
    if st.phase == "Degraded":
        put("Degraded", "True", "StableNotReady", st.message)
    elif st.phase in ("RolledBack", "Failed") or failure_pause:
        put("Degraded", "True", st.pause_reason or st.phase, st.message)
    else:
        put("Degraded", "False", "AsExpected", "")

    verdict = st.last_analysis
    if verdict is None:
        put("AnalysisSucceeded", "Unknown", "NoAnalysis", "no analysis in this rollout")
    else:
        put("AnalysisSucceeded", _analysis_status(verdict), _analysis_reason(verdict), verdict.message[:1024])
    return tuple(conds)


def _analysis_status(verdict: Verdict) -> ConditionStatus:
    if verdict.outcome is Outcome.PASS:
        return "True"
    if verdict.metrics_unavailable or verdict.insufficient_data:
        return "Unknown"
    return "False"


def _analysis_reason(verdict: Verdict) -> str:
    return "WaitingForSamples" if verdict.insufficient_data else verdict.reason or "Analysis"
