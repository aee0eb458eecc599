"""The evidence a rollout has accumulated per objective, as stored state. Pure.

A canary's labelled samples accumulate from the moment its rollout starts: each analysis
look reads each track's exact increases *since the rollout started* and turns what is new
since the previous look into one batch of the anytime-valid comparison
(``core.sequential``). What has been consumed so far (per track: count, sum, squares, in the
objective's orientation, positive = better) and the pooled comparison are kept in
``status.evidence`` so that an operator restart resumes the same confidence sequence.

- ``ObjectiveEvidence``: one objective's consumed totals, its ``DifferenceEvidence`` and the
  time of the last batch (for traffic rates).
- ``Evidence``: all objectives', with ``get(name)`` / ``with_objective(e)`` and
  ``from_status`` / ``to_status`` (full float precision: these are running sums).
- ``evidence_plan(needed, evidence, total_c, total_s, prior, now, elapsed_s)``: evidence planning,
  what a decision needs if the canary is as good as stable (``needed`` information), and when.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .sequential import DifferenceEvidence, Moments, information_rate
from .timeutil import format_time, parse_time

__all__ = ["Evidence", "ObjectiveEvidence", "evidence_plan"]


def _moments_from(d: Any) -> Moments:
    if not isinstance(d, Mapping):
        return Moments()
    return Moments(float(d.get("n", 0.0)), float(d.get("sum", 0.0)), float(d.get("squares", 0.0)))


def _moments_to(m: Moments) -> dict[str, float]:
    return {"n": m.n, "sum": m.total, "squares": m.squares}


@dataclass(frozen=True)
class ObjectiveEvidence:
    name: str
    canary: Moments = field(default_factory=Moments)  # consumed so far, oriented (module docstring)
    stable: Moments = field(default_factory=Moments)
    difference: DifferenceEvidence = field(default_factory=DifferenceEvidence)
    at: datetime | None = None  # when the last batch was consumed

    @classmethod
    def from_status(cls, d: Mapping[str, Any]) -> ObjectiveEvidence:
        return cls(
            name=str(d.get("name", "")),
            canary=_moments_from(d.get("canary")),
            stable=_moments_from(d.get("stable")),
            difference=DifferenceEvidence(
                information=float(d.get("information", 0.0)),
                score=float(d.get("score", 0.0)),
                batches=int(d.get("batches", 0)),
            ),
            at=parse_time(d.get("time")),
        )

    def to_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "canary": _moments_to(self.canary),
            "stable": _moments_to(self.stable),
            "information": self.difference.information,
            "score": self.difference.score,
            "batches": self.difference.batches,
        }
        if self.at is not None:
            out["time"] = format_time(self.at)
        return out


@dataclass(frozen=True)
class Evidence:
    objectives: tuple[ObjectiveEvidence, ...] = ()

    def get(self, name: str) -> ObjectiveEvidence:
        for e in self.objectives:
            if e.name == name:
                return e
        return ObjectiveEvidence(name=name)

    def with_objective(self, evidence: ObjectiveEvidence) -> Evidence:
        others = tuple(e for e in self.objectives if e.name != evidence.name)
        return Evidence(tuple(sorted((*others, evidence), key=lambda e: e.name)))

    @classmethod
    def from_status(cls, raw: Any) -> Evidence:
        items = raw if isinstance(raw, list) else []
        return cls(tuple(ObjectiveEvidence.from_status(d) for d in items if isinstance(d, Mapping)))

    def to_status(self) -> list[dict[str, Any]]:
        return [e.to_status() for e in self.objectives]


def evidence_plan(
    needed: float,
    evidence: ObjectiveEvidence,
    total_c: Moments,
    total_s: Moments,
    prior: ObjectiveEvidence,
    now: datetime | None,
    elapsed_s: float | None,
) -> dict[str, float]:
    """Information so far and ``needed``, labelled rates per track, samples needed, seconds to a decision."""
    out: dict[str, float] = {"information": evidence.difference.information}
    if math.isfinite(needed):
        out["information_needed"] = needed
    # Rates since the previous batch (the current weight's), or since the rollout started.
    new_c, new_s = total_c - prior.canary, total_s - prior.stable
    if prior.at is not None and now is not None:
        seconds = (now - prior.at).total_seconds()
    else:
        seconds = elapsed_s or 0.0
    if seconds <= 0 or total_c.n < 2 or total_s.n < 2:
        return out
    rate_c, rate_s = new_c.n / seconds, new_s.n / seconds
    out.update(canary_rate=rate_c, stable_rate=rate_s)
    per_second = information_rate(rate_c, rate_s, total_c.variance, total_s.variance)
    if not (per_second > 0 and math.isfinite(needed)):
        return out
    eta = max(0.0, needed - evidence.difference.information) / per_second
    out.update(eta_s=eta, canary_needed=total_c.n + rate_c * eta, stable_needed=total_s.n + rate_s * eta)
    return out
