"""The remediation ladder and the post-promotion decision: order, bounds, cooldown, urgency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rankops.operator.core.slo.ladder import LadderState, Observation, advance
from rankops.operator.core.slo.policy import PostPromotion, RemediationPolicy
from rankops.operator.core.slo.promotion import (
    PromotionRecord,
    Revision,
    TrackedStable,
    decide_after_promotion,
    observe_stable,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = RemediationPolicy(settle_s=30, cooldown_s=600, max_attempts=2)
P1 = Observation("Breached", "ndcg", 0.55, "P1")
P2 = Observation("Breached", "ndcg", 0.62, "P2")
MET = Observation("Met", "ndcg", 0.75)
NODATA = Observation("NoData", "ndcg")


def run(
    observations: list[tuple[int, Observation]], retrain: bool = False, policy: RemediationPolicy = POLICY
) -> list[tuple[int, str | None, str]]:
    state = LadderState()
    out: list[tuple[int, str | None, str]] = []
    for at, obs in observations:
        decision = advance(state, obs, policy, T0 + timedelta(seconds=at), retrain)
        state = LadderState.from_status(decision.state.to_status())  # survives the status round trip
        out.append((at, decision.action, decision.reason))
    return out


def test_runbook_order_invalidate_restart_verify_retrain() -> None:
    steps = run([(0, P1), (10, P1), (30, P1), (40, P1), (60, P1), (70, P1)], retrain=True)
    assert steps == [
        (0, "InvalidateCaches", "InvalidateCaches"),
        (10, None, "Settling"),
        (30, "RollingRestart", "RollingRestart"),
        (40, None, "Settling"),
        (60, "RequestRetrain", "RetrainRequested"),
        (70, None, "Cooldown"),
    ]


def test_resolved_after_restart() -> None:
    steps = run([(0, P1), (30, P1), (45, MET), (60, MET), (61, MET)])
    assert [s[1:] for s in steps] == [
        ("InvalidateCaches", "InvalidateCaches"),
        ("RollingRestart", "RollingRestart"),
        (None, "Settling"),
        (None, "RemediationResolved"),
        (None, "Healthy"),
    ]


def test_without_retrain_policy_the_run_ends_still_breaching_and_attempts_are_bounded() -> None:
    steps = run([(0, P1), (30, P1), (60, P1), (700, P1), (730, P1), (760, P1), (5000, P1), (9000, P1)])
    actions = [a for _, a, _ in steps if a]
    assert actions == ["InvalidateCaches", "RollingRestart"] * 2
    assert steps[2][2] == "StillBreaching" and steps[-1][2] == "AttemptsExhausted"


def test_p2_records_only_and_no_data_never_acts() -> None:
    assert run([(0, P2), (1000, P2)]) == [(0, None, "RecordedOnly"), (1000, None, "RecordedOnly")]
    assert run([(0, NODATA)]) == [(0, None, "NoData")]


def test_recovery_resets_attempts_but_not_the_cooldown() -> None:
    steps = run([(0, P1), (30, P1), (60, P1), (70, MET), (100, P1), (700, P1)])
    assert [s[2] for s in steps] == [
        "InvalidateCaches",
        "RollingRestart",
        "StillBreaching",
        "Recovered",
        "Cooldown",
        "InvalidateCaches",
    ]


def test_step_log_records_outcomes() -> None:
    decision = advance(LadderState(), P1, POLICY, T0)
    state = decision.state.with_outcome("3/3 pods invalidated")
    assert (
        state.steps[-1]["step"] == "InvalidateCaches" and state.steps[-1]["outcome"] == "3/3 pods invalidated"
    )
    assert "ndcg Breached at 0.55 (P1)" in state.steps[-1]["detail"]


observations = st.sampled_from(
    [P1, P2, MET, NODATA, Observation("Breached", "errors", 0.2), Observation("AtRisk", "ndcg", 0.67, "P2")]
)


@settings(max_examples=300)
@given(
    st.lists(st.tuples(st.integers(0, 400), observations), max_size=60),
    st.booleans(),
    st.integers(1, 3),
)
def test_ladder_never_loops(seq: list[tuple[int, Observation]], retrain: bool, attempts: int) -> None:
    policy = RemediationPolicy(settle_s=30, cooldown_s=300, max_attempts=attempts)
    state, now = LadderState(), T0
    episode_runs = 0
    run_steps: list[str] = []
    last_run_end: datetime | None = None
    last_start: datetime | None = None
    for step, obs in seq:
        now += timedelta(seconds=step)
        decision = advance(state, obs, policy, now, retrain)
        action = decision.action
        if action is not None:
            assert obs.breached  # only a breach ever acts, never no data or health
        if action == "InvalidateCaches":
            assert obs.acts  # P2 never starts a run
            episode_runs += 1
            assert episode_runs <= attempts  # bounded per episode
            if last_run_end is not None:
                assert now >= last_run_end + timedelta(seconds=policy.cooldown_s)  # cooldown
            if last_start is not None:
                assert now >= last_start + timedelta(seconds=policy.cooldown_s + policy.settle_s)
            last_start = now
            run_steps = ["InvalidateCaches"]
        elif action == "RollingRestart":
            assert run_steps == ["InvalidateCaches"]  # in order, once
            run_steps.append(action)
        elif action == "RequestRetrain":
            assert retrain and run_steps == ["InvalidateCaches", "RollingRestart"]
            run_steps.append(action)
        if decision.state.run_ended_at != state.run_ended_at:
            last_run_end = decision.state.run_ended_at
        if decision.reason in ("Recovered", "RemediationResolved"):
            episode_runs = 0
        state = decision.state
        assert 0 <= state.attempts <= attempts
        assert len(state.steps) <= 12


# --------------------------------------------------------------------------- after promotion

V1, V2 = Revision("1.0.0", "file:///m/1"), Revision("1.1.0", "file:///m/2")
PP = PostPromotion(window_s=3600, action="Rollback")


def promoted(previous_healthy: bool = True, at: datetime = T0) -> PromotionRecord:
    tracked, record = observe_stable(TrackedStable(V1, previous_healthy), V2, at, None)
    assert record is not None and tracked.revision == V2
    return record


def test_breach_inside_the_window_rolls_back_to_the_healthy_previous_revision() -> None:
    d = decide_after_promotion(PP, promoted(), "1.1.0", P2, T0 + timedelta(minutes=20))
    assert (d.kind, d.reason, d.target) == ("Rollback", "PostPromotionBreach", V1)
    assert "ndcg Breached at 0.62" in d.message and "1.0.0" in d.message


def test_no_rollback_when_it_would_not_help() -> None:
    later = T0 + timedelta(minutes=20)
    cases = [
        (decide_after_promotion(PP, promoted(), "1.1.0", MET, later), "Nothing", "NotBreached"),
        (decide_after_promotion(None, promoted(), "1.1.0", P1, later), "Remediate", "NoPostPromotion"),
        (decide_after_promotion(PP, None, "1.1.0", P1, later), "Remediate", "NoRecentPromotion"),
        (decide_after_promotion(PP, promoted(), "1.2.0", P1, later), "Remediate", "NoRecentPromotion"),
        (
            decide_after_promotion(PP, promoted(), "1.1.0", P1, T0 + timedelta(hours=2)),
            "Remediate",
            "OutsideWindow",
        ),
        (
            decide_after_promotion(PostPromotion(3600, "Remediate"), promoted(), "1.1.0", P1, later),
            "Remediate",
            "ActionRemediate",
        ),
        (decide_after_promotion(PP, promoted(False), "1.1.0", P1, later), "Remediate", "PreviousNotHealthy"),
        (
            decide_after_promotion(PP, PromotionRecord(V2, T0, None, False), "1.1.0", P1, later),
            "Remediate",
            "NoPreviousRevision",
        ),
        (decide_after_promotion(PP, promoted(), "1.1.0", NODATA, later), "Nothing", "NotBreached"),
    ]
    for decision, kind, reason in cases:
        assert (decision.kind, decision.reason) == (kind, reason), decision.message
        assert decision.target is None


def test_observe_stable_tracks_health_and_promotions() -> None:
    tracked, record = observe_stable(None, V1, T0, None)
    assert record is None and tracked.healthy is None
    tracked, _ = observe_stable(tracked, V1, T0, True)
    tracked, _ = observe_stable(tracked, V1, T0, None)  # no data keeps the last known health
    assert tracked.healthy is True
    tracked, record = observe_stable(tracked, V2, T0 + timedelta(hours=1), False)
    assert record == PromotionRecord(V2, T0 + timedelta(hours=1), V1, True)
    assert TrackedStable.from_status(tracked.to_status()) == tracked
    assert PromotionRecord.from_status(record.to_status()) == record
