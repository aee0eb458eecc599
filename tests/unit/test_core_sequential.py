"""The anytime-valid confidence sequence: its boundary, its coverage under continuous looks, planning."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import log_ndtr

from rankops.operator.core.sequential import (
    DifferenceEvidence,
    MeanEvidence,
    Moments,
    boundary,
    information_needed,
    information_rate,
)


def _mixture(s: float, v: float, tau: float) -> float:
    a = v + 1 / tau**2
    return 2 / math.sqrt(1 + tau**2 * v) * math.exp(s * s / (2 * a) + float(log_ndtr(s / math.sqrt(a))))


@given(
    v=st.floats(min_value=0.0, max_value=1e8),
    alpha=st.floats(min_value=1e-4, max_value=0.5),
    tau=st.floats(min_value=1e-3, max_value=10.0),
)
@settings(max_examples=200, deadline=None)
def test_boundary_is_where_the_mixture_martingale_reaches_one_over_alpha(
    v: float, alpha: float, tau: float
) -> None:
    b = boundary(v, alpha, tau)
    assert b > 0
    assert math.log(_mixture(b, v, tau)) == pytest.approx(math.log(1 / alpha), abs=1e-6)


def test_boundary_grows_with_information_and_with_confidence() -> None:
    values = [boundary(v, 0.05, 0.02) for v in (1e2, 1e4, 1e6)]
    assert values == sorted(values)
    assert boundary(1e4, 0.01, 0.02) > boundary(1e4, 0.05, 0.02)
    # the bound on the mean (b/V) shrinks as evidence accumulates
    assert boundary(1e6, 0.05, 0.02) / 1e6 < boundary(1e4, 0.05, 0.02) / 1e4


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="alpha"):
        boundary(1.0, 0.0, 0.02)
    with pytest.raises(ValueError, match="tau"):
        boundary(1.0, 0.05, 0.0)
    with pytest.raises(ValueError, match="both tracks"):
        DifferenceEvidence().add_batch(Moments(), Moments(5, 4, 3.5), 0.06, 0.06)


def test_crossing_rate_under_the_null_stays_below_alpha_however_often_one_looks() -> None:
    # 4,000 Gaussian score paths, 400 looks each, time-varying batch information (allocation
    # changes like canary steps): the share that ever crosses the boundary is <= alpha.
    rng = np.random.default_rng(7)
    alpha, tau = 0.05, 0.02
    per_batch = np.repeat([1000.0, 2500.0, 5000.0, 10000.0], 100)
    info = np.cumsum(per_batch)
    bounds = np.array([boundary(v, alpha, tau) for v in info])
    paths = np.cumsum(rng.normal(size=(4000, per_batch.size)) * np.sqrt(per_batch), axis=1)
    crossed = (paths >= bounds).any(axis=1).mean()
    assert crossed <= alpha
    # and it is not vacuous: a fixed-sample one-sided z-test at every look would cross far more often
    naive = (paths >= 1.645 * np.sqrt(info)).any(axis=1).mean()
    assert naive > 3 * alpha


def test_difference_evidence_pools_batches_by_inverse_variance() -> None:
    ev = DifferenceEvidence()
    ev = ev.add_batch(Moments(100, 70, 51), Moments(900, 648, 490), 0.0625, 0.0625)
    ev = ev.add_batch(Moments(400, 284, 205), Moments(600, 432, 326), 0.0625, 0.0625)
    w1 = 1 / (0.0625 / 100 + 0.0625 / 900)
    w2 = 1 / (0.0625 / 400 + 0.0625 / 600)
    assert ev.information == pytest.approx(w1 + w2)
    assert ev.estimate == pytest.approx((w1 * (0.70 - 0.72) + w2 * (0.71 - 0.72)) / (w1 + w2))
    assert ev.batches == 2
    assert ev.lower_bound(0.05, 0.02) < ev.estimate < ev.upper_bound(0.05, 0.02)


def test_no_evidence_bounds_nothing() -> None:
    assert DifferenceEvidence().lower_bound(0.05, 0.02) == -math.inf
    assert DifferenceEvidence().upper_bound(0.05, 0.02) == math.inf
    assert MeanEvidence(Moments(1, 0.5, 0.25)).upper_bound(0.05, 0.02) == math.inf


def test_mean_evidence_bounds_a_track_mean() -> None:
    rng = np.random.default_rng(3)
    x = rng.beta(2.0, 2.0, size=5000)  # mean 0.5
    ev = MeanEvidence(Moments(x.size, float(x.sum()), float(x @ x)))
    assert ev.lower_bound(0.05, 0.05) < 0.5 < ev.upper_bound(0.05, 0.05)
    assert ev.upper_bound(0.05, 0.05) - ev.lower_bound(0.05, 0.05) < 0.05


def test_moments_arithmetic_and_variance() -> None:
    a, b = Moments(2, 1.0, 0.5), Moments(3, 2.0, 1.5)
    assert a + b == Moments(5, 3.0, 2.0)
    assert (a + b) - b == a
    assert math.isnan(Moments(1, 0.5, 0.25).variance)
    assert Moments(4, 2.0, 1.0).variance == pytest.approx(1e-6)  # identical values: floored, not zero


def test_information_needed_is_where_the_planned_power_is_reached() -> None:
    alpha, tau, drift = 0.05, 0.02, 0.02
    v = information_needed(drift, alpha, tau, power=0.9)
    assert drift * v - 1.2815515655446004 * math.sqrt(v) == pytest.approx(boundary(v, alpha, tau), rel=1e-4)
    assert information_needed(drift, alpha, tau, power=0.5) < v
    assert information_needed(0.0, alpha, tau) == math.inf
    # simulated: a drift-0.02 path reaches the boundary by V with probability about 0.9
    rng = np.random.default_rng(11)
    steps = np.linspace(v / 200, v, 200)
    increments = np.diff(np.concatenate([[0.0], steps]))
    paths = np.cumsum(drift * increments + rng.normal(size=(2000, 200)) * np.sqrt(increments), axis=1)
    bounds = np.array([boundary(s, alpha, tau) for s in steps])
    assert (paths >= bounds).any(axis=1).mean() >= 0.88


def test_information_rate() -> None:
    assert information_rate(5, 45, 0.0625, 0.0625) == pytest.approx(1 / (0.0625 / 5 + 0.0625 / 45))
    assert information_rate(0, 45, 0.0625, 0.0625) == 0.0
