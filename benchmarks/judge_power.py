"""Error rates, power and time to a decision of the canary judge, by simulating rollouts
through the real planner and the sequential (anytime-valid) judge.

    python benchmarks/judge_power.py [--rollouts 1000] [--seed 1]

Prints, per scenario (labelled traffic rate, rollout steps, analysis deadline) and true effect
(canary mean - stable mean, NDCG@3, per-request sd 0.25, margin 0.02, alpha 0.05, interval
30 s, failureLimit 2, inconclusiveLimit 3): the promotion rate (with its binomial standard
error), the rollback rate and why (harm shown, analysis deadline), the median seconds to a
promotion and to a rollback. Rows with effect <= -margin are false promotions and must stay <=
alpha. "deadline" is the step's analysis deadline: progressDeadline (600 s, as today's
scenarios) or the evidence planner's figure for the first step (``planned``). The last line is
one JSON object with the headline figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from rankops.operator.testing.simulation import (
    Scenario,
    SimulationResult,
    planned_analysis_duration,
    simulate_rollouts,
    with_effect,
)

EFFECTS = (-0.05, -0.03, -0.02, -0.01, 0.0, 0.01, 0.02, 0.03)


def planned(scenario: Scenario) -> Scenario:
    deadline = planned_analysis_duration(scenario)
    ticks = int(4 * deadline / scenario.interval_s) + 50
    return replace(scenario, max_analysis_duration_s=deadline, max_ticks=max(scenario.max_ticks, ticks))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rollouts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    base = Scenario()
    scenarios: list[tuple[str, str, Scenario]] = []
    for rate in (50.0, 10.0, 5.0):
        s = replace(base, feedback_per_second=rate)
        scenarios.append((f"{rate:g} req/s, steps 10/25/50/100", f"{rate:g}", planned(s)))
        scenarios.append((f"{rate:g} req/s, steps 10/25/50/100", f"{rate:g}-600s", s))
    scenarios.append(("50 req/s, steps 20/100", "50-20/100", replace(base, steps=(20, 100))))
    scenarios.append(("200 req/s, steps 10/25/50/100", "200", replace(base, feedback_per_second=200.0)))
    print(
        f"margin {base.max_degradation}, alpha {base.alpha}, sd {base.sd}, interval {base.interval_s:g}s, "
        f"failureLimit {base.failure_limit}, inconclusiveLimit {base.inconclusive_limit}, "
        f"{args.rollouts} rollouts per row\n"
    )
    header = f"{'scenario':<34} {'deadline':>8} {'effect':>7} {'promoted':>9} {'+-se':>6} "
    header += f"{'rolled back':>11} {'harm':>6} {'timeout':>7} {'t promo':>7} {'t back':>7}"
    print(header)
    print("-" * len(header))
    started = time.perf_counter()
    results: dict[tuple[str, float], SimulationResult] = {}
    for name, key, scenario in scenarios:
        deadline = scenario.max_analysis_duration_s or scenario.progress_deadline_s
        for i, effect in enumerate(EFFECTS):
            r = simulate_rollouts(with_effect(scenario, effect), args.rollouts, seed=args.seed + i)
            results[(key, effect)] = r
            flag = "  <- false promotion: must be <= alpha" if effect <= -scenario.max_degradation else ""
            harm = r.rollback_reasons["AnalysisFailed"] / r.rollouts
            timeout = r.rollback_reasons["AnalysisTimedOut"] / r.rollouts
            t_promo = "-" if r.median_promotion_s is None else f"{r.median_promotion_s:.0f}"
            t_back = "-" if r.median_rollback_s is None else f"{r.median_rollback_s:.0f}"
            print(
                f"{name:<34} {deadline:>7.0f}s {effect:>+7.2f} {r.promotion_rate:>9.3f} "
                f"{r.standard_error(r.promotion_rate):>6.3f} {r.rollback_rate:>11.3f} {harm:>6.3f} "
                f"{timeout:>7.3f} {t_promo:>7} {t_back:>7}{flag}"
            )
        print()
    elapsed = time.perf_counter() - started
    false = [r.promotion_rate for (_, e), r in results.items() if e <= -base.max_degradation]
    summary = {
        "false_promotion_max": max(false),
        "equal_promoted": {k: results[(k, 0.0)].promotion_rate for k in ("50", "10", "5", "50-600s")},
        "better_0.02_promoted": {k: results[(k, 0.02)].promotion_rate for k in ("50", "10", "5", "50-600s")},
        "worse_0.05_median_rollback_s": results[("50", -0.05)].median_rollback_s,
        "median_decision_s": {k: results[(k, 0.0)].median_promotion_s for k in ("50", "10", "5")},
        "planned_deadline_s": {
            k: s.max_analysis_duration_s for _, k, s in scenarios if k in ("50", "10", "5")
        },
        "seconds": round(elapsed, 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
