"""What to do when a stable model breaches soon after a promotion. Pure.

The watch keeps, per RankingModel, the stable revision it last saw (``TrackedStable``:
version, URI, whether its last evaluation was healthy). ``observe_stable`` notices a
promotion (the stable version or URI changed) and returns a ``PromotionRecord`` naming the
revision that was stable before, and whether it was healthy when it was replaced.

``decide_after_promotion(policy, record, stable_version, observation, now)`` →
``PostPromotionDecision`` with ``kind``:

- ``Rollback`` to ``record.previous`` when the stable model breaches inside
  ``postPromotion.window`` after its promotion, the action is ``Rollback`` and the previous
  revision was healthy (``reason`` ``PostPromotionBreach``, message naming objective and value);
- ``Remediate`` (the ladder) for a breach otherwise, with the reason why not a rollback
  (``NoPostPromotion``, ``NoRecentPromotion``, ``OutsideWindow``, ``ActionRemediate``,
  ``NoPreviousRevision``, ``PreviousNotHealthy``);
- ``Nothing`` when not breached.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from ..timeutil import format_duration, format_time, parse_time
from .ladder import Observation
from .policy import PostPromotion

__all__ = [
    "PostPromotionDecision",
    "PromotionRecord",
    "Revision",
    "TrackedStable",
    "decide_after_promotion",
    "observe_stable",
]


@dataclass(frozen=True)
class Revision:
    version: str
    uri: str


@dataclass(frozen=True)
class TrackedStable:
    revision: Revision
    healthy: bool | None = None  # None: never evaluated with data

    @classmethod
    def from_status(cls, raw: Mapping[str, Any] | None) -> TrackedStable | None:
        if not raw or not raw.get("version"):
            return None
        healthy = raw.get("healthy")
        return cls(
            Revision(str(raw["version"]), str(raw.get("uri", ""))), None if healthy is None else bool(healthy)
        )

    def to_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.revision.version, "uri": self.revision.uri}
        if self.healthy is not None:
            out["healthy"] = self.healthy
        return out


@dataclass(frozen=True)
class PromotionRecord:
    promoted: Revision
    promoted_at: datetime
    previous: Revision | None
    previous_healthy: bool

    @classmethod
    def from_status(cls, raw: Mapping[str, Any] | None) -> PromotionRecord | None:
        promoted_at = parse_time(str(raw.get("time") or "")) if raw else None
        if not raw or not raw.get("version") or promoted_at is None:
            return None
        prev = raw.get("previous") or None
        return cls(
            promoted=Revision(str(raw["version"]), str(raw.get("uri", ""))),
            promoted_at=promoted_at,
            previous=Revision(str(prev["version"]), str(prev.get("uri", ""))) if prev else None,
            previous_healthy=bool(raw.get("previousHealthy", False)),
        )

    def to_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.promoted.version,
            "uri": self.promoted.uri,
            "time": format_time(self.promoted_at),
            "previousHealthy": self.previous_healthy,
        }
        if self.previous:
            out["previous"] = {"version": self.previous.version, "uri": self.previous.uri}
        return out


def observe_stable(
    tracked: TrackedStable | None,
    stable: Revision,
    now: datetime,
    healthy: bool | None,
) -> tuple[TrackedStable, PromotionRecord | None]:
    """The tracked stable after an evaluation that found it ``healthy`` (None: no data), and a
    promotion record when the stable revision changed since the last one."""
    if tracked is None:
        return TrackedStable(stable, healthy), None
    if tracked.revision == stable:
        return TrackedStable(stable, tracked.healthy if healthy is None else healthy), None
    record = PromotionRecord(stable, now, tracked.revision, tracked.healthy is True)
    return TrackedStable(stable, healthy), record


@dataclass(frozen=True)
class PostPromotionDecision:
    kind: Literal["Rollback", "Remediate", "Nothing"]
    reason: str
    message: str
    target: Revision | None = None


def decide_after_promotion(
    policy: PostPromotion | None,
    record: PromotionRecord | None,
    stable_version: str,
    obs: Observation,
    now: datetime,
) -> PostPromotionDecision:
    what = obs.describe()
    if not obs.breached:
        return PostPromotionDecision("Nothing", "NotBreached", what)
    if policy is None:
        return PostPromotionDecision("Remediate", "NoPostPromotion", f"{what}; no spec.rollout.postPromotion")
    if record is None or record.promoted.version != stable_version:
        return PostPromotionDecision("Remediate", "NoRecentPromotion", f"{what}; no promotion seen")
    since = now - record.promoted_at
    window = format_duration(policy.window_s)
    if since > timedelta(seconds=policy.window_s):
        return PostPromotionDecision(
            "Remediate",
            "OutsideWindow",
            f"{what}; promoted {format_duration(round(since.total_seconds()))} ago (window {window})",
        )
    if policy.action == "Remediate":
        return PostPromotionDecision("Remediate", "ActionRemediate", f"{what} within {window} of promotion")
    if record.previous is None:
        return PostPromotionDecision("Remediate", "NoPreviousRevision", f"{what}; nothing to roll back to")
    if not record.previous_healthy:
        return PostPromotionDecision(
            "Remediate",
            "PreviousNotHealthy",
            f"{what}; previous revision {record.previous.version} was not healthy when replaced",
        )
    return PostPromotionDecision(
        "Rollback",
        "PostPromotionBreach",
        f"{what} {format_duration(round(since.total_seconds()))} after promoting {stable_version} "
        f"(window {window}): rolling back to {record.previous.version}",
        record.previous,
    )
