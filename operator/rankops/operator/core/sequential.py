"""Anytime-valid evidence for canary-versus-stable comparisons. Pure: no I/O, no clock.

Method: a one-sided normal-mixture confidence sequence (Robbins 1970; Howard, Ramdas,
McAuliffe & Sekhon 2021, "Time-uniform, nonparametric, nonasymptotic confidence sequences",
Ann. Statist. 49(2), eq. (14) and Prop. 4, one-sided mixture) over batches of an
inverse-variance weighted difference of means (the asymptotic confidence sequences of
Waudby-Smith, Arnold, Wu, Ramdas et al. 2024, "Time-uniform central limit theory and
asymptotic confidence sequences", Ann. Statist.).

Why batches: the canary's share of traffic changes from step to step, so the plain running
difference of the two tracks' means is not a martingale. Each analysis look adds one batch:
the labelled requests each track received since the previous look (exact counter increases),
giving ``d_k = mean_canary_k - mean_stable_k`` with variance ``v_k = s_c^2/n_k + s_s^2/m_k``.
With ``I_k = 1/v_k``, ``S(d) = sum_k I_k (d_k - d)`` is, under the central limit
approximation within each batch, a Gaussian martingale in the intrinsic time
``V = sum_k I_k`` whatever the allocation, for the true difference ``d``.

For ``theta >= 0`` the processes ``exp(theta S - theta^2 V / 2)`` are nonnegative
martingales, and so is their mixture over a half-normal prior of scale ``tau``:

    M(S, V) = 2 / sqrt(1 + tau^2 V) * exp(S^2 / (2 a)) * Phi(S / sqrt(a)),   a = V + 1/tau^2.

Ville's inequality gives P(exists k: M_k >= 1/alpha) <= alpha, so with ``b(V)`` solving
``M(b, V) = 1/alpha`` the lower bound ``estimate - b(V)/V`` holds at every look
simultaneously with probability >= 1 - alpha, however often one looks and whenever one
stops (the upper bound likewise). A non-inferiority decision (lower bound above ``-margin``)
or a harm decision (upper bound below ``-margin``) therefore keeps its error rate at alpha
under continuous monitoring.

Assumptions, stated: requests are independent given the track; within a batch the mean is
close to normal (batches of tens of labelled requests and more; the judge requires
``min_batch`` per track before a batch counts, smaller ones are carried into the next);
the per-track variance is estimated from all samples so far (consistent, which is what the
asymptotic confidence sequence needs). ``tau`` is fixed before any data (from the margin), never tuned on the
data.

Two-sided (the A/B experiments of ``core.experiment``): mixing the same martingales over a
centred normal prior of scale ``tau`` (Howard et al. 2021, the two-sided normal mixture) gives
``M(S, V) = exp(tau^2 S^2 / (2 (1 + tau^2 V))) / sqrt(1 + tau^2 V)``, which reaches ``1/alpha`` at
``|S| = b2(V) = sqrt((V + 1/tau^2) (log(1 + tau^2 V) + 2 log(1/alpha)))`` (closed form). The
interval ``estimate +- b2(V)/V`` covers the true difference at every look simultaneously with
probability >= 1 - alpha, so stopping the first time it excludes 0 decides wrongly with
probability <= alpha however often one looks.

Public API: ``Moments``, ``DifferenceEvidence``, ``MeanEvidence``, ``boundary``,
``two_sided_boundary``, ``information_needed``, ``information_rate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "DifferenceEvidence",
    "MeanEvidence",
    "Moments",
    "boundary",
    "information_needed",
    "information_rate",
    "two_sided_boundary",
]

# Variance floor per track: NDCG@3 values are in [0, 1]; a batch of identical values must not
# give infinite information.
_MIN_VARIANCE = 1e-6


@dataclass(frozen=True)
class Moments:
    """Count, sum and sum of squares of one track's per-request values."""

    n: float = 0.0
    total: float = 0.0
    squares: float = 0.0

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.n + other.n, self.total + other.total, self.squares + other.squares)

    def __sub__(self, other: Moments) -> Moments:
        return Moments(self.n - other.n, self.total - other.total, self.squares - other.squares)

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n > 0 else math.nan

    @property
    def variance(self) -> float:
        """Sample variance, floored (module docstring); NaN with fewer than two samples."""
        if self.n < 2:
            return math.nan
        return max(_MIN_VARIANCE, (self.squares - self.n * self.mean**2) / (self.n - 1))


def _log_mixture(s: float, v: float, tau: float) -> float:
    from scipy.special import log_ndtr  # imported on first use: importing the core stays fast

    a = v + 1.0 / tau**2
    return (
        math.log(2.0) - 0.5 * math.log1p(tau**2 * v) + s * s / (2.0 * a) + float(log_ndtr(s / math.sqrt(a)))
    )


def boundary(information: float, alpha: float, tau: float) -> float:
    """``b(V)``: the score at which the one-sided mixture martingale reaches ``1/alpha``."""
    if not (0.0 < alpha < 1.0) or tau <= 0.0:
        raise ValueError(f"need 0 < alpha < 1 and tau > 0, got alpha={alpha}, tau={tau}")
    from scipy.optimize import brentq

    v = max(information, 0.0)
    target = math.log(1.0 / alpha)
    high = 1.0
    while _log_mixture(high, v, tau) < target:
        high *= 2.0
    return float(brentq(lambda s: _log_mixture(s, v, tau) - target, 0.0, high, xtol=1e-10))


def two_sided_boundary(information: float, alpha: float, tau: float) -> float:
    """``b2(V)``: the score at which the two-sided normal mixture reaches ``1/alpha`` (module docstring)."""
    if not (0.0 < alpha < 1.0) or tau <= 0.0:
        raise ValueError(f"need 0 < alpha < 1 and tau > 0, got alpha={alpha}, tau={tau}")
    v = max(information, 0.0)
    return math.sqrt((v + 1.0 / tau**2) * (math.log1p(tau**2 * v) + 2.0 * math.log(1.0 / alpha)))


@dataclass(frozen=True)
class DifferenceEvidence:
    """Accumulated batches of ``canary - stable`` (module docstring).

    ``score`` is ``sum I_k d_k`` and ``information`` ``sum I_k``; the pooled estimate is their ratio.
    """

    information: float = 0.0
    score: float = 0.0
    batches: int = 0

    @property
    def estimate(self) -> float:
        return self.score / self.information if self.information > 0 else math.nan

    def add_batch(
        self, canary: Moments, stable: Moments, canary_variance: float, stable_variance: float
    ) -> DifferenceEvidence:
        """One more batch; the variances are the tracks' running estimates (not this batch's alone)."""
        if canary.n <= 0 or stable.n <= 0:
            raise ValueError("a batch needs samples on both tracks")
        batch_variance = (
            max(canary_variance, _MIN_VARIANCE) / canary.n + max(stable_variance, _MIN_VARIANCE) / stable.n
        )
        weight = 1.0 / batch_variance
        return DifferenceEvidence(
            information=self.information + weight,
            score=self.score + weight * (canary.mean - stable.mean),
            batches=self.batches + 1,
        )

    def lower_bound(self, alpha: float, tau: float) -> float:
        """Anytime-valid one-sided lower confidence bound of the difference (-inf without data)."""
        if self.information <= 0:
            return -math.inf
        return self.estimate - boundary(self.information, alpha, tau) / self.information

    def upper_bound(self, alpha: float, tau: float) -> float:
        if self.information <= 0:
            return math.inf
        return self.estimate + boundary(self.information, alpha, tau) / self.information

    def confidence_interval(self, alpha: float, tau: float) -> tuple[float, float]:
        """Anytime-valid two-sided (1 - alpha) interval of the difference ((-inf, inf) without data)."""
        if self.information <= 0:
            return -math.inf, math.inf
        half = two_sided_boundary(self.information, alpha, tau) / self.information
        return self.estimate - half, self.estimate + half


@dataclass(frozen=True)
class MeanEvidence:
    """One track's mean (the canary against an absolute floor); i.i.d., so no batching needed."""

    moments: Moments

    @property
    def information(self) -> float:
        variance = self.moments.variance
        return self.moments.n / variance if self.moments.n >= 2 else 0.0

    def upper_bound(self, alpha: float, tau: float) -> float:
        v = self.information
        return self.moments.mean + boundary(v, alpha, tau) / v if v > 0 else math.inf

    def lower_bound(self, alpha: float, tau: float) -> float:
        v = self.information
        return self.moments.mean - boundary(v, alpha, tau) / v if v > 0 else -math.inf


def information_rate(
    canary_rate: float, stable_rate: float, canary_variance: float, stable_variance: float
) -> float:
    """Information per second about the difference at these labelled-request rates (0 if a track has none)."""
    if canary_rate <= 0 or stable_rate <= 0:
        return 0.0
    return 1.0 / (
        max(canary_variance, _MIN_VARIANCE) / canary_rate + max(stable_variance, _MIN_VARIANCE) / stable_rate
    )


@lru_cache(maxsize=256)  # a function of the objective's constants only; costly (nested root finding)
def information_needed(drift: float, alpha: float, tau: float, power: float = 0.9) -> float:
    """Intrinsic time at which a true ``drift`` (distance from the null, > 0) crosses the boundary
    with probability ``power``: the smallest ``V`` with ``drift·V - z_power·sqrt(V) >= b(V)``.

    ``inf`` when ``drift <= 0`` (the decision is never expected)."""
    from scipy.optimize import brentq
    from scipy.special import ndtri

    if drift <= 0:
        return math.inf
    z = float(ndtri(power))

    def gap(v: float) -> float:
        return drift * v - z * math.sqrt(v) - boundary(v, alpha, tau)

    high = 1.0 / drift**2
    while gap(high) < 0:
        high *= 2.0
        if high > 1e15:
            return math.inf
    low = high / 2.0 if gap(high / 2.0) < 0 else 0.0
    return float(brentq(gap, low, high, xtol=1e-6 * high))
