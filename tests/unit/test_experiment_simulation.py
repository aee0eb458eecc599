"""Simulated A/B experiments through the real planner and judge: with equal arms the experiment
decides Promote or Keep on NDCG@3 at most alpha of the time, with or without early stopping (however
often it looks), and a real effect is found. ``benchmarks/experiment_power.py`` prints the full table.

Lean settings (a look every 12 h over the 7 days, 0.05 labelled requests per second): the
guarantees do not depend on how often the planner looks.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from rankops.operator.testing.experiment_simulation import (
    ExperimentScenario,
    ExperimentSimulation,
    simulate_experiments,
)

ALPHA = 0.05
BASE = ExperimentScenario(alpha=ALPHA, interval_s=12 * 3600.0, feedback_per_second=0.05)


def bound(result: ExperimentSimulation) -> float:
    """alpha plus three binomial standard errors at alpha."""
    return ALPHA + 3 * result.standard_error(ALPHA)


@pytest.mark.slow  # ~20 s per mode on a shared machine
@pytest.mark.parametrize("early", [False, True], ids=["fixed-horizon", "early-stopping"])
def test_equal_arms_false_decision_rate_within_alpha(early: bool) -> None:
    result = simulate_experiments(replace(BASE, early_stopping=early), 400, seed=41)
    print(f"\nequal arms, early stopping {early}: {dict(result.decisions)} {dict(result.reasons)}")
    assert result.decisions["Undecided"] == 0
    assert result.false_decision_rate <= bound(result)
    assert result.promoted == result.decisions["Promote"]  # Inconclusive keeps stable by default


@pytest.mark.slow
def test_a_real_effect_is_promoted_and_early_stopping_decides_sooner() -> None:
    fixed = simulate_experiments(replace(BASE, effect=0.02), 60, seed=42)
    early = simulate_experiments(replace(BASE, effect=0.02, early_stopping=True), 60, seed=43)
    assert fixed.rate("Promote") >= 0.95 and early.rate("Promote") >= 0.95
    assert early.mean_decision_s < 0.5 * fixed.mean_decision_s == 0.5 * BASE.duration_s
