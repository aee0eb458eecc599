"""Error rates and power of the canary judge, by simulating rollouts through the real planner.

    python benchmarks/judge_power.py [--rollouts 1000] [--seed 1]

Prints, per scenario (labelled traffic rate, rollout steps) and true effect
(canary mean - stable mean, NDCG@3, per-request sd 0.25, margin 0.02, alpha 0.05):
the promotion rate (with its binomial standard error), the rollback rate, mean looks and
mean rollout duration. Rows with effect <= -margin are false promotions and must stay <= alpha;
the "naive" rows judge every look at the full alpha, showing why the looks are corrected.
"looks" are tested looks; "short" are looks the judge could not test for lack of samples
(n < minSamples), which count toward no limit; "no data" is the share of rollouts given up
(NoAnalysisData) for want of samples within progressDeadline. The "old rule" rows count looks
short of samples as Inconclusive, as the planner did before.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from rankops.operator.testing.simulation import Scenario, simulate_rollouts, with_effect

EFFECTS = (-0.05, -0.03, -0.02, -0.01, 0.0, 0.01, 0.02, 0.03)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rollouts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    base = Scenario()
    scenarios = [
        ("50 req/s, steps 10/25/50/100", base),
        ("50 req/s, steps 20/100", replace(base, steps=(20, 100))),
        ("200 req/s, steps 10/25/50/100", replace(base, feedback_per_second=200.0)),
        ("10 req/s, steps 10/25/50/100", replace(base, feedback_per_second=10.0)),
        ("5 req/s, steps 10/25/50/100", replace(base, feedback_per_second=5.0)),
        (
            "5 req/s, steps 10/25/50/100, old rule",
            replace(base, feedback_per_second=5.0, count_untested_looks=True),
        ),
        (
            "50 req/s, steps 20/100, naive alpha per look",
            replace(base, steps=(20, 100), correct_for_looks=False),
        ),
    ]
    print(
        f"margin {base.max_degradation}, alpha {base.alpha}, sd {base.sd}, interval {base.interval_s:g}s, "
        f"failureLimit {base.failure_limit}, inconclusiveLimit {base.inconclusive_limit}, "
        f"{args.rollouts} rollouts per row\n"
    )
    header = f"{'scenario':<46} {'effect':>7} {'promoted':>9} {'+-se':>6} "
    header += f"{'rolled back':>11} {'no data':>7} {'looks':>6} {'short':>6} {'secs':>6}"
    print(header)
    print("-" * len(header))
    started = time.perf_counter()
    for name, scenario in scenarios:
        for i, effect in enumerate(EFFECTS):
            r = simulate_rollouts(with_effect(scenario, effect), args.rollouts, seed=args.seed + i)
            flag = "  <- false promotion: must be <= alpha" if effect <= -scenario.max_degradation else ""
            print(
                f"{name:<46} {effect:>+7.2f} {r.promotion_rate:>9.3f} "
                f"{r.standard_error(r.promotion_rate):>6.3f} "
                f"{r.rollback_rate:>11.3f} {r.no_analysis_data / r.rollouts:>7.3f} {r.mean_looks:>6.2f} "
                f"{r.mean_untested_looks:>6.2f} {r.mean_duration_s:>6.0f}{flag}"
            )
        print()
    print(f"({time.perf_counter() - started:.0f}s)")


if __name__ == "__main__":
    main()
