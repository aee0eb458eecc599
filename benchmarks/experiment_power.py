"""False-decision rate, power and time to a decision of A/B experiments (``spec.rollout.experiment``),
by simulating experiments through the real planner and judge, with and without early stopping.

    python benchmarks/experiment_power.py [--experiments 500] [--null-experiments 2000]
        [--rate 0.05] [--interval 6h] [--seed 1]

Scenario: a 50/50 split for 7 days (the runbook's), labelled feedback at ``--rate`` per second in
all (Poisson; about 15,000 labelled requests per arm at 0.05/s), per-request NDCG@3 Beta with sd
0.25 around a stable mean of 0.72, alpha 0.05, a look every ``--interval`` (the early stop's
guarantee holds however often it looks; the fixed-horizon test decides once, at the end), the
confidence sequence's mixing scale ``minimumEffect`` 0.02. For each true effect (candidate -
stable) and mode it prints the share of experiments decided Promote, Keep and Inconclusive (with
the binomial standard error of the decisive rate), the mean and median days to the decision and
the mean labelled samples per arm at it. The first row of each mode is equal arms: its
"false" column (Promote or Keep, on NDCG@3 or a guardrail) must stay <= alpha. "theory" is the
fixed-horizon test's power from the normal approximation at the expected sample sizes, the
baseline the simulated fixed-horizon power should match. The last line is one JSON object with
the headline figures.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from scipy.special import ndtr, ndtri

from rankops.operator.core.timeutil import parse_duration
from rankops.operator.testing.experiment_simulation import (
    ExperimentScenario,
    ExperimentSimulation,
    simulate_experiments,
)

EFFECTS = (0.0, 0.005, 0.01, 0.02, -0.01)
DAY = 86400.0


def theoretical_power(s: ExperimentScenario) -> float:
    """Two-sided fixed-horizon z-test power at the expected samples per arm."""
    n = s.feedback_per_second * s.duration_s
    n_c, n_s = n * s.weight / 100, n * (100 - s.weight) / 100
    se = s.sd * math.sqrt(1 / n_c + 1 / n_s)
    z = float(ndtri(1 - s.alpha / 2))
    d = abs(s.effect) / se
    return float(ndtr(d - z) + ndtr(-d - z))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--experiments", type=int, default=500, help="per row with an effect")
    parser.add_argument("--null-experiments", type=int, default=2000, help="for the equal-arms rows")
    parser.add_argument("--rate", type=float, default=0.05, help="labelled requests per second, both arms")
    parser.add_argument("--interval", default="6h", help="time between looks")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    base = ExperimentScenario(feedback_per_second=args.rate, interval_s=parse_duration(args.interval))
    print(
        f"split {base.weight}/{100 - base.weight}, {base.duration_s / DAY:g} days, "
        f"{args.rate:g} labelled req/s, "
        f"look every {args.interval}, sd {base.sd}, alpha {base.alpha}, minimumEffect {base.minimum_effect}\n"
    )
    header = (
        f"{'mode':<15} {'effect':>7} {'runs':>5} {'promote':>8} {'keep':>6} {'inconcl':>8} {'false':>6} "
        f"{'+-se':>6} {'theory':>6} {'mean d':>6} {'med d':>6} {'n/arm':>7}"
    )
    print(header)
    print("-" * len(header))
    started = time.perf_counter()
    results: dict[tuple[bool, float], ExperimentSimulation] = {}
    for early in (False, True):
        mode = "early stopping" if early else "fixed horizon"
        for i, effect in enumerate(EFFECTS):
            scenario = replace(base, effect=effect, early_stopping=early)
            runs = args.null_experiments if effect == 0.0 else args.experiments
            r = simulate_experiments(scenario, runs, seed=args.seed + i)
            results[(early, effect)] = r
            decisive = r.false_decision_rate if effect == 0.0 else r.rate("Promote" if effect > 0 else "Keep")
            false = f"{r.false_decision_rate:.3f}" if effect == 0.0 else "-"
            theory = "-" if effect == 0.0 else f"{theoretical_power(scenario):.3f}"
            median = statistics.median(r.decision_s) / DAY if r.decision_s else math.nan
            per_arm = (r.mean_canary_n + r.mean_stable_n) / 2
            print(
                f"{mode:<15} {effect:>+7.3f} {runs:>5} {r.rate('Promote'):>8.3f} {r.rate('Keep'):>6.3f} "
                f"{r.rate('Inconclusive'):>8.3f} {false:>6} {r.standard_error(decisive):>6.3f} {theory:>6} "
                f"{r.mean_decision_s / DAY:>6.2f} {median:>6.2f} {per_arm:>7.0f}"
            )
        print()
    summary = {
        "false_decision_rate": {
            "fixed_horizon": results[(False, 0.0)].false_decision_rate,
            "early_stopping": results[(True, 0.0)].false_decision_rate,
        },
        "power_0.01": {
            "fixed_horizon": results[(False, 0.01)].rate("Promote"),
            "early_stopping": results[(True, 0.01)].rate("Promote"),
            "theory_fixed_horizon": round(theoretical_power(replace(base, effect=0.01)), 3),
        },
        "power_0.02": {
            "fixed_horizon": results[(False, 0.02)].rate("Promote"),
            "early_stopping": results[(True, 0.02)].rate("Promote"),
        },
        "mean_decision_days_0.02": {
            "fixed_horizon": round(results[(False, 0.02)].mean_decision_s / DAY, 2),
            "early_stopping": round(results[(True, 0.02)].mean_decision_s / DAY, 2),
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
