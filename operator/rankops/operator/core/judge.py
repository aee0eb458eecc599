"""The canary judge: Pass, Fail or Inconclusive from accumulated evidence. Pure and deterministic.

Public API (its inputs and outputs, ``ObjectiveData`` and ``Verdict``, are ``verdict``'s; the
accumulated state is ``evidence``'s):

- ``judge(objectives, data, *, evidence=None, now=None, elapsed_s=None, min_samples=None,
  look=1, planned_looks=1) -> Verdict`` where ``data`` maps objective name -> ``ObjectiveData``
  (missing name = no data). Summary objectives' data are the tracks' exact increases *since
  the rollout started* (``elapsed_s`` seconds ago); ``evidence`` is what earlier looks
  consumed (``status.evidence``); the verdict carries the evidence after this look.
- ``judge_objective(objective, data, *, evidence=None, ...) -> (ObjectiveResult, ObjectiveEvidence)``.

Rules
-----
Per summary objective (``ndcg_at_3``, ``error_rate``), with ``d`` = canary - stable oriented
so that positive is better (``lowerIsBetter`` flips the sign), ``m`` = ``maxDegradation``:

1. A failed query -> Inconclusive (``MetricsUnavailable``); no canary data -> Inconclusive
   (``NoData``). Never Pass without data.
2. Absolute floor -> Fail (``BreachedFloor``) when either the samples that arrived since the
   last consumed look (at least ``minSamples``) have a one-sided (1 - alpha) upper bound below
   ``breach`` (a canary that turns bad mid-rollout is caught at the next look; counted toward
   ``failureLimit``), or the whole rollout's canary mean has an anytime-valid upper bound below
   it (conclusive).
3. The new samples of both tracks since the last consumed look form one batch of the
   anytime-valid comparison of ``core.sequential`` (a normal-mixture confidence sequence for
   ``d``; see its docstring for the method, the citations and the assumptions) when each track
   brought at least ``minSamples``; otherwise they are carried to the next look
   (``NotEnoughSamples`` until a first batch exists: no test ran).
4. On the accumulated evidence: upper bound of ``d`` below ``-m`` -> Fail (``WorseThanStable``,
   harm shown: conclusive); lower bound above ``-m`` -> Pass (``NonInferior``) unless the
   canary's mean is beyond ``breach`` (Inconclusive ``BelowBreach``); else Inconclusive
   (``CollectingEvidence``: not yet).

Both bounds hold at every look simultaneously (Ville's inequality), so however often the
planner looks and whenever it stops, P(a canary worse than stable by >= m is ever passed) <=
alpha, and a promotion (a Pass at every analysis step) is such an event: the false-promotion
rate stays <= alpha with no correction for looks, steps or objectives (intersection-union).
The mixing scales are fixed before any data from the margin: ``NONINFERIORITY_MIXING_SCALE_PER_MARGIN``
x m for the lower bound (an equal canary sits m above the null), ``HARM_MIXING_SCALE_PER_MARGIN``
x m for the upper bound (large harms are the ones to stop fast), ``FLOOR_MIXING_SCALE`` for the
floor.

Evidence planning: from the labelled-request rates since the previous batch and the tracks'
variances, each result reports the information a decision needs if the canary is as good as
stable (``PLANNED_POWER``), the samples per track that takes and the seconds to it
(``etaSeconds``), which the planner compares with the step's deadline.

Value objectives (golden NDCG, latency p95, custom): beyond ``breach`` -> Fail; worse than
the stable value by more than ``maxDegradation`` -> Fail; otherwise Pass; no value ->
Inconclusive. These are deterministic readings, not samples, so no test applies.

The verdict over all objectives: any Fail -> Fail (``harm_shown`` when a conclusive rule
fired); else any failed query -> Inconclusive with ``metrics_unavailable``; else all Pass ->
Pass; else Inconclusive, with ``insufficient_data`` when no comparison has evidence yet
(every summary objective lacks data) and every value objective passed or lacks data too, and
``collecting`` when every objective not passed is still collecting evidence or lacks data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .evidence import Evidence, ObjectiveEvidence, evidence_plan
from .sequential import MeanEvidence, Moments, information_needed
from .spec import Objective
from .verdict import (
    ObjectiveData,
    ObjectiveResult,
    Outcome,
    TrackSummary,
    Verdict,
    finite,
)

__all__ = [
    "FLOOR_MIXING_SCALE",
    "HARM_MIXING_SCALE_PER_MARGIN",
    "NONINFERIORITY_MIXING_SCALE_PER_MARGIN",
    "PLANNED_POWER",
    "judge",
    "judge_objective",
]

NONINFERIORITY_MIXING_SCALE_PER_MARGIN = 1.0
HARM_MIXING_SCALE_PER_MARGIN = 4.0
FLOOR_MIXING_SCALE = 0.1  # NDCG units: a canary 0.1 below its floor is caught within a few batches
PLANNED_POWER = 0.95
# Fail reasons of anytime-valid rules: shown once, they hold (module docstring).


def _t_quantile(p: float, df: float) -> float:
    from scipy import special  # imported on first use: importing the core stays fast for the shell

    return float(special.stdtrit(df, p))


def _t_sf(x: float, df: float) -> float:
    from scipy import special

    return float(special.stdtr(df, -x))


def judge_objective(
    objective: Objective,
    data: ObjectiveData | None,
    *,
    evidence: ObjectiveEvidence | None = None,
    min_samples: int | None = None,
    now: datetime | None = None,
    elapsed_s: float | None = None,
) -> tuple[ObjectiveResult, ObjectiveEvidence]:
    """Judge one objective (rules in the module docstring); the evidence after this look."""
    prior = evidence or ObjectiveEvidence(name=objective.name)
    base: dict[str, Any] = {"name": objective.name, "metric": objective.metric}
    if data is None:
        data = ObjectiveData()
    if data.error:
        return ObjectiveResult(
            **base,
            outcome=Outcome.INCONCLUSIVE,
            reason="MetricsUnavailable",
            message=f"query failed: {data.error}",
            alpha_look=objective.comparison.alpha,
        ), prior
    if objective.kind == "value":
        return _judge_value(objective, data, objective.comparison.alpha), prior
    needed = max(2, min_samples or objective.comparison.min_samples)  # a variance needs two samples
    return _judge_summary(objective, data, prior, needed, now, elapsed_s)


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


def _oriented(summary: TrackSummary, sign: float) -> Moments:
    # Flipping the sum's sign flips the mean and keeps the variance: "positive is better".
    return Moments(summary.n, sign * summary.total, summary.squares_total)


def _judge_summary(
    objective: Objective,
    data: ObjectiveData,
    prior: ObjectiveEvidence,
    min_samples: int,
    now: datetime | None,
    elapsed_s: float | None,
) -> tuple[ObjectiveResult, ObjectiveEvidence]:
    """Rules 1-4 of the module docstring; returns the result and the evidence after this look."""
    name = objective.name
    alpha = objective.comparison.alpha
    margin = objective.comparison.max_degradation
    sign = 1.0 if objective.higher_is_better else -1.0
    base: dict[str, Any] = {"name": name, "metric": objective.metric, "alpha_look": alpha}
    c, s = data.canary, data.stable
    if c is None or c.n <= 0:
        return ObjectiveResult(
            **base, outcome=Outcome.INCONCLUSIVE, reason="NoData", message=f"{name}: no canary samples yet"
        ), prior
    base.update(canary_mean=c.mean, canary_n=c.n)
    if s is not None and s.n > 0:
        base.update(stable_mean=s.mean, stable_n=s.n, difference=c.mean - s.mean)
    total_c = _oriented(c, sign)
    total_s = _oriented(s, sign) if s is not None else Moments()
    batch_c, batch_s = total_c - prior.canary, total_s - prior.stable

    # 2a. The recent batch (what came since the last consumed look) surely beyond breach: a canary
    # that turned bad mid-rollout shows here long before it moves the accumulated mean.
    recent = TrackSummary.from_increases(batch_c.n, sign * batch_c.total, batch_c.squares)
    if recent is not None and recent.n >= min_samples:
        far_bound = recent.mean + sign * _t_quantile(1 - alpha, recent.n - 1) * math.sqrt(
            recent.variance / recent.n
        )
        if sign * (far_bound - objective.breach) < 0:
            return ObjectiveResult(
                **base,
                outcome=Outcome.FAIL,
                reason="BreachedFloor",
                message=(
                    f"{name}: canary mean {recent.mean:.4g} over the last {recent.n:g} samples is beyond "
                    f"breach {objective.breach:g} at confidence {1 - alpha:g}"
                ),
            ), prior
    # 2b. The whole rollout's canary mean beyond breach, anytime-valid: conclusive.
    floor_bound = MeanEvidence(total_c).upper_bound(alpha, FLOOR_MIXING_SCALE)
    if c.n >= min_samples and floor_bound < sign * objective.breach:
        return ObjectiveResult(
            **base,
            outcome=Outcome.FAIL,
            reason="BreachedFloor",
            message=(
                f"{name}: canary mean {c.mean:.4g} (n={c.n:g}) is beyond breach {objective.breach:g} "
                f"(anytime-valid bound {sign * floor_bound:.4g})"
            ),
            conclusive=True,
        ), prior

    # 3. One more batch when both tracks brought enough new samples; else carry them to the next look.
    evidence = prior
    if batch_c.n >= min_samples and batch_s.n >= min_samples:
        evidence = ObjectiveEvidence(
            name=name,
            canary=total_c,
            stable=total_s,
            difference=prior.difference.add_batch(batch_c, batch_s, total_c.variance, total_s.variance),
            at=now,
        )
    diff = evidence.difference
    comparison = objective.comparison
    scale = NONINFERIORITY_MIXING_SCALE_PER_MARGIN * comparison.max_degradation
    needed = information_needed(comparison.max_degradation, comparison.alpha, scale, PLANNED_POWER)
    plan = evidence_plan(needed, evidence, total_c, total_s, prior, now, elapsed_s)
    base.update(plan)
    if diff.information <= 0:
        short = "canary" if batch_c.n < min_samples else "stable"
        have = batch_c.n if short == "canary" else batch_s.n
        return ObjectiveResult(
            **base,
            outcome=Outcome.INCONCLUSIVE,
            reason="NotEnoughSamples",
            message=f"{name}: {have:g} {short} samples, need {min_samples} for a first batch",
        ), evidence

    lower = diff.lower_bound(alpha, NONINFERIORITY_MIXING_SCALE_PER_MARGIN * margin)
    upper = diff.upper_bound(alpha, HARM_MIXING_SCALE_PER_MARGIN * margin)
    # Report the bounds and the pooled difference in the metric's orientation (canary - stable).
    ci_lower, ci_upper = (lower, upper) if sign > 0 else (-upper, -lower)
    base.update(ci_lower=ci_lower, ci_upper=ci_upper, difference=sign * diff.estimate)
    if upper < -margin:
        return ObjectiveResult(
            **base,
            outcome=Outcome.FAIL,
            reason="WorseThanStable",
            message=(
                f"{name}: canary worse than stable by {-diff.estimate:.4g} over {diff.batches} looks: "
                f"more than {margin:g} shown (anytime-valid bound {upper:.4g})"
            ),
            conclusive=True,
        ), evidence
    if lower > -margin:
        if sign * (c.mean - objective.breach) < 0:
            return ObjectiveResult(
                **base,
                outcome=Outcome.INCONCLUSIVE,
                reason="BelowBreach",
                message=(
                    f"{name}: non-inferior to stable but the canary mean {c.mean:.4g} is beyond breach "
                    f"{objective.breach:g}"
                ),
            ), evidence
        return ObjectiveResult(
            **base,
            outcome=Outcome.PASS,
            reason="NonInferior",
            message=(
                f"{name}: canary vs stable {diff.estimate:+.4g} over {diff.batches} looks: not worse by "
                f"{margin:g} (anytime-valid bound {lower:.4g})"
            ),
        ), evidence
    eta = base.get("eta_s")
    when = "" if eta is None else f"; about {eta:.0f}s to a decision at the current traffic"
    return ObjectiveResult(
        **base,
        outcome=Outcome.INCONCLUSIVE,
        reason="CollectingEvidence",
        message=(
            f"{name}: canary vs stable {diff.estimate:+.4g} over {diff.batches} looks, bounds "
            f"[{lower:.4g}, {upper:.4g}] around -{margin:g}: not decided yet{when}"
        ),
    ), evidence


def judge(
    objectives: Sequence[Objective],
    data: Mapping[str, ObjectiveData],
    *,
    evidence: Evidence | None = None,
    now: datetime | None = None,
    elapsed_s: float | None = None,
    min_samples: int | None = None,
    look: int = 1,
    planned_looks: int = 1,
) -> Verdict:
    """Judge every objective on the evidence so far and combine (module docstring).

    ``min_samples`` (from ``RankingModel.spec.rollout.analysis.minSamples``) overrides each
    objective's ``comparison.minSamples`` when given. ``look`` / ``planned_looks`` are only
    recorded (the comparisons need no correction for looks).
    """
    common: dict[str, Any] = {"look": look, "planned_looks": planned_looks, "at": now}
    if not objectives:
        return Verdict(
            outcome=Outcome.INCONCLUSIVE,
            reason="NoObjectives",
            message="the QualitySLO has no objectives",
            **common,
        )
    stored = evidence or Evidence()
    judged = [
        judge_objective(
            o,
            data.get(o.name),
            evidence=stored.get(o.name),
            min_samples=min_samples,
            now=now,
            elapsed_s=elapsed_s,
        )
        for o in objectives
    ]
    results = tuple(r for r, _ in judged)
    after = stored
    for o, (_, e) in zip(objectives, judged, strict=True):
        if o.kind != "value" and e.difference.batches:
            after = after.with_objective(e)
    common.update(
        objectives=results,
        alpha_look=min(o.comparison.alpha for o in objectives),
        evidence=after if after != stored else None,
    )
    failed = [r for r in results if r.outcome is Outcome.FAIL]
    if failed:
        return Verdict(
            outcome=Outcome.FAIL,
            reason=failed[0].reason,
            message="; ".join(r.message for r in failed),
            harm_shown=any(r.conclusive for r in failed),
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
    collecting = all(r.lacks_data or r.reason == "CollectingEvidence" for r in pending)
    return Verdict(
        outcome=Outcome.INCONCLUSIVE,
        reason=pending[0].reason,
        message="; ".join(r.message for r in pending),
        insufficient_data=untested,
        collecting=collecting and not untested,
        **common,
    )
