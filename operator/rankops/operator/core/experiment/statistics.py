"""The two tests an A/B experiment decides with: a fixed-horizon Welch test on the whole
experiment's samples, or an anytime-valid two-sided confidence sequence for early stopping. Pure.

Both take the primary objective's accumulated evidence (``core.evidence.ObjectiveEvidence``: the
tracks' count, sum and sum of squares since the experiment started, oriented positive = better,
and the inverse-variance weighted batches of the difference) and return an ``Estimate`` of
``candidate - stable`` with a two-sided (1 - alpha) interval.

- ``fixed_horizon(canary, stable, alpha)``: Welch's t on the two means. Valid once, at the end:
  the horizon (the experiment's duration) is fixed before any data, so looking at interim
  figures changes nothing as long as they decide nothing.
- ``confidence_sequence(difference, alpha, tau)``: ``core.sequential``'s two-sided normal
  mixture over the analysis looks' batches; the interval holds at every look simultaneously, so
  stopping the first time it excludes 0 keeps the error rate at alpha.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..sequential import DifferenceEvidence, Moments

__all__ = ["Estimate", "confidence_sequence", "fixed_horizon"]


@dataclass(frozen=True)
class Estimate:
    """``candidate - stable`` with its two-sided (1 - alpha) interval; NaN/inf bounds without data."""

    difference: float
    ci_lower: float
    ci_upper: float
    p_value: float | None = None  # fixed horizon only (a confidence sequence has no p-value here)

    @property
    def sign(self) -> int:
        """+1: the interval is above 0 (candidate better); -1: below (worse); 0: it covers 0."""
        if self.ci_lower > 0:
            return 1
        if self.ci_upper < 0:
            return -1
        return 0


NO_ESTIMATE = Estimate(math.nan, -math.inf, math.inf)


def fixed_horizon(canary: Moments, stable: Moments, alpha: float) -> Estimate:
    """Welch's two-sided t test and interval at level ``alpha`` (no estimate with < 2 samples a track)."""
    from scipy import special  # imported on first use: importing the core stays fast

    if canary.n < 2 or stable.n < 2:
        return NO_ESTIMATE
    vc, vs = canary.variance / canary.n, stable.variance / stable.n
    se = math.sqrt(vc + vs)
    difference = canary.mean - stable.mean
    # Welch-Satterthwaite degrees of freedom.
    df = (vc + vs) ** 2 / (vc**2 / (canary.n - 1) + vs**2 / (stable.n - 1))
    half = float(special.stdtrit(df, 1 - alpha / 2)) * se
    p_value = 2 * float(special.stdtr(df, -abs(difference) / se))
    return Estimate(difference, difference - half, difference + half, min(1.0, p_value))


def confidence_sequence(difference: DifferenceEvidence, alpha: float, tau: float) -> Estimate:
    """The anytime-valid two-sided interval after the batches so far (mixing scale ``tau``)."""
    if difference.information <= 0:
        return NO_ESTIMATE
    lower, upper = difference.confidence_interval(alpha, tau)
    return Estimate(difference.estimate, lower, upper)
