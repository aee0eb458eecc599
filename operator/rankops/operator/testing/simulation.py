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
started, exactly as the shell's exact-increase queries would give them, with the evidence the
planner stored, and the planner runs once with that verdict. A rollout ends promoted, rolled
back (``rollback_reasons`` counts why: harm shown, floor, ``AnalysisTimedOut`` when a step's
analysis deadline passed undecided, ``NoAnalysisData``), or (after ``max_ticks``) undecided.
Looks the judge could not test for lack of samples are counted apart (``mean_untested_looks``).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import numpy as np

from rankops.operator.core import judge as judge_rules
from rankops.operator.core.judge import judge
from rankops.operator.core.rollout import RolloutState, analysis_due, plan_rollout
from rankops.operator.core.sequential import information_needed, information_rate
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

__all__ = ["Scenario", "SimulationResult", "planned_analysis_duration", "simulate_rollouts", "with_effect"]


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
    max_ticks: int = 200
    progress_deadline_s: float = 600.0
    max_analysis_duration_s: float | None = None  # per step; unset: progress_deadline_s


@dataclass(frozen=True)
class SimulationResult:
    rollouts: int
    promoted: int
    rolled_back: int
    undecided: int
    mean_looks: float  # looks with data (tested)
    mean_duration_s: float
    mean_untested_looks: float = 0.0
    no_analysis_data: int = 0  # rollbacks for want of samples (part of rolled_back)
    rollback_reasons: Counter[str] = field(default_factory=Counter)
    median_promotion_s: float | None = None  # seconds from the rollout's start to its promotion
    median_rollback_s: float | None = None  # ... to its rollback

    @property
    def promotion_rate(self) -> float:
        return self.promoted / self.rollouts

    @property
    def rollback_rate(self) -> float:
        return self.rolled_back / self.rollouts

    def standard_error(self, p: float) -> float:
        """Binomial standard error of a rate ``p`` over this many rollouts."""
        return math.sqrt(p * (1 - p) / self.rollouts)


def beta_params(mean: float, sd: float) -> tuple[float, float]:
    k = mean * (1 - mean) / sd**2 - 1
    if k <= 0:
        raise ValueError(f"sd {sd} too large for a Beta with mean {mean}")
    return mean * k, (1 - mean) * k


def ndcg_objective(breach: float, max_degradation: float, alpha: float, min_samples: int) -> Objective:
    """The simulated rollouts' one objective: NDCG@3 with a floor and a canary-vs-stable test."""
    return Objective(
        name="ndcg",
        metric="ndcg_at_3",
        target=max(breach + 0.01, 0.70),
        breach=breach,
        comparison=Comparison(max_degradation=max_degradation, alpha=alpha, min_samples=min_samples),
    )


def add_labelled_traffic(
    rng: np.random.Generator,
    sums: np.ndarray,
    per_tick: float,
    canary_weight: int,
    canary_beta: tuple[float, float],
    stable_beta: tuple[float, float],
) -> None:
    """One tick of labelled requests (Poisson, split by the canary weight), each track's per-request
    NDCG@3 drawn from its beta, added to ``sums`` ([canary, stable] x [n, total, squares])."""
    n = int(rng.poisson(per_tick))
    n_c = int(rng.binomial(n, canary_weight / 100))
    for row, (count, (a, b)) in enumerate(((n_c, canary_beta), (n - n_c, stable_beta))):
        if count:
            x = rng.beta(a, b, size=count)
            sums[row] += (count, x.sum(), np.dot(x, x))


def ndcg_data(sums: np.ndarray) -> dict[str, ObjectiveData]:
    """What the metrics adapter would read for the objective from the accumulated ``sums``."""
    return {
        "ndcg": ObjectiveData(
            canary=TrackSummary.from_increases(*sums[0]),
            stable=TrackSummary.from_increases(*sums[1]),
        )
    }


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
                max_analysis_duration_s=scenario.max_analysis_duration_s,
            ),
        ),
    )


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def simulate_rollouts(scenario: Scenario, rollouts: int = 1000, seed: int = 0) -> SimulationResult:
    """Run ``rollouts`` simulated canary rollouts (module docstring)."""
    rng = np.random.default_rng(seed)
    objective = ndcg_objective(
        scenario.breach, scenario.max_degradation, scenario.alpha, scenario.min_samples
    )
    a_s, b_s = beta_params(scenario.stable_mean, scenario.sd)
    a_c, b_c = beta_params(scenario.canary_mean, scenario.sd)
    old, new = _spec(scenario, "1.0.0"), _spec(scenario, "1.1.0")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    base = plan_rollout(old, RolloutState(), None, t0).state
    per_tick = scenario.feedback_per_second * scenario.interval_s
    step = timedelta(seconds=scenario.interval_s)
    looks_total = untested_total = 0
    duration_total = 0.0
    outcomes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    promotion_s: list[float] = []
    rollback_s: list[float] = []
    for _ in range(rollouts):
        state = plan_rollout(new, base, None, t0).state
        sums = np.zeros((2, 3))  # [canary, stable] x [n, total, squares]
        now = t0
        outcome = "undecided"
        for _tick in range(scenario.max_ticks):
            add_labelled_traffic(rng, sums, per_tick, state.canary_weight, (a_c, b_c), (a_s, b_s))
            now += step
            verdict = None
            request = analysis_due(new, state, now)
            if request is not None:
                data = ndcg_data(sums)
                verdict = judge(
                    [objective],
                    data,
                    evidence=request.evidence,
                    now=now,
                    elapsed_s=request.window_s,
                    look=request.look,
                    planned_looks=request.planned_looks,
                )
                if verdict.insufficient_data:
                    untested_total += 1
                else:
                    looks_total += 1
            state = plan_rollout(new, state, verdict, now).state
            if state.stable_version == "1.1.0":
                outcome = "promoted"
                promotion_s.append((now - t0).total_seconds())
                break
            if state.phase in ("RolledBack", "Failed"):
                outcome = "rolled_back"
                reasons[state.history[-1].reason] += 1
                rollback_s.append((now - t0).total_seconds())
                break
        duration_total += (now - t0).total_seconds()
        outcomes[outcome] += 1
    return SimulationResult(
        rollouts=rollouts,
        promoted=outcomes["promoted"],
        rolled_back=outcomes["rolled_back"],
        undecided=outcomes["undecided"],
        mean_looks=looks_total / rollouts,
        mean_duration_s=duration_total / rollouts,
        mean_untested_looks=untested_total / rollouts,
        no_analysis_data=reasons["NoAnalysisData"],
        rollback_reasons=reasons,
        median_promotion_s=_median(promotion_s),
        median_rollback_s=_median(rollback_s),
    )


def planned_analysis_duration(scenario: Scenario) -> float:
    """What the evidence planner says the first step needs if the canary is as good as stable.

    The information a decision needs (``judge.PLANNED_POWER``) over the information per second at
    the first step's split of the labelled traffic, rounded up to whole analysis intervals: the
    ``maxAnalysisDuration`` a user would set from ``status.lastAnalysis``.
    """
    m, alpha = scenario.max_degradation, scenario.alpha
    scale = judge_rules.NONINFERIORITY_MIXING_SCALE_PER_MARGIN * m
    needed = information_needed(m, alpha, scale, judge_rules.PLANNED_POWER)
    w = scenario.steps[0] / 100
    variance = scenario.sd**2
    rate = scenario.feedback_per_second
    seconds = needed / information_rate(rate * w, rate * (1 - w), variance, variance)
    return math.ceil(seconds / scenario.interval_s) * scenario.interval_s


def with_effect(scenario: Scenario, difference: float) -> Scenario:
    """The scenario with ``canary_mean = stable_mean + difference``."""
    return replace(scenario, canary_mean=scenario.stable_mean + difference)
