"""The decision of an A/B experiment, from one analysis look. Pure and deterministic.

``start_experiment(spec, revision, candidate, baseline, now)`` opens the experiment when the
candidate is ready; ``assess(spec, status, verdict, evidence, now, failure_limit)`` folds one
look into it and returns the new ``ExperimentStatus`` (``decision`` set when it is decided).

The primary objective is the QualitySLO's ``ndcg_at_3`` objective. Every objective of the
QualitySLO (the primary too) is also a guardrail, judged each look by the canary judge's rules
(``core.judge``: absolute floor, harm beyond ``maxDegradation``, value objectives such as latency
p95 against their thresholds and the stable track): a Fail shown by an anytime-valid rule, or
``failureLimit`` Fail looks, decide Keep (``GuardrailFailed``) at once.

On NDCG@3, the difference candidate - stable (oriented positive = better):

- without early stopping, Welch's two-sided t test at ``alpha`` on all samples of the experiment,
  once, at ``endsAt`` (interim figures are shown, and decide nothing);
- with early stopping, the anytime-valid two-sided confidence sequence (``core.sequential``,
  mixing scale ``minimumEffect``) at every look; the first look at which it excludes 0 decides,
  and at ``endsAt`` it decides as it stands. The whole procedure keeps P(a wrong decision) <=
  alpha; the price is a wider interval than the fixed-horizon test's at the end.

Interval above 0 -> Promote (``CandidateBetter``); below 0 -> Keep (``CandidateWorse``);
covering 0 at the end -> Inconclusive (``NoSignificantDifference``; ``NoData`` without a single
batch of samples). An Inconclusive experiment keeps the stable version (``onInconclusive: Keep``)
or, with ``onInconclusive: Promote``, promotes the candidate only when the last look passed every
objective (non-inferior within each ``maxDegradation``: "ship if not worse"); never without data.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from ..evidence import Evidence
from ..spec import ExperimentSpec
from ..timeutil import format_time
from ..verdict import Outcome, Verdict
from .statistics import Estimate, confidence_sequence, fixed_horizon
from .status import Action, Decision, ExperimentStatus, Guardrail

__all__ = ["PRIMARY_METRIC", "assess", "start_experiment"]

PRIMARY_METRIC = "ndcg_at_3"


def start_experiment(
    spec: ExperimentSpec, revision: int, candidate: str, baseline: str, now: datetime
) -> ExperimentStatus:
    return ExperimentStatus(
        revision=revision,
        candidate=candidate,
        baseline=baseline,
        weight=spec.weight,
        method="ConfidenceSequence" if spec.early_stopping else "FixedHorizon",
        alpha=spec.alpha,
        started_at=now,
        ends_at=now + timedelta(seconds=spec.duration_s),
        message=f"experiment {candidate} vs {baseline} at {spec.weight}/{100 - spec.weight} "
        f"until {format_time(now + timedelta(seconds=spec.duration_s))}",
    )


def assess(
    spec: ExperimentSpec,
    status: ExperimentStatus,
    verdict: Verdict,
    evidence: Evidence | None,
    now: datetime,
    failure_limit: int,
) -> ExperimentStatus:
    """Fold one look (the canary judge's ``verdict`` over every objective, and the evidence after
    it) into the experiment (module docstring). A decided experiment is returned unchanged."""
    if status.decided:
        return status
    guardrails = tuple(Guardrail(r.name, str(r.outcome), r.reason) for r in verdict.objectives)
    status = replace(status, looks=status.looks + 1, guardrails=guardrails)
    primary = next((r for r in verdict.objectives if r.metric == PRIMARY_METRIC), None)
    if primary is None:
        return _decide(
            status, "Inconclusive", "NoPrimaryObjective", "Kept", now,
            f"the QualitySLO has no {PRIMARY_METRIC} objective to judge the experiment on",
        )  # fmt: skip

    # Guardrails: the canary judge's Fail verdicts.
    failed = [r for r in verdict.objectives if r.outcome is Outcome.FAIL]
    if failed:
        failures = status.guardrail_failures + 1
        status = replace(status, guardrail_failures=failures)
        if verdict.harm_shown or failures >= failure_limit:
            names = ", ".join(f"{r.name} ({r.reason})" for r in failed)
            return _decide(
                _with_figures(status, spec, evidence, primary.name),
                "Keep", "GuardrailFailed", "Kept", now,
                f"guardrail failed: {names}: {'; '.join(r.message for r in failed)}",
            )  # fmt: skip

    status = _with_figures(status, spec, evidence, primary.name)
    estimate = _estimate(status)
    ended = status.ends_at is not None and now >= status.ends_at
    if spec.early_stopping or ended:
        if estimate.sign > 0 and not failed:
            return _decide(status, "Promote", "CandidateBetter", "Promoted", now, _because(status, "better"))
        if estimate.sign < 0:
            return _decide(status, "Keep", "CandidateWorse", "Kept", now, _because(status, "worse"))
    if not ended:
        until = format_time(status.ends_at) if status.ends_at else "?"
        rule = "early stopping on" if spec.early_stopping else "interim figures decide nothing"
        return replace(
            status,
            message=f"experiment {status.candidate} vs {status.baseline}: {status.effect_text} "
            f"({rule}); decides by {until}",
        )
    if status.difference is None:
        return _decide(status, "Inconclusive", "NoData", "Kept", now, "no labelled samples on both arms")
    ship = spec.on_inconclusive == "Promote" and verdict.outcome is Outcome.PASS
    why = _because(status, "not significantly different")
    if spec.on_inconclusive == "Promote":
        why += (
            "; onInconclusive Promote: every objective non-inferior"
            if ship
            else "; onInconclusive Promote, but not every objective passed the last look: kept"
        )
    return _decide(
        status, "Inconclusive", "NoSignificantDifference", "Promoted" if ship else "Kept", now, why
    )


def _with_figures(
    status: ExperimentStatus, spec: ExperimentSpec, evidence: Evidence | None, name: str
) -> ExperimentStatus:
    e = (evidence or Evidence()).get(name)
    status = replace(
        status,
        objective=name,
        canary_n=e.canary.n or None,
        stable_n=e.stable.n or None,
        canary_mean=e.canary.mean if e.canary.n else None,
        stable_mean=e.stable.mean if e.stable.n else None,
    )
    if spec.early_stopping:
        return status.with_estimate(confidence_sequence(e.difference, spec.alpha, spec.minimum_effect))
    return status.with_estimate(fixed_horizon(e.canary, e.stable, spec.alpha))


def _estimate(status: ExperimentStatus) -> Estimate:
    if status.difference is None or status.ci_lower is None or status.ci_upper is None:
        return Estimate(0.0, -1.0, 1.0)  # no interval yet: covers 0
    return Estimate(status.difference, status.ci_lower, status.ci_upper, status.p_value)


def _because(status: ExperimentStatus, how: str) -> str:
    level = f"{1 - status.alpha:.0%}"
    test = "anytime-valid interval" if status.method == "ConfidenceSequence" else "Welch t interval"
    return f"{status.objective}: candidate {how} ({status.effect_text}, {level} {test})"


def _decide(
    status: ExperimentStatus,
    decision: Decision,
    reason: str,
    action: Action,
    now: datetime,
    message: str,
) -> ExperimentStatus:
    early = status.ends_at is not None and now < status.ends_at
    return replace(
        status,
        decision=decision,
        reason=reason,
        action=action,
        decided_at=now,
        early=early,
        message=f"{decision}: {message}",
    )
