"""The canary judge: Pass, Fail or Inconclusive from summary statistics. Pure and deterministic.

Public API (its inputs and outputs, ``ObjectiveData`` and ``Verdict``, are ``verdict``'s):

- ``judge(objectives, data, *, look=1, planned_looks=1, now=None, min_samples=None) -> Verdict``
  where ``data`` maps objective name -> ``ObjectiveData`` (missing name = no data).
- ``judge_objective(objective, data, *, alpha_look, min_samples=None) -> ObjectiveResult``.
- ``look_alpha(alpha, planned_looks) -> float``: the per-look significance level.

Rules
-----
Per summary objective (``ndcg_at_3``, ``error_rate``), with ``d`` = canary - stable oriented
so that positive is better (``lowerIsBetter`` flips the sign), ``m`` = ``maxDegradation``:

1. A failed query -> Inconclusive (``MetricsUnavailable``); no canary data -> Inconclusive
   (``NoData``); canary or stable ``n < minSamples`` -> Inconclusive (``NotEnoughSamples``).
   Never Pass without data.
2. Absolute floor: with enough canary samples, the one-sided (1 - alpha) upper confidence
   bound of the canary mean below ``breach`` (lower bound above it for lowerIsBetter)
   -> Fail (``BreachedFloor``).
3. Relative, Welch's t from summary statistics, as a non-inferiority test of
   H0: d <= -m against H1: d > -m. Pass (``NonInferior``) only when the one-sided
   (1 - alpha_look) lower confidence bound of ``d`` lies above -m (p < alpha_look) *and* the
   canary's point estimate is not beyond ``breach``. Fail (``WorseThanStable``) when the
   one-sided (1 - alpha) upper bound of ``d`` lies below -m: the canary is significantly
   worse than stable by more than the margin. Anything else -> Inconclusive
   (``NotSignificant``).

Value objectives (golden NDCG, latency p95, custom): beyond ``breach`` -> Fail; worse than
the stable value by more than ``maxDegradation`` -> Fail; otherwise Pass; no value ->
Inconclusive. These are deterministic readings, not samples, so no test applies.

The verdict over all objectives: any Fail -> Fail; else any failed query -> Inconclusive
with ``metrics_unavailable``; else all Pass -> Pass; else Inconclusive, with
``insufficient_data`` when no summary objective was tested (every one lacks data) and every
value objective passed or lacks data too.

Repeated looks (why the false-promotion rate stays <= alpha)
------------------------------------------------------------
Data accumulate over a rollout and the judge looks at them every ``interval``. A look
counts only when a test ran: a verdict with ``insufficient_data`` (no objective tested for
lack of samples) is recorded but counts toward neither limit, and the planner bounds such
waiting by ``progressDeadline`` instead (``NoAnalysisData``). Within one analysis step the
planner therefore takes at most ``L = failureLimit + inconclusiveLimit - 1`` *tested* looks
(per-step counters that do not reset each other; the step ends at the first Pass). The
judge runs every look's non-inferiority test at ``alpha_look = alpha / L`` (Bonferroni
alpha spending, valid under any correlation between the looks' accumulating data), so
under H0 P(some look of a step passes) <= L · alpha/L = alpha. Skipping untested looks
keeps this: a look at which objective k was not tested cannot pass on k, and when a look is
tested depends only on the sample counts (traffic), not on the values, so each of the at
most L tested looks is still a level alpha/L test. A promotion needs a Pass on *every*
analysis step, and on every objective at that look, so the promotion event is contained in
"step 1 passed on objective k": P(false promotion) <= alpha (intersection-union), without
dividing alpha further across steps or objectives. (A look where k passed but another
objective lacked data is Inconclusive and *does* count: k was tested.)
The Fail side uses the unadjusted alpha: a false Fail only costs a rollback, and the
planner needs ``failureLimit`` of them. ``tests/unit/test_judge_simulation.py`` and
``benchmarks/judge_power.py`` check the rate and report the power by simulation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .spec import Objective
from .verdict import (
    ObjectiveData,
    ObjectiveResult,
    Outcome,
    Verdict,
    finite,
)

__all__ = ["judge", "judge_objective", "look_alpha"]


def look_alpha(alpha: float, planned_looks: int) -> float:
    """Bonferroni share of ``alpha`` for one of ``planned_looks`` looks."""
    return alpha / max(1, planned_looks)


def _t_quantile(p: float, df: float) -> float:
    from scipy import special  # imported on first use: importing the core stays fast for the shell

    return float(special.stdtrit(df, p))


def _t_sf(x: float, df: float) -> float:
    from scipy import special

    return float(special.stdtr(df, -x))


def judge_objective(
    objective: Objective, data: ObjectiveData | None, *, alpha_look: float, min_samples: int | None = None
) -> ObjectiveResult:
    """Judge one objective (rules in the module docstring)."""
    base: dict[str, Any] = {"name": objective.name, "metric": objective.metric}
    if data is None:
        data = ObjectiveData()
    if data.error:
        return ObjectiveResult(
            **base,
            outcome=Outcome.INCONCLUSIVE,
            reason="MetricsUnavailable",
            message=f"query failed: {data.error}",
            alpha_look=alpha_look,
        )
    if objective.kind == "value":
        return _judge_value(objective, data, alpha_look)
    needed = max(2, min_samples or objective.comparison.min_samples)  # a variance needs two samples
    return _judge_summary(objective, data, alpha_look, needed)


def _judge_value(objective: Objective, data: ObjectiveData, alpha_look: float) -> ObjectiveResult:
    sign = 1.0 if objective.higher_is_better else -1.0
    base: dict[str, Any] = {"name": objective.name, "metric": objective.metric, "alpha_look": alpha_look}
    if not finite(data.canary_value):
        return ObjectiveResult(
            **base,
            outcome=Outcome.INCONCLUSIVE,
            reason="NoData",
            message=f"{objective.name}: no canary value",
        )
    canary = float(data.canary_value)  # type: ignore[arg-type]
    stable = float(data.stable_value) if finite(data.stable_value) else None  # type: ignore[arg-type]
    base.update(canary_mean=canary, stable_mean=stable)
    if stable is not None:
        base["difference"] = canary - stable
    if sign * (canary - objective.breach) < 0:
        return ObjectiveResult(
            **base,
            outcome=Outcome.FAIL,
            reason="BreachedFloor",
            message=f"{objective.name}: canary {canary:.4g} beyond breach {objective.breach:g}",
        )
    margin = objective.comparison.max_degradation
    if stable is not None and sign * (canary - stable) < -margin:
        return ObjectiveResult(
            **base,
            outcome=Outcome.FAIL,
            reason="WorseThanStable",
            message=(
                f"{objective.name}: canary {canary:.4g} worse than stable "
                f"{stable:.4g} by more than {margin:g}"
            ),
        )
    return ObjectiveResult(
        **base,
        outcome=Outcome.PASS,
        reason="WithinThresholds",
        message=f"{objective.name}: canary {canary:.4g} within thresholds",
    )


def _judge_summary(
    objective: Objective, data: ObjectiveData, alpha_look: float, min_samples: int
) -> ObjectiveResult:
    name = objective.name
    alpha = objective.comparison.alpha
    margin = objective.comparison.max_degradation
    sign = 1.0 if objective.higher_is_better else -1.0
    base: dict[str, Any] = {"name": name, "metric": objective.metric, "alpha_look": alpha_look}
    c, s = data.canary, data.stable
    if c is None or c.n <= 0:
        return ObjectiveResult(
            **base,
            outcome=Outcome.INCONCLUSIVE,
            reason="NoData",
            message=f"{name}: no canary samples in the window",
        )
    base.update(canary_mean=c.mean, canary_n=c.n)
    if s is not None and s.n > 0:
        base.update(stable_mean=s.mean, stable_n=s.n, difference=c.mean - s.mean)
    if c.n < min_samples:
        return ObjectiveResult(
            **base,
            outcome=Outcome.INCONCLUSIVE,
            reason="NotEnoughSamples",
            message=f"{name}: {c.n:g} canary samples, need {min_samples}",
        )

    # Absolute floor: the canary is surely beyond breach.
    se_c = math.sqrt(c.variance / c.n)
    far_bound = c.mean + sign * _t_quantile(1 - alpha, c.n - 1) * se_c  # the bound on the good side
    if sign * (far_bound - objective.breach) < 0:
        return ObjectiveResult(
            **base,
            outcome=Outcome.FAIL,
            reason="BreachedFloor",
            message=(
                f"{name}: canary mean {c.mean:.4g} (n={c.n:g}) is beyond breach "
                f"{objective.breach:g} at confidence {1 - alpha:g}"
            ),
        )

    if s is None or s.n < min_samples:
        have = 0.0 if s is None else s.n
        return ObjectiveResult(
            **base,
            outcome=Outcome.INCONCLUSIVE,
            reason="NotEnoughSamples",
            message=f"{name}: {have:g} stable samples, need {min_samples}",
        )

    # Welch's t on d = sign·(canary - stable); H0: d <= -margin.
    a, b = c.variance / c.n, s.variance / s.n
    se = math.sqrt(a + b)
    d = sign * (c.mean - s.mean)
    if se == 0.0:
        lower_look = upper_fail = d
        p_value = 0.0 if d > -margin else 1.0
        q_look = 0.0
    else:
        df = (a + b) ** 2 / (a**2 / (c.n - 1) + b**2 / (s.n - 1))
        q_look = _t_quantile(1 - alpha_look, df)
        lower_look = d - q_look * se
        upper_fail = d + _t_quantile(1 - alpha, df) * se
        p_value = _t_sf((d + margin) / se, df)
    # Report the bounds in the metric's orientation (canary - stable).
    lo, hi = d - q_look * se, d + q_look * se
    ci_lower, ci_upper = (lo, hi) if sign > 0 else (-hi, -lo)
    base.update(ci_lower=ci_lower, ci_upper=ci_upper, p_value=p_value)
    if upper_fail < -margin:
        return ObjectiveResult(
            **base,
            outcome=Outcome.FAIL,
            reason="WorseThanStable",
            message=(
                f"{name}: canary {c.mean:.4g} vs stable {s.mean:.4g}: worse by more "
                f"than {margin:g} at confidence {1 - alpha:g}"
            ),
        )
    if lower_look > -margin:
        if sign * (c.mean - objective.breach) < 0:
            return ObjectiveResult(
                **base,
                outcome=Outcome.INCONCLUSIVE,
                reason="BelowBreach",
                message=(
                    f"{name}: non-inferior to stable but the canary mean "
                    f"{c.mean:.4g} is beyond breach {objective.breach:g}"
                ),
            )
        return ObjectiveResult(
            **base,
            outcome=Outcome.PASS,
            reason="NonInferior",
            message=(
                f"{name}: canary {c.mean:.4g} vs stable {s.mean:.4g}: not worse by "
                f"{margin:g} (p={p_value:.3g} < {alpha_look:.3g})"
            ),
        )
    return ObjectiveResult(
        **base,
        outcome=Outcome.INCONCLUSIVE,
        reason="NotSignificant",
        message=(
            f"{name}: canary {c.mean:.4g} vs stable {s.mean:.4g}: non-inferiority "
            f"not shown yet (p={p_value:.3g}, need < {alpha_look:.3g})"
        ),
    )


def judge(
    objectives: Sequence[Objective],
    data: Mapping[str, ObjectiveData],
    *,
    look: int = 1,
    planned_looks: int = 1,
    now: datetime | None = None,
    min_samples: int | None = None,
) -> Verdict:
    """Judge every objective at look ``look`` of ``planned_looks`` and combine (module docstring).

    ``min_samples`` (from ``RankingModel.spec.rollout.analysis.minSamples``) overrides each
    objective's ``comparison.minSamples`` when given.
    """
    if not objectives:
        return Verdict(
            outcome=Outcome.INCONCLUSIVE,
            reason="NoObjectives",
            message="the QualitySLO has no objectives",
            look=look,
            planned_looks=planned_looks,
            at=now,
        )
    alphas = {o.name: look_alpha(o.comparison.alpha, planned_looks) for o in objectives}
    results = tuple(
        judge_objective(o, data.get(o.name), alpha_look=alphas[o.name], min_samples=min_samples)
        for o in objectives
    )
    common: dict[str, Any] = {
        "objectives": results,
        "look": look,
        "planned_looks": planned_looks,
        "at": now,
        "alpha_look": min(alphas.values()),
    }
    failed = [r for r in results if r.outcome is Outcome.FAIL]
    if failed:
        return Verdict(
            outcome=Outcome.FAIL,
            reason=failed[0].reason,
            message="; ".join(r.message for r in failed),
            **common,
        )
    unavailable = [r for r in results if r.reason == "MetricsUnavailable"]
    if unavailable:
        return Verdict(
            outcome=Outcome.INCONCLUSIVE,
            reason="MetricsUnavailable",
            message="; ".join(r.message for r in unavailable),
            metrics_unavailable=True,
            **common,
        )
    pending = [r for r in results if r.outcome is not Outcome.PASS]
    if not pending:
        return Verdict(
            outcome=Outcome.PASS,
            reason="AllObjectivesPassed",
            message="; ".join(r.message for r in results),
            **common,
        )
    # No test ran when every summary objective lacks data and every value objective (a reading,
    # not a test) passed or lacks data too.
    untested = all(
        r.lacks_data or (o.kind == "value" and r.outcome is Outcome.PASS)
        for o, r in zip(objectives, results, strict=True)
    )
    return Verdict(
        outcome=Outcome.INCONCLUSIVE,
        reason=pending[0].reason,
        message="; ".join(r.message for r in pending),
        insufficient_data=untested,
        **common,
    )
