"""Monte Carlo rollouts through the real planner and judge, to check the judge's error rates.

Pure (numpy with a caller-given seed, a synthetic clock); used by
``tests/unit/test_judge_simulation.py`` (false-promotion rate <= alpha) and
``benchmarks/judge_power.py`` (power tables). Not used by the operator at run time.

``simulate_rollouts(scenario, rollouts, seed) -> SimulationResult`` runs ``rollouts``
independent canary rollouts of version 1.1.0 over stable 1.0.0. Every ``interval`` the
tracks receive labelled requests (Poisson with rate ``feedback_per_second``, split by the
canary weight) whose per-request NDCG@3 values are Beta-distributed with the scenario's
means and standard deviation; each tick is one reconcile, as the controller runs it: whenever
``analysis_due`` asks for a look the judge sees the summaries accumulated since the rollout
started, exactly as the shell's exact-increase queries would give them, and the planner runs once
with that verdict. A rollout ends promoted, rolled back, or (after
``max_ticks``) undecided. Looks the judge could not test for lack of samples are counted
apart (``mean_untested_looks``): the planner does not count them toward any limit, and gives
up (``NoAnalysisData``) only after ``progress_deadline_s`` without a tested look.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np

from rankops.operator.core.judge import judge
from rankops.operator.core.rollout import RolloutState, analysis_due, plan_rollout
from rankops.operator.core.spec import (
    AnalysisSpec,
    Comparison,
    ModelRef,
    Objective,
    RankingModelSpec,
    RolloutSpec,
    ServingSpec,
    Step,
)
from rankops.operator.core.verdict import ObjectiveData, TrackSummary

__all__ = ["Scenario", "SimulationResult", "simulate_rollouts", "with_effect"]


@dataclass(frozen=True)
class Scenario:
    stable_mean: float = 0.72
    canary_mean: float = 0.70
    sd: float = 0.25
    feedback_per_second: float = 50.0
    steps: tuple[int, ...] = (10, 25, 50, 100)
    interval_s: float = 30.0
    failure_limit: int = 2
    inconclusive_limit: int = 3
    max_degradation: float = 0.02
    alpha: float = 0.05
    min_samples: int = 50
    breach: float = 0.5
    correct_for_looks: bool = True
    max_ticks: int = 200
    progress_deadline_s: float = 600.0
    count_untested_looks: bool = False  # the behaviour before: looks short of samples count as Inconclusive


@dataclass(frozen=True)
class SimulationResult:
    rollouts: int
    promoted: int
    rolled_back: int
    undecided: int
    mean_looks: float  # tested looks (the ones that count toward the limits)
    mean_duration_s: float
    mean_untested_looks: float = 0.0
    no_analysis_data: int = 0  # rollbacks for want of samples (part of rolled_back)

    @property
    def promotion_rate(self) -> float:
        return self.promoted / self.rollouts

    @property
    def rollback_rate(self) -> float:
        return self.rolled_back / self.rollouts

    def standard_error(self, p: float) -> float:
        """Binomial standard error of a rate ``p`` over this many rollouts."""
        return math.sqrt(p * (1 - p) / self.rollouts)


def _beta_params(mean: float, sd: float) -> tuple[float, float]:
    k = mean * (1 - mean) / sd**2 - 1
    if k <= 0:
        raise ValueError(f"sd {sd} too large for a Beta with mean {mean}")
    return mean * k, (1 - mean) * k


def _spec(scenario: Scenario, version: str) -> RankingModelSpec:
    return RankingModelSpec(
        model=ModelRef(version=version, uri=f"mem://{version}"),
        serving=ServingSpec(image="sim"),
        rollout=RolloutSpec(
            steps=tuple(Step(weight=w) for w in scenario.steps),
            progress_deadline_s=scenario.progress_deadline_s,
            analysis=AnalysisSpec(
                slo_ref="sim",
                interval_s=scenario.interval_s,
                failure_limit=scenario.failure_limit,
                inconclusive_limit=scenario.inconclusive_limit,
            ),
        ),
    )


def simulate_rollouts(scenario: Scenario, rollouts: int = 1000, seed: int = 0) -> SimulationResult:
    """Run ``rollouts`` simulated canary rollouts (module docstring)."""
    rng = np.random.default_rng(seed)
    objective = Objective(
        name="ndcg",
        metric="ndcg_at_3",
        target=max(scenario.breach + 0.01, 0.70),
        breach=scenario.breach,
        comparison=Comparison(
            max_degradation=scenario.max_degradation, alpha=scenario.alpha, min_samples=scenario.min_samples
        ),
    )
    a_s, b_s = _beta_params(scenario.stable_mean, scenario.sd)
    a_c, b_c = _beta_params(scenario.canary_mean, scenario.sd)
    old, new = _spec(scenario, "1.0.0"), _spec(scenario, "1.1.0")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    base = plan_rollout(old, RolloutState(), None, t0).state
    per_tick = scenario.feedback_per_second * scenario.interval_s
    step = timedelta(seconds=scenario.interval_s)
    promoted = rolled_back = undecided = no_analysis_data = 0
    looks_total = untested_total = 0
    duration_total = 0.0
    for _ in range(rollouts):
        state = plan_rollout(new, base, None, t0).state
        sums = np.zeros((2, 3))  # [canary, stable] x [n, total, squares]
        now = t0
        outcome = None
        for _tick in range(scenario.max_ticks):
            n = int(rng.poisson(per_tick))
            n_c = int(rng.binomial(n, state.canary_weight / 100))
            for row, (count, a, b) in enumerate(((n_c, a_c, b_c), (n - n_c, a_s, b_s))):
                if count:
                    x = rng.beta(a, b, size=count)
                    sums[row] += (count, x.sum(), np.dot(x, x))
            now += step
            verdict = None
            request = analysis_due(new, state, now)
            if request is not None:
                data = {
                    "ndcg": ObjectiveData(
                        canary=TrackSummary.from_increases(*sums[0]),
                        stable=TrackSummary.from_increases(*sums[1]),
                    )
                }
                planned = request.planned_looks if scenario.correct_for_looks else 1
                verdict = judge([objective], data, look=request.look, planned_looks=planned, now=now)
                if scenario.count_untested_looks:
                    verdict = replace(verdict, insufficient_data=False)
                if verdict.insufficient_data:
                    untested_total += 1
                else:
                    looks_total += 1
            state = plan_rollout(new, state, verdict, now).state
            if state.stable_version == "1.1.0":
                outcome = "promoted"
                break
            if state.phase in ("RolledBack", "Failed"):
                outcome = "rolled_back"
                no_analysis_data += state.history[-1].reason == "NoAnalysisData"
                break
        duration_total += (now - t0).total_seconds()
        if outcome == "promoted":
            promoted += 1
        elif outcome == "rolled_back":
            rolled_back += 1
        else:
            undecided += 1
    return SimulationResult(
        rollouts=rollouts,
        promoted=promoted,
        rolled_back=rolled_back,
        undecided=undecided,
        mean_looks=looks_total / rollouts,
        mean_duration_s=duration_total / rollouts,
        mean_untested_looks=untested_total / rollouts,
        no_analysis_data=no_analysis_data,
    )


def with_effect(scenario: Scenario, difference: float) -> Scenario:
    """The scenario with ``canary_mean = stable_mean + difference``."""
    return replace(scenario, canary_mean=scenario.stable_mean + difference)
