"""The planner with the sequential judge: harm ends at once, "not yet" waits within the step's
deadline and never promotes, evidence is stored and restarts with each rollout, short evidence warns."""

from __future__ import annotations

from datetime import timedelta

from rankops.operator.core.evidence import Evidence, ObjectiveEvidence
from rankops.operator.core.rollout import RolloutState
from rankops.operator.core.sequential import DifferenceEvidence, Moments
from rankops.operator.core.verdict import ObjectiveResult, Outcome, Verdict

from .test_core_rollout import Driver, condition, make_spec, plan_rollout, started

EVIDENCE = Evidence(
    (
        ObjectiveEvidence(
            "ndcg", Moments(100, 72, 55), Moments(900, 648, 500), DifferenceEvidence(5000, -10, 1)
        ),
    )
)


def collecting(now: object, eta_s: float | None = 60.0) -> Verdict:
    result = ObjectiveResult(
        name="ndcg",
        metric="ndcg_at_3",
        outcome=Outcome.INCONCLUSIVE,
        reason="CollectingEvidence",
        message="ndcg: not decided yet",
        canary_n=100,
        stable_n=900,
        canary_needed=400,
        stable_needed=3600,
        eta_s=eta_s,
    )
    return Verdict(
        outcome=Outcome.INCONCLUSIVE,
        reason="CollectingEvidence",
        message="ndcg: not decided yet",
        objectives=(result,),
        at=now,  # type: ignore[arg-type]
        collecting=True,
        evidence=EVIDENCE,
    )


def harm(now: object) -> Verdict:
    return Verdict(
        outcome=Outcome.FAIL,
        reason="WorseThanStable",
        message="ndcg: worse shown",
        at=now,  # type: ignore[arg-type]
        harm_shown=True,
        evidence=EVIDENCE,
    )


def run_look(d: Driver, seconds: float, v: Verdict | None) -> None:
    d.now += timedelta(seconds=seconds)
    plan = plan_rollout(d.spec, d.status, v, d.now, annotations=d.annotations, observed=d.observed)
    d.status = plan.status
    d.events += [(e.type, e.reason) for e in plan.events]


def test_harm_shown_rolls_back_at_once_whatever_the_failure_limit() -> None:
    d = started(make_spec(analysis={"sloRef": {"name": "q"}, "interval": "30s", "failureLimit": 5}))
    run_look(d, 30, harm(d.now + timedelta(seconds=30)))
    assert d.status["phase"] == "RolledBack"
    assert d.status["history"][-1]["reason"] == "AnalysisFailed"
    assert ("Warning", "AnalysisFailed") in d.events


def test_collecting_counts_toward_no_limit_and_stores_the_evidence() -> None:
    d = started()  # inconclusiveLimit 3, progressDeadline 10m
    for _ in range(10):
        run_look(d, 30, collecting(d.now + timedelta(seconds=30)))
        assert d.status["phase"] == "Progressing"
    state = RolloutState.from_status(d.status)
    assert state.evidence == EVIDENCE
    assert d.status.get("stepInconclusive", 0) == 0
    assert "collecting evidence" in d.status["message"]
    assert d.status["lastAnalysis"]["collectingEvidence"] is True
    assert d.status["lastAnalysis"]["evidence"].startswith("ndcg: canary 100/400")


def test_no_decision_within_the_deadline_times_out_never_promotes() -> None:
    spec = make_spec(analysis={"sloRef": {"name": "q"}, "interval": "30s", "maxAnalysisDuration": "5m"})
    d = started(spec)
    for _ in range(9):
        run_look(d, 30, collecting(d.now + timedelta(seconds=30)))
        assert d.status["phase"] == "Progressing"
    run_look(d, 30, collecting(d.now + timedelta(seconds=30)))  # 300 s after readiness
    assert d.status["phase"] == "RolledBack"
    assert d.status["history"][-1]["reason"] == "AnalysisTimedOut"
    assert d.status["stableVersion"] == "1.0.0"


def test_timeout_without_auto_rollback_pauses_with_the_reason() -> None:
    spec = make_spec(
        analysis={"sloRef": {"name": "q"}, "interval": "30s", "maxAnalysisDuration": "1m"}, autoRollback=False
    )
    d = started(spec)
    run_look(d, 30, collecting(d.now + timedelta(seconds=30)))
    run_look(d, 30, collecting(d.now + timedelta(seconds=30)))
    assert d.status["phase"] == "Paused" and d.status["pauseReason"] == "AnalysisTimedOut"
    assert condition(d.status, "Progressing")["reason"] == "AnalysisTimedOut"


def test_short_evidence_warns_once_per_step() -> None:
    spec = make_spec(analysis={"sloRef": {"name": "q"}, "interval": "30s", "maxAnalysisDuration": "5m"})
    d = started(spec)
    for _ in range(3):
        run_look(d, 30, collecting(d.now + timedelta(seconds=30), eta_s=3600))
    assert d.events.count(("Warning", "EvidenceShort")) == 1
    assert d.status["evidenceWarnedStep"] == 0
    d2 = started(spec)
    run_look(d2, 30, collecting(d2.now + timedelta(seconds=30), eta_s=60))
    assert ("Warning", "EvidenceShort") not in d2.events


def test_a_new_rollout_starts_without_evidence() -> None:
    d = started()
    run_look(d, 30, collecting(d.now + timedelta(seconds=30)))
    assert "evidence" in d.status
    d.set_version("1.2.0")
    run_look(d, 1, None)
    assert d.status["canaryVersion"] == "1.2.0"
    assert "evidence" not in d.status and "evidenceWarnedStep" not in d.status
