"""``status.experiment`` of a RankingModel, typed (``from_status`` / ``to_status``, as ``RolloutState``).

One experiment: the candidate against the stable version at a fixed split, from ``startedAt``
(the candidate ready) to ``endsAt``; the latest figures of the primary objective (NDCG@3:
difference candidate - stable, two-sided interval, p-value of the fixed-horizon test, means and
labelled samples per arm), the guardrails' last verdicts, and once decided the ``decision``
(Promote, Keep, Inconclusive), its ``reason`` and what was done with the candidate (``action``:
Promoted or Kept). It stays after the experiment ends, until the next rollout starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any, Literal

from ..timeutil import format_duration, format_time, parse_time
from .statistics import Estimate

__all__ = ["Action", "Decision", "ExperimentStatus", "Guardrail"]

Decision = Literal["Promote", "Keep", "Inconclusive"]
Method = Literal["FixedHorizon", "ConfidenceSequence"]
Action = Literal["Promoted", "Kept"]


@dataclass(frozen=True)
class Guardrail:
    """One objective's verdict at the last look (the canary judge's rules)."""

    name: str
    verdict: str
    reason: str

    def to_status(self) -> dict[str, str]:
        return {"name": self.name, "verdict": self.verdict, "reason": self.reason}


def _round(value: float) -> float:
    return float(f"{value:.6g}")


@dataclass(frozen=True)
class ExperimentStatus:
    revision: int  # the rollout's canaryRevision (a retry is a new experiment)
    candidate: str
    baseline: str
    weight: int
    method: Method
    alpha: float
    started_at: datetime | None = None  # the candidate ready: samples count from here
    ends_at: datetime | None = None
    objective: str | None = None  # the primary objective (the QualitySLO's ndcg_at_3)
    difference: float | None = None
    ci_lower: float | None = None
    ci_upper: float | None = None
    p_value: float | None = None
    canary_mean: float | None = None
    stable_mean: float | None = None
    canary_n: float | None = None
    stable_n: float | None = None
    looks: int = 0
    guardrail_failures: int = 0  # Fail looks not conclusive by themselves (counted to failureLimit)
    guardrails: tuple[Guardrail, ...] = ()
    decision: Decision | None = None
    reason: str | None = None
    action: Action | None = None
    decided_at: datetime | None = None
    early: bool = False  # decided before endsAt (early stopping or a guardrail)
    ended_reason: str | None = None  # the rollout ended without a decision (a manual promote, abort, ...)
    message: str = ""

    @property
    def decided(self) -> bool:
        return self.decision is not None

    def with_estimate(self, estimate: Estimate) -> ExperimentStatus:
        return replace(
            self,
            difference=_finite(estimate.difference),
            ci_lower=_finite(estimate.ci_lower),
            ci_upper=_finite(estimate.ci_upper),
            p_value=_finite(estimate.p_value),
        )

    @property
    def effect_text(self) -> str:
        """``+0.0210 [+0.0080, +0.0340] n 5012/4988`` (or ``no estimate yet``)."""
        if self.difference is None:
            return "no estimate yet"
        lower = "-inf" if self.ci_lower is None else f"{self.ci_lower:+.4f}"
        upper = "inf" if self.ci_upper is None else f"{self.ci_upper:+.4f}"
        return (
            f"{self.difference:+.4f} [{lower}, {upper}] n {self.canary_n or 0:.0f}/{self.stable_n or 0:.0f}"
        )

    def summary(self, now: datetime | None = None) -> str:
        """One line for the printer column: the decision or the progress, and the effect."""
        if self.decision is not None:
            return f"{self.decision} {self.effect_text}"
        if self.ended_reason is not None:
            return f"ended undecided ({self.ended_reason}): {self.effect_text}"
        if self.started_at is None or self.ends_at is None:
            return "waiting for the candidate"
        total = (self.ends_at - self.started_at).total_seconds()
        if now is None:
            return f"running to {format_time(self.ends_at)}: {self.effect_text}"
        done = min(total, max(0.0, (now - self.started_at).total_seconds()))
        return f"running {format_duration(round(done))}/{format_duration(round(total))}: {self.effect_text}"

    def history_summary(self) -> dict[str, Any]:
        """What a history entry keeps of a decided experiment."""
        out = {
            k: v
            for k, v in self.to_status().items()
            if k in ("decision", "difference", "ciLower", "ciUpper", "pValue", "canaryN", "stableN", "method")
        }
        return out

    @classmethod
    def from_status(cls, d: Any) -> ExperimentStatus | None:
        if not isinstance(d, Mapping) or "candidate" not in d:
            return None
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = _camel(f.name)
            raw = d.get(key)
            if raw is None:
                continue
            if f.name == "guardrails":
                values[f.name] = tuple(
                    Guardrail(str(g.get("name", "")), str(g.get("verdict", "")), str(g.get("reason", "")))
                    for g in raw
                    if isinstance(g, Mapping)
                )
            elif f.name.endswith("_at"):
                values[f.name] = parse_time(raw)
            elif f.name in _INTS:
                values[f.name] = int(raw)
            elif f.name == "early":
                values[f.name] = bool(raw)
            elif f.name in _FLOATS:
                values[f.name] = float(raw)
            else:
                values[f.name] = str(raw)
        return cls(**values)

    def to_status(self, now: datetime | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or (f.name == "guardrails" and not value) or (f.name == "early" and not value):
                continue
            key = _camel(f.name)
            if f.name == "guardrails":
                out[key] = [g.to_status() for g in value]
            elif isinstance(value, datetime):
                out[key] = format_time(value)
            elif isinstance(value, float):
                out[key] = _round(value)
            else:
                out[key] = value
        # The summary from the stored (rounded) figures, so that it reads the same after a round trip.
        rounded: dict[str, Any] = {f: _round(v) for f in _FLOATS if isinstance(v := getattr(self, f), float)}
        out["summary"] = replace(self, **rounded).summary(now)
        return out


_INTS = frozenset({"revision", "weight", "looks", "guardrail_failures"})
_FLOATS = frozenset(
    {
        "alpha",
        "difference",
        "ci_lower",
        "ci_upper",
        "p_value",
        "canary_mean",
        "stable_mean",
        "canary_n",
        "stable_n",
    }
)


def _camel(attr: str) -> str:
    head, *rest = attr.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
