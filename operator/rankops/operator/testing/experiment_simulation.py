"""Monte Carlo A/B experiments through the real planner and judge, to check the experiment's error
rates and power. Pure (numpy with a caller-given seed, a synthetic clock); used by
``tests/unit/test_experiment_simulation.py`` and ``benchmarks/experiment_power.py``.

``simulate_experiments(scenario, experiments, seed) -> ExperimentSimulation`` runs independent
experiments of version 1.1.0 against stable 1.0.0 with ``spec.rollout.experiment`` (split,
duration, alpha, early stopping as the scenario says). Every ``interval`` (one reconcile, as the
controller runs it) the arms receive labelled requests (Poisson with rate
``feedback_per_second``, split by the canary weight) whose per-request NDCG@3 values are
Beta-distributed with the scenario's means and standard deviation; whenever ``analysis_due``
asks for a look the judge sees the summaries accumulated since the experiment started (as the
shell's exact-increase queries give them) with the evidence the planner stored, and the planner
runs once with that verdict. Each experiment ends with its decision (Promote, Keep,
Inconclusive), the action taken (Promoted or Kept) and the seconds from its start to the decision.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from rankops.operator.core.judge import judge
from rankops.operator.core.rollout import RolloutState, analysis_due, plan_rollout
from rankops.operator.core.spec import (
    AnalysisSpec,
    ExperimentSpec,
    ModelRef,
    RankingModelSpec,
    RolloutSpec,
    ServingSpec,
    Step,
)

from .simulation import add_labelled_traffic, beta_params, ndcg_data, ndcg_objective

__all__ = ["ExperimentScenario", "ExperimentSimulation", "simulate_experiments"]


@dataclass(frozen=True)
class ExperimentScenario:
    stable_mean: float = 0.72
    effect: float = 0.0  # candidate mean - stable mean (NDCG@3)
    sd: float = 0.25
    feedback_per_second: float = 0.05
    weight: int = 50
    duration_s: float = 7 * 24 * 3600.0
    interval_s: float = 6 * 3600.0  # between looks (analysis.interval)
    alpha: float = 0.05
    minimum_effect: float = 0.02
    early_stopping: bool = False
    max_degradation: float = 0.02  # the guardrail's margin (the canary judge's rules)
    min_samples: int = 50
    breach: float = 0.5
    failure_limit: int = 2


@dataclass(frozen=True)
class ExperimentSimulation:
    experiments: int
    decisions: Counter[str] = field(default_factory=Counter)  # Promote / Keep / Inconclusive
    reasons: Counter[str] = field(default_factory=Counter)
    promoted: int = 0  # the action: the candidate became stable
    decision_s: tuple[float, ...] = ()  # seconds from the experiment's start to its decision
    mean_canary_n: float = 0.0
    mean_stable_n: float = 0.0

    def rate(self, decision: str) -> float:
        return self.decisions[decision] / self.experiments

    @property
    def false_decision_rate(self) -> float:
        """Promote or Keep, on NDCG@3 or a guardrail (for equal arms: the rate that must stay <= alpha)."""
        return (self.decisions["Promote"] + self.decisions["Keep"]) / self.experiments

    @property
    def mean_decision_s(self) -> float:
        return statistics.fmean(self.decision_s) if self.decision_s else math.nan

    def standard_error(self, p: float) -> float:
        return math.sqrt(p * (1 - p) / self.experiments)


def _spec(s: ExperimentScenario, version: str) -> RankingModelSpec:
    experiment = ExperimentSpec(
        weight=s.weight,
        duration_s=s.duration_s,
        alpha=s.alpha,
        minimum_effect=s.minimum_effect,
        early_stopping=s.early_stopping,
    )
    return RankingModelSpec(
        model=ModelRef(version=version, uri=f"mem://{version}"),
        serving=ServingSpec(image="sim"),
        rollout=RolloutSpec(
            steps=(Step(weight=s.weight, analysis=True),),
            analysis=AnalysisSpec(slo_ref="sim", interval_s=s.interval_s, failure_limit=s.failure_limit),
            experiment=experiment,
        ),
    )


def simulate_experiments(
    scenario: ExperimentScenario, experiments: int = 1000, seed: int = 0
) -> ExperimentSimulation:
    """Run ``experiments`` simulated A/B experiments (module docstring)."""
    rng = np.random.default_rng(seed)
    objective = ndcg_objective(
        scenario.breach, scenario.max_degradation, scenario.alpha, scenario.min_samples
    )
    a_s, b_s = beta_params(scenario.stable_mean, scenario.sd)
    a_c, b_c = beta_params(scenario.stable_mean + scenario.effect, scenario.sd)
    old, new = _spec(scenario, "1.0.0"), _spec(scenario, "1.1.0")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    base = plan_rollout(old, RolloutState(), None, t0).state
    per_tick = scenario.feedback_per_second * scenario.interval_s
    tick = timedelta(seconds=scenario.interval_s)
    max_ticks = int(scenario.duration_s / scenario.interval_s) + 3
    decisions: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    promoted = 0
    decision_s: list[float] = []
    canary_n = stable_n = 0.0
    for _ in range(experiments):
        state = plan_rollout(new, base, None, t0).state
        sums = np.zeros((2, 3))  # [canary, stable] x [n, total, squares], since the experiment started
        now = t0
        for _tick in range(max_ticks):
            verdict = None
            request = analysis_due(new, state, now)
            if request is not None:
                data = ndcg_data(sums)
                verdict = judge(
                    [objective], data, evidence=request.evidence, now=now, elapsed_s=request.window_s
                )
            opened = state.experiment is None
            state = plan_rollout(new, state, verdict, now).state
            experiment = state.experiment
            if opened and experiment is not None:
                sums[:] = 0.0  # samples count from the experiment's start
            if experiment is not None and experiment.decided:
                break
            add_labelled_traffic(rng, sums, per_tick, state.canary_weight, (a_c, b_c), (a_s, b_s))
            now += tick
        experiment = state.experiment
        if experiment is None or not experiment.decided:
            decisions["Undecided"] += 1
            continue
        decisions[experiment.decision or ""] += 1
        reasons[experiment.reason or ""] += 1
        promoted += state.stable_version == "1.1.0"
        assert experiment.decided_at is not None and experiment.started_at is not None
        decision_s.append((experiment.decided_at - experiment.started_at).total_seconds())
        canary_n += experiment.canary_n or 0.0
        stable_n += experiment.stable_n or 0.0
    return ExperimentSimulation(
        experiments=experiments,
        decisions=decisions,
        reasons=reasons,
        promoted=promoted,
        decision_s=tuple(decision_s),
        mean_canary_n=canary_n / experiments,
        mean_stable_n=stable_n / experiments,
    )
