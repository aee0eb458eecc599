"""What the judge reads and decides, as data: track summaries, observations, results, verdicts.

- ``TrackSummary(n, total, squares_total)``: one track's samples over the analysis window,
  from exact increases of ``rankops_ndcg_at_3_count`` / ``_sum`` /
  ``rankops_ndcg_at_3_squares_sum_total``. ``TrackSummary.from_increases(count, total,
  squares)`` accepts the raw query results (``None``/NaN -> ``None``: no data).
- ``ObjectiveData(canary=, stable=, canary_value=, stable_value=, error=)``: what the shell
  observed for one objective. Summary objectives fill ``canary``/``stable``; value objectives
  (golden NDCG, latency p95, custom queries) fill ``canary_value``/``stable_value``; a failed
  query (Prometheus unreachable, bad PromQL) sets ``error``.
- ``Verdict.unavailable(reason, message, now=..., look=..., planned_looks=...)`` when there is
  nothing to judge with at all (Prometheus down, QualitySLO missing): the planner pauses.
- ``Outcome`` (``Pass``/``Fail``/``Inconclusive``), ``ObjectiveResult``, ``Verdict.to_status()``
  / ``Verdict.from_status()`` (the ``status.lastAnalysis`` dict).
- ``Verdict.insufficient_data``: True for an Inconclusive verdict where no statistical test
  ran for lack of data: every objective is either short of data (``NoData``,
  ``NotEnoughSamples``: ``ObjectiveResult.lacks_data``) or a value objective that passed (a
  reading, not a test). Such a look spends no alpha, so the planner does not count it (see
  ``judge``, "Repeated looks"). ``INSUFFICIENT_DATA_REASONS`` names the reasons.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from .evidence import Evidence
from .timeutil import format_duration, format_time, parse_time

__all__ = [
    "INSUFFICIENT_DATA_REASONS",
    "ObjectiveData",
    "ObjectiveResult",
    "Outcome",
    "TrackSummary",
    "Verdict",
    "finite",
]


# Objective reasons meaning "no test ran for lack of data" (a failed query is MetricsUnavailable instead).
INSUFFICIENT_DATA_REASONS = frozenset({"NoData", "NotEnoughSamples"})


class Outcome(StrEnum):
    PASS = "Pass"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"


def finite(value: float | None) -> bool:
    return value is not None and not math.isnan(value) and not math.isinf(value)


@dataclass(frozen=True)
class TrackSummary:
    """Count, sum and sum of squares of one track's per-request values over the window."""

    n: float
    total: float
    squares_total: float

    @classmethod
    def from_increases(
        cls, count: float | None, total: float | None, squares_total: float | None
    ) -> TrackSummary | None:
        """Build from query results; ``None`` when any is missing/NaN or ``count <= 0``."""
        if not (finite(count) and finite(total) and finite(squares_total)):
            return None
        assert count is not None and total is not None and squares_total is not None
        if count <= 0:
            return None
        return cls(n=float(count), total=float(total), squares_total=float(squares_total))

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n > 0 else math.nan

    @property
    def variance(self) -> float:
        """Sample variance ``(squares_total - n·mean²)/(n - 1)``, clamped at 0 (rounding)."""
        if self.n <= 1:
            return math.nan
        return max(0.0, (self.squares_total - self.n * self.mean**2) / (self.n - 1))


@dataclass(frozen=True)
class ObjectiveData:
    """The observations for one objective (see module docstring)."""

    canary: TrackSummary | None = None
    stable: TrackSummary | None = None
    canary_value: float | None = None
    stable_value: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class ObjectiveResult:
    name: str
    metric: str
    outcome: Outcome
    reason: str
    message: str
    canary_mean: float | None = None
    stable_mean: float | None = None
    canary_n: float | None = None
    stable_n: float | None = None
    difference: float | None = None  # canary - stable, in the metric's own units
    ci_lower: float | None = None  # one-sided (1 - alpha_look) bounds of the difference
    ci_upper: float | None = None
    p_value: float | None = None  # non-inferiority p-value (H0: canary worse by >= margin)
    alpha_look: float | None = None
    # Evidence planning (sequential comparisons): information so far and needed for a decision,
    # labelled samples per second per track, samples each track needs, seconds to a decision.
    information: float | None = None
    information_needed: float | None = None
    canary_rate: float | None = None
    stable_rate: float | None = None
    canary_needed: float | None = None
    stable_needed: float | None = None
    eta_s: float | None = None
    # Shown by an anytime-valid rule (not stored: the verdict's ``harm_shown`` is).
    conclusive: bool = False

    @property
    def lacks_data(self) -> bool:
        """Inconclusive because there was nothing (or too little) to test with."""
        return self.outcome is Outcome.INCONCLUSIVE and self.reason in INSUFFICIENT_DATA_REASONS

    @classmethod
    def from_status(cls, d: Mapping[str, Any]) -> ObjectiveResult:
        """Inverse of :meth:`to_status` (values as rounded there; ``alpha_look`` is not stored)."""

        def number(key: str) -> float | None:
            value = d.get(key)
            return None if value is None else float(value)

        numbers: dict[str, Any] = {attr: number(key) for key, attr in _RESULT_NUMBERS}
        return cls(
            name=str(d.get("name", "")),
            metric=str(d.get("metric", "")),
            outcome=Outcome(d.get("verdict", Outcome.INCONCLUSIVE)),
            reason=str(d.get("reason", "")),
            message=str(d.get("message", "")),
            **numbers,
        )

    def to_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "metric": self.metric,
            "verdict": str(self.outcome),
            "reason": self.reason,
            "message": self.message,
        }
        for key, attr in _RESULT_NUMBERS:
            value = getattr(self, attr)
            if finite(value):
                assert value is not None
                out[key] = _round(value)
        return out


# status key -> ObjectiveResult attribute of the numbers a result reports
_RESULT_NUMBERS = (
    ("canaryMean", "canary_mean"),
    ("stableMean", "stable_mean"),
    ("canaryN", "canary_n"),
    ("stableN", "stable_n"),
    ("difference", "difference"),
    ("ciLower", "ci_lower"),
    ("ciUpper", "ci_upper"),
    ("pValue", "p_value"),
    ("information", "information"),
    ("informationNeeded", "information_needed"),
    ("canaryRate", "canary_rate"),
    ("stableRate", "stable_rate"),
    ("canaryNeeded", "canary_needed"),
    ("stableNeeded", "stable_needed"),
    ("etaSeconds", "eta_s"),
)


def _round(value: float) -> float:
    return float(f"{value:.6g}")


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str
    message: str
    objectives: tuple[ObjectiveResult, ...] = ()
    look: int = 1
    planned_looks: int = 1
    alpha_look: float | None = None
    at: datetime | None = None
    metrics_unavailable: bool = False
    insufficient_data: bool = False
    # Inconclusive only because a sequential comparison has not decided yet ("not yet"): the
    # planner keeps collecting, bounded by the step's analysis deadline, and counts no limit.
    collecting: bool = False
    # Fail shown by an anytime-valid comparison: conclusive, the planner rolls back at once.
    harm_shown: bool = False
    # The accumulated evidence after this look (stored by the planner in ``status.evidence``,
    # not part of ``lastAnalysis``); ``None`` when the look added nothing to store.
    evidence: Evidence | None = None

    @property
    def eta_s(self) -> float | None:
        """Seconds to a decision at the current traffic: the slowest undecided comparison's."""
        etas = [o.eta_s for o in self.objectives if o.eta_s is not None]
        return max(etas) if etas else None

    @property
    def evidence_summary(self) -> str:
        """One line for ``kubectl get rm -o wide``: samples per track against need, and the ETA."""
        for o in self.objectives:
            if o.canary_needed is not None and o.canary_n is not None and o.stable_n is not None:
                eta = "" if o.eta_s is None else f", ETA {format_duration(o.eta_s)}"
                return (
                    f"{o.name}: canary {o.canary_n:.0f}/{o.canary_needed:.0f}, "
                    f"stable {o.stable_n:.0f}/{o.stable_needed or 0:.0f}{eta}"
                )
        return ""

    @classmethod
    def unavailable(
        cls,
        reason: str = "MetricsUnavailable",
        message: str = "metrics source unavailable",
        *,
        now: datetime | None = None,
        look: int = 1,
        planned_looks: int = 1,
    ) -> Verdict:
        """An Inconclusive verdict with ``metrics_unavailable``: the planner pauses, counts nothing."""
        return cls(
            outcome=Outcome.INCONCLUSIVE,
            reason=reason,
            message=message,
            look=look,
            planned_looks=planned_looks,
            at=now,
            metrics_unavailable=True,
        )

    @classmethod
    def from_status(cls, d: Mapping[str, Any]) -> Verdict:
        """Inverse of :meth:`to_status` (``from_status(v.to_status()).to_status() == v.to_status()``)."""
        alpha = d.get("alphaPerLook")
        return cls(
            outcome=Outcome(d.get("verdict", Outcome.INCONCLUSIVE)),
            reason=str(d.get("reason", "")),
            message=str(d.get("message", "")),
            objectives=tuple(
                ObjectiveResult.from_status(o) for o in d.get("objectives") or () if isinstance(o, Mapping)
            ),
            look=int(d.get("look", 1)),
            planned_looks=int(d.get("plannedLooks", 1)),
            alpha_look=None if alpha is None else float(alpha),
            at=parse_time(d.get("time")),
            metrics_unavailable=bool(d.get("metricsUnavailable", False)),
            insufficient_data=bool(d.get("insufficientData", False)),
            collecting=bool(d.get("collectingEvidence", False)),
            harm_shown=bool(d.get("harmShown", False)),
        )

    def to_status(self) -> dict[str, Any]:
        """The ``status.lastAnalysis`` representation (camelCase, JSON-safe, rounded floats)."""
        out: dict[str, Any] = {
            "verdict": str(self.outcome),
            "reason": self.reason,
            "message": self.message,
            "look": self.look,
            "plannedLooks": self.planned_looks,
            "objectives": [o.to_status() for o in self.objectives],
        }
        if self.alpha_look is not None:
            out["alphaPerLook"] = _round(self.alpha_look)
        if self.at is not None:
            out["time"] = format_time(self.at)
        if self.metrics_unavailable:
            out["metricsUnavailable"] = True
        if self.insufficient_data:
            out["insufficientData"] = True
        if self.collecting:
            out["collectingEvidence"] = True
        if self.harm_shown:
            out["harmShown"] = True
        summary = self.evidence_summary
        # samples against need is a wait's progress; a decided look needs nothing more
        if summary and self.outcome is Outcome.INCONCLUSIVE:
            out["evidence"] = summary
        return out
