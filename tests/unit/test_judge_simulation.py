"""Simulated rollouts through the real planner and the sequential judge: the false-promotion rate
stays <= alpha however often the judge looks, and equal or better canaries are promoted.

Each rollout is a canary of 1.1.0 over 1.0.0 with per-request NDCG@3 drawn from Beta
distributions (sd 0.25), labelled requests split by the canary weight, looks every 30 s on the
evidence accumulated since the rollout began. "Worse by the margin" is the least favourable
case of H0 (canary - stable = -maxDegradation exactly); anything worse is promoted less often.
Run with ``-s`` to see the rates; ``benchmarks/judge_power.py`` prints the full table.
"""

from __future__ import annotations

from dataclasses import replace

from rankops.operator.testing.simulation import (
    Scenario,
    SimulationResult,
    planned_analysis_duration,
    simulate_rollouts,
    with_effect,
)

ROLLOUTS = 1000
ALPHA = 0.05
BASE = Scenario(alpha=ALPHA, max_degradation=0.02, sd=0.25, feedback_per_second=50.0)


def report(name: str, result: SimulationResult) -> None:
    print(
        f"\n{name}: promoted {result.promoted}/{result.rollouts} = {result.promotion_rate:.3f} "
        f"(+-{result.standard_error(result.promotion_rate):.3f}), rolled back {result.rollback_rate:.3f} "
        f"{dict(result.rollback_reasons)}, undecided {result.undecided}, mean looks {result.mean_looks:.2f} "
        f"+ {result.mean_untested_looks:.2f} short of samples, "
        f"median promotion {result.median_promotion_s}s, median rollback {result.median_rollback_s}s"
    )


def bound(result: SimulationResult) -> float:
    """alpha plus three binomial standard errors at alpha."""
    return ALPHA + 3 * result.standard_error(ALPHA)


def test_single_analysis_step_false_promotion_rate_within_alpha() -> None:
    """One analysis step: every look of the whole deadline could promote."""
    scenario = with_effect(replace(BASE, steps=(20, 100)), -BASE.max_degradation)
    result = simulate_rollouts(scenario, ROLLOUTS, seed=20260301)
    report("single step, canary worse by exactly the margin", result)
    assert result.undecided == 0
    assert result.promotion_rate <= bound(result)


def test_multi_step_false_promotion_rate_within_alpha() -> None:
    scenario = with_effect(BASE, -BASE.max_degradation)
    result = simulate_rollouts(scenario, ROLLOUTS, seed=20260302)
    report("steps 10/25/50/100, canary worse by exactly the margin", result)
    assert result.promotion_rate <= bound(result)


def test_low_traffic_false_promotion_rate_within_alpha() -> None:
    """At 5 req/s early looks lack samples and carry them forward: the bound holds too."""
    scenario = with_effect(replace(BASE, feedback_per_second=5.0, steps=(20, 100)), -BASE.max_degradation)
    result = simulate_rollouts(scenario, ROLLOUTS, seed=20260303)
    report("5 req/s, single step, canary worse by exactly the margin", result)
    assert result.mean_untested_looks > 0.5  # the case under test: early looks lack samples
    assert result.promotion_rate <= bound(result)


def test_equal_and_better_canaries_are_promoted_and_worse_rolled_back() -> None:
    planned = replace(BASE, max_analysis_duration_s=planned_analysis_duration(BASE))
    equal = simulate_rollouts(with_effect(planned, 0.0), 300, seed=11)
    report(f"equal canary, deadline {planned.max_analysis_duration_s:g}s from the planner", equal)
    better = simulate_rollouts(with_effect(BASE, +0.02), 300, seed=12)
    report("canary better by 0.02", better)
    worse = simulate_rollouts(with_effect(BASE, -0.05), 300, seed=13)
    report("canary worse by 0.05", worse)
    assert equal.promotion_rate >= 0.85
    assert better.promotion_rate >= 0.95
    assert worse.promoted == 0 and worse.rollback_reasons["AnalysisFailed"] >= 0.95 * worse.rollouts


def test_low_traffic_with_the_planners_deadline_promotes_an_equal_canary() -> None:
    low = replace(BASE, feedback_per_second=10.0, max_ticks=400)
    low = replace(low, max_analysis_duration_s=planned_analysis_duration(low))
    result = simulate_rollouts(with_effect(low, 0.0), 150, seed=14)
    report(f"10 req/s, equal canary, deadline {low.max_analysis_duration_s:g}s", result)
    assert result.no_analysis_data == 0
    assert result.promotion_rate >= 0.75


def test_no_samples_within_the_deadline_gives_up() -> None:
    """At 0.5 labelled req/s the 10 % canary needs ~1000 s for 50 samples: more than progressDeadline."""
    result = simulate_rollouts(with_effect(replace(BASE, feedback_per_second=0.5), 0.0), 50, seed=15)
    report("0.5 req/s (never enough samples within 600 s)", result)
    assert result.no_analysis_data == result.rollouts and result.mean_looks == 0
    assert 600 <= result.mean_duration_s <= 630
