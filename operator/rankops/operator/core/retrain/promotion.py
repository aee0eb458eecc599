"""Promotion of a retrained candidate, GitOps-safe: the spec is never edited. Pure.

- ``read_candidate(manifest, run, mode, now)``: the candidate as its ``manifest.json`` (written
  by ``rankops retrain``) describes it: the gate's verdict, reasons and figures, and what
  happens next: ``CommitToGit`` (``promotionGate.mode: Manual``, the default: status and an
  Event name the version and URI to commit), ``Canary`` (``Automatic``), ``None`` (failed gate).
- ``effective_spec(spec, state)``: the spec the rollout planner plans from. While an automatic
  promotion is in force and ``spec.model`` is still what it was when the promotion began, the
  candidate takes ``spec.model``'s place, so the normal canary analysis judges it and, once
  promoted, the stable track keeps serving it. Any Git change of ``spec.model`` ends it: the
  spec wins (a new version canaries as usual; the candidate's own version settles at once).
- ``follow_promotion(promotion, spec, rollout)``: the promotion's state from what the rollout
  did: ``Serving`` once stable, ``RolledBack`` when the analysis rejected it (the override ends
  and the stable track stays on the spec's version), ``Superseded`` when ``spec.model`` changed
  or ``promotionGate.mode`` is no longer ``Automatic``.
- ``served_condition(...)``: condition ``ServingSpecVersion``, ``False`` while the stable track
  serves a version other than ``spec.model.version`` because of an automatic promotion.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ..conditions import set_condition
from ..events import Event
from ..spec import ModelRef, RankingModelSpec
from .state import Candidate, Promotion, RetrainState, Run

__all__ = [
    "SERVED_CONDITION",
    "RolloutView",
    "effective_spec",
    "follow_promotion",
    "read_candidate",
    "served_condition",
]

SERVED_CONDITION = "ServingSpecVersion"


@dataclass(frozen=True)
class RolloutView:
    """The rollout's status fields a promotion follows."""

    stable_version: str | None = None
    canary_version: str | None = None
    phase: str | None = None
    aborted_version: str | None = None

    @classmethod
    def from_status(cls, status: Mapping[str, Any] | None) -> RolloutView:
        s = status or {}
        return cls(s.get("stableVersion"), s.get("canaryVersion"), s.get("phase"), s.get("abortedVersion"))


def _figures(gate: Mapping[str, Any]) -> dict[str, Any]:
    """The gate's scalar figures (NDCG@3 of both, difference, p-value, latencies, the bounds)."""
    return {
        k: v
        for k, v in gate.items()
        if k not in ("verdict", "reasons") and isinstance(v, bool | int | float | str)
    }


def read_candidate(
    manifest: Mapping[str, Any], run: Run, mode: Literal["Manual", "Automatic"], now: datetime
) -> Candidate:
    """The candidate named by ``run`` as its manifest records it; ``ValueError`` if it is not one."""
    if str(manifest.get("version", "")) != run.candidate_version:
        raise ValueError(
            f"manifest at {run.candidate_uri} names version {manifest.get('version')!r}, "
            f"not the candidate {run.candidate_version}"
        )
    retrain = manifest.get("retrain")
    if not isinstance(retrain, Mapping) or not isinstance(retrain.get("gate"), Mapping):
        raise ValueError(
            f"manifest at {run.candidate_uri} has no retrain.gate (not written by rankops retrain)"
        )
    gate = retrain["gate"]
    passed = gate.get("verdict") == "passed" and retrain.get("status") == "passed"
    window = retrain.get("feedback_window") or {}
    parent = retrain.get("parent") or {}
    return Candidate(
        version=run.candidate_version,
        uri=run.candidate_uri,
        parent_version=str(parent.get("version") or run.parent_version),
        passed=passed,
        reasons=tuple(str(r) for r in gate.get("reasons") or ())[:16],
        figures=_figures(gate),
        feedback_records=window.get("used") if isinstance(window.get("used"), int) else None,
        time=now,
        action=("Canary" if mode == "Automatic" else "CommitToGit") if passed else "None",
    )


def _applies(promotion: Promotion | None, model: ModelRef) -> bool:
    return (
        promotion is not None
        and promotion.in_force
        and promotion.spec_version == model.version
        and promotion.spec_uri == model.uri
    )


def effective_spec(spec: RankingModelSpec, state: RetrainState) -> RankingModelSpec:
    promotion = state.promotion
    if promotion is None or not _applies(promotion, spec.model):
        return spec
    return dataclasses.replace(spec, model=ModelRef(version=promotion.version, uri=promotion.uri))


def follow_promotion(
    promotion: Promotion, spec: RankingModelSpec, rollout: RolloutView
) -> tuple[Promotion, tuple[Event, ...]]:
    if not promotion.in_force:
        return promotion, ()
    if spec.retrain is None or spec.retrain.promotion_gate.mode != "Automatic":
        msg = (
            f"promotionGate.mode is no longer Automatic: spec.model {spec.model.version} replaces "
            f"the automatically promoted candidate {promotion.version}"
        )
        return dataclasses.replace(promotion, state="Superseded", message=msg), (
            Event("Normal", "PromotionSuperseded", msg),
        )
    if spec.model.version == promotion.version and spec.model.uri == promotion.uri:
        msg = f"candidate {promotion.version} committed to Git as spec.model: the spec names it now"
        return dataclasses.replace(promotion, state="Superseded", message=msg), (
            Event("Normal", "CandidateCommitted", msg),
        )
    if not _applies(promotion, spec.model):
        msg = (
            f"spec.model changed to {spec.model.version} (from {promotion.spec_version}): the spec wins "
            f"over the automatically promoted candidate {promotion.version}"
        )
        return dataclasses.replace(promotion, state="Superseded", message=msg), (
            Event("Normal", "PromotionSuperseded", msg),
        )
    if rollout.aborted_version == promotion.version and rollout.phase in ("RolledBack", "Failed"):
        msg = (
            f"the canary of candidate {promotion.version} was rolled back by the analysis; "
            f"serving {rollout.stable_version} from spec.model again"
        )
        return dataclasses.replace(promotion, state="RolledBack", message=msg), (
            Event("Warning", "CandidateRolledBack", msg),
        )
    if promotion.state == "Canary" and rollout.stable_version == promotion.version:
        msg = (
            f"candidate {promotion.version} promoted and serving; spec.model still names "
            f"{promotion.spec_version}: commit version {promotion.version} uri {promotion.uri} to Git "
            f"to make it the spec's (a different spec.model wins over it)"
        )
        return dataclasses.replace(promotion, state="Serving", message=msg), (
            Event("Normal", "CandidateServing", msg),
        )
    return promotion, ()


def served_condition(
    conditions: Sequence[Mapping[str, Any]] | None,
    spec: RankingModelSpec,
    state: RetrainState,
    stable_version: str | None,
    now: datetime,
    generation: int | None,
) -> list[dict[str, Any]] | None:
    """The conditions with ``ServingSpecVersion`` set, or ``None`` when there is nothing to say
    (no promotion was ever made and the condition was never set)."""
    promotion = state.promotion
    existing = any(c.get("type") == SERVED_CONDITION for c in conditions or ())
    if promotion is None and not existing:
        return None
    if _applies(promotion, spec.model) and stable_version == getattr(promotion, "version", None):
        assert promotion is not None
        return set_condition(
            conditions,
            SERVED_CONDITION,
            "False",
            "ServingRetrainedCandidate",
            f"serving retrained candidate {promotion.version} ({promotion.uri}); spec.model is "
            f"{spec.model.version}: commit the candidate to Git, or change spec.model to replace it",
            now,
            generation,
        )
    if _applies(promotion, spec.model):
        assert promotion is not None
        return set_condition(
            conditions,
            SERVED_CONDITION,
            "True",
            "CandidateInCanary",
            f"serving {stable_version} (spec.model); retrained candidate {promotion.version} is in canary",
            now,
            generation,
        )
    return set_condition(
        conditions,
        SERVED_CONDITION,
        "True",
        "SpecVersion",
        f"serving spec.model {spec.model.version}",
        now,
        generation,
    )
