"""What one evaluation means for one RankingModel: its ``status.quality``, the ``QualityMet``
condition, a post-promotion rollback or the next remediation step. Pure.

``plan_quality(model, evaluation, slo_name, remediation, now) -> QualityPlan``

- ``status.quality`` records the evaluation (state, deciding objective, value, severity), the
  stable revision and its health, the last promotion seen, and the ladder's state;
- a breach of the stable track right after a promotion (``decide_after_promotion``) rolls
  back the way a failed canary does, so the rollout planner keeps it: phase ``RolledBack``,
  ``stableVersion``/``stableUri`` the previous revision, ``abortedVersion`` the spec's
  version (kept until the spec changes or a retry is asked for; the spec is never edited),
  a ``history`` entry (``RolledBack``, ``PostPromotionBreach``), ``quality.rollback`` naming
  objective and value, a Warning Event and a notification;
- otherwise the remediation ladder advances (one action at most, for the shell to take
  *after* this status is written, so a lost write never repeats an action);
- nothing acts while a rollout runs (the canary analysis decides then) or on NoData;
- Events: on a change of the quality state, on every ladder action and on every change of
  the ladder's outcome, never on an evaluation that changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from ..conditions import ConditionStatus, set_condition
from ..diff import merge_patch_between
from ..events import Event
from ..timeutil import format_time, parse_time
from .evaluate import ModelEvaluation
from .ladder import Action, LadderState, advance
from .policy import PostPromotion, RemediationPolicy
from .promotion import PromotionRecord, Revision, TrackedStable, decide_after_promotion, observe_stable

__all__ = ["HISTORY_LIMIT", "ModelView", "QualityPlan", "plan_quality"]

HISTORY_LIMIT = 10
NotifyKind = Literal["Breach", "Rollback", "Remediation"]
_LADDER_EVENTS = frozenset(
    {"RemediationResolved", "StillBreaching", "AttemptsExhausted", "RecordedOnly", "Recovered", "Cooldown"}
)
_QUALITY_CONDITION = {
    "Met": ("True", "ObjectivesMet"),
    "AtRisk": ("True", "ObjectivesAtRisk"),
    "Breached": ("False", "ObjectiveBreached"),
    "NoData": ("Unknown", "NoData"),
}


@dataclass(frozen=True)
class ModelView:
    """The parts of a RankingModel the quality plan reads."""

    generation: int
    spec_version: str
    status: Mapping[str, Any]
    post_promotion: PostPromotion | None = None
    retrain_allowed: bool = False

    @property
    def in_rollout(self) -> bool:
        return self.status.get("phase") in ("Progressing", "Paused") or bool(self.status.get("canaryVersion"))


@dataclass(frozen=True)
class QualityPlan:
    """``status_patch`` is a merge patch (``quality`` as a key-by-key change, with nulls for what
    the new ``status.quality`` drops); ``quality`` is that new ``status.quality`` whole."""

    status_patch: dict[str, Any]
    action: Action | None = None
    events: tuple[Event, ...] = ()
    notifications: tuple[tuple[NotifyKind, str], ...] = ()
    rolled_back: bool = False
    quality: Mapping[str, Any] = field(default_factory=dict)

    def with_outcome(self, outcome: str) -> dict[str, Any]:
        """The status patch recording the shell's result of ``action`` (after ``status_patch``)."""
        before = self.quality.get("remediation")
        ladder = LadderState.from_status(before).with_outcome(outcome)
        return {"quality": {"remediation": merge_patch_between(before, ladder.to_status())}}


def _promoted_at(history: Sequence[Mapping[str, Any]], version: str, default: datetime) -> datetime:
    for entry in reversed(history):
        if entry.get("version") == version and entry.get("outcome") == "Promoted":
            return parse_time(str(entry.get("at") or "")) or default
    return default


def plan_quality(
    model: ModelView,
    evaluation: ModelEvaluation,
    slo_name: str,
    remediation: RemediationPolicy,
    now: datetime,
) -> QualityPlan:
    status = model.status
    old = dict(status.get("quality") or {})
    obs = evaluation.observation()
    stable = Revision(
        str(status.get("stableVersion") or evaluation.version), str(status.get("stableUri") or "")
    )
    history = list(status.get("history") or [])

    tracked, new_record = observe_stable(
        TrackedStable.from_status(old.get("stable")), stable, now, evaluation.healthy
    )
    record = PromotionRecord.from_status(old.get("promotion"))
    if new_record is not None:
        record = replace(new_record, promoted_at=_promoted_at(history, stable.version, now))

    quality: dict[str, Any] = {
        **old,
        "slo": slo_name,
        "state": evaluation.state,
        "lastEvaluationTime": format_time(now),
        "stable": tracked.to_status(),
    }
    for key in ("objective", "value", "severity"):
        quality.pop(key, None)
    if obs.objective:
        quality["objective"] = obs.objective
    if obs.value is not None:
        quality["value"] = round(obs.value, 6)
    if obs.severity:
        quality["severity"] = obs.severity
    if record is not None:
        quality["promotion"] = record.to_status()
    # a rollback lasts while the spec still names the version it rolled back from
    rollback = old.get("rollback")
    if rollback and (
        rollback.get("fromVersion") != model.spec_version or status.get("phase") != "RolledBack"
    ):
        quality.pop("rollback")

    events: list[Event] = []
    notes: list[tuple[NotifyKind, str]] = []
    if old.get("state") != evaluation.state:
        kind: Literal["Normal", "Warning"] = "Warning" if evaluation.state == "Breached" else "Normal"
        events.append(Event(kind, f"Quality{evaluation.state}", obs.describe()))
        if evaluation.state == "Breached":
            notes.append(("Breach", f"{obs.describe()} on stable {stable.version}"))

    patch: dict[str, Any] = {}
    action: Action | None = None
    rolled_back = False
    acting = not model.in_rollout and "rollback" not in quality
    if acting and status.get("phase") != "RolledBack" and model.spec_version == stable.version:
        decision = decide_after_promotion(model.post_promotion, record, stable.version, obs, now)
        if decision.kind == "Rollback" and decision.target is not None:
            target = decision.target
            rolled_back, acting = True, False
            quality["rollback"] = {
                "version": target.version,
                "uri": target.uri,
                "fromVersion": stable.version,
                "generation": model.generation,
                "reason": decision.reason,
                "message": decision.message,
                "time": format_time(now),
            }
            entry = {
                "revision": status.get("canaryRevision", 0),
                "version": stable.version,
                "outcome": "RolledBack",
                "reason": decision.reason,
                "at": format_time(now),
                **({"uri": stable.uri} if stable.uri else {}),  # the artifact rolled back from
            }
            patch.update(
                phase="RolledBack",
                message=decision.message,
                stableVersion=target.version,
                stableUri=target.uri,
                abortedVersion=stable.version,
                history=[*history, entry][-HISTORY_LIMIT:],
            )
            events.append(Event("Warning", "RolledBack", decision.message))
            notes.append(("Rollback", decision.message))
    if acting:
        ladder = LadderState.from_status(old.get("remediation"))
        step = advance(ladder, obs, remediation, now, model.retrain_allowed)
        quality["remediation"] = step.state.to_status()
        action = step.action
        if action is not None:
            events.append(Event("Warning", action, step.message))
            notes.append(("Remediation", f"{action}: {step.message}"))
            if action == "RollingRestart":
                quality["restartedAt"] = format_time(now)
            if action == "RequestRetrain":
                quality["retrainRequest"] = {
                    "time": format_time(now),
                    "version": stable.version,
                    "reason": obs.describe(),
                }
        elif step.reason in _LADDER_EVENTS and step.reason != old.get("ladderReason"):
            healed = step.reason in ("RemediationResolved", "Recovered")
            events.append(Event("Normal" if healed else "Warning", step.reason, step.message))
            if step.reason in ("RemediationResolved", "StillBreaching", "AttemptsExhausted"):
                notes.append(("Remediation", f"{step.reason}: {step.message}"))
        quality["ladderReason"] = step.reason

    cond_status, reason = _QUALITY_CONDITION[evaluation.state]
    if rolled_back:
        cond_status, reason = "False", "PostPromotionBreach"
    message = f"QualitySLO {slo_name}: {obs.describe()}"
    conditions = set_condition(
        status.get("conditions"), "QualityMet", _status(cond_status), reason, message, now, model.generation
    )
    # popped keys (a rollback that is over, a value gone to NoData) must be nulled on the server
    patch.update(quality=merge_patch_between(old, quality), conditions=conditions)
    return QualityPlan(patch, action, tuple(events), tuple(notes), rolled_back, quality)


def _status(value: str) -> ConditionStatus:
    return "True" if value == "True" else "False" if value == "False" else "Unknown"
